// The whole labeling path on real parts: nats-server, the registry, the teacher service with a
// trained model, the labeler. Ingests Fashion-MNIST test images and proves the accounting adds
// up exactly, per teacher version, then promotes a new teacher and checks the relabeling.
import { once } from 'node:events';

import { loadFashionMnist } from '@noisystudent/ml';
import { trainedFashionArtifact } from '@noisystudent/ml/testing';
import { Dtype, UnlabeledImage, type IngestRequest } from '@noisystudent/proto';
import { openRegistry, type Registry } from '@noisystudent/registry';
import { startNatsServer, type NatsServer } from '@noisystudent/registry/testing';
import { createLogger } from '@noisystudent/runtime';
import { natsNames, shardSubject } from '@noisystudent/core';
import { labelerConfig, startLabeler, type Labeler } from '@noisystudent/labeler';
import { readShards, shardOutcomes } from '@noisystudent/labeler/testing';
import { startTeacher, teacherConfig, type Teacher } from '@noisystudent/teacher';
import { connect, headers, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { connectLabeler, type TestLabelerClient } from './support/labeler-client.js';
import { connectTeacher } from './support/teacher-client.js';

const PREFIX = 'pipe';
const IMAGES = 2_500;
const THRESHOLD = 0.8;
const names = natsNames(PREFIX);
const silent = createLogger({ service: 'test', level: 'silent' });

let server: NatsServer;
let nc: NatsConnection;
let registry: Registry;
let teacher: Teacher;
/** Two labeler replicas sharing each version's durable consumer; Ingest goes to the first. */
let labeler: Labeler;
let replica: Labeler;
let client: TestLabelerClient;
let requests: IngestRequest[];

async function promote(version: string, seed: number): Promise<void> {
  const artifact = await trainedFashionArtifact({ version, seed, steps: 60 });
  await registry.putArtifact(artifact.bytes, version);
  const current = await registry.readTeacher();
  await registry.promote({ version, promotedBy: 'test', reason: 'test' }, current?.revision ?? 0);
}

/** A version's counts summed over both replicas. */
function versionTotals(
  version: string,
): Record<'labeled' | 'inShards' | 'copies' | 'belowThreshold' | 'cutByBalancing' | 'rejected', number> {
  const totals = { labeled: 0, inShards: 0, copies: 0, belowThreshold: 0, cutByBalancing: 0, rejected: 0 };
  for (const instance of [labeler, replica]) {
    const entry = instance.stats.versionStats().find((stats) => stats.teacherVersion === version);
    if (entry === undefined) continue;
    for (const key of Object.keys(totals) as Array<keyof typeof totals>) totals[key] += entry[key];
  }
  return totals;
}

/** Waits for labeling windows (on either replica) until `version` has an outcome for `count` images. */
async function labeledWith(version: string, count: number): Promise<void> {
  while (versionTotals(version).labeled < count) {
    await Promise.race([once(labeler.events, 'window'), once(replica.events, 'window')]);
  }
  expect(versionTotals(version).labeled).toBe(count);
}

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  registry = await openRegistry(nc, { prefix: PREFIX });
  await promote('v1', 1);
  teacher = await startTeacher(
    teacherConfig({ port: 0, metricsPort: 0, natsUrl: server.url, prefix: PREFIX, maxBatchSize: 64 }, {}),
    silent,
  );
  await teacher.serving('v1');
  const startReplica = (): Promise<Labeler> =>
    startLabeler(
      labelerConfig(
        {
          port: 0,
          metricsPort: 0,
          natsUrl: server.url,
          prefix: PREFIX,
          teachers: `127.0.0.1:${teacher.port}`,
          windowSize: 256,
          windowWaitMs: 300,
          // A teacher trained for seconds is already sure of most images at the paper's 0.3.
          threshold: THRESHOLD,
        },
        {},
      ),
      silent,
    );
  [labeler, replica] = await Promise.all([startReplica(), startReplica()]);
  await replica.labelingWith('v1');
  await labeler.labelingWith('v1');
  client = connectLabeler(labeler.port);
  const test = await loadFashionMnist('test');
  requests = Array.from({ length: IMAGES }, (_, index) => ({
    sourceId: `fmnist-test-${index}`,
    image: {
      content: {
        $case: 'tensor',
        value: {
          shape: [28, 28, 1],
          dtype: Dtype.UINT8,
          data: Buffer.from(test.images.subarray(index * 784, (index + 1) * 784)),
        },
      },
    },
  }));
}, 180_000);

afterAll(async () => {
  client?.close();
  await Promise.all([labeler?.stop(), replica?.stop()]);
  await teacher?.stop();
  await nc?.close();
  await server?.stop();
});

describe('the labeling pipeline', () => {
  it('stores every good image once, refuses bad ones, and accounts for every stored image in v1 shards', async () => {
    const badAtIngest: IngestRequest[] = [
      { sourceId: '', image: requests[0]?.image },
      {
        sourceId: 'wrong-shape',
        image: {
          content: { $case: 'tensor', value: { shape: [32, 32, 3], dtype: Dtype.UINT8, data: Buffer.alloc(3072) } },
        },
      },
    ];
    const answers = await client.ingest([...requests, ...badAtIngest]);
    expect(answers).toHaveLength(IMAGES + badAtIngest.length);
    expect(answers.filter((answer) => answer.result?.$case === 'stored')).toHaveLength(IMAGES);
    expect(
      answers
        .filter((answer) => answer.result?.$case === 'rejected')
        .map((answer) => answer.sourceId)
        .sort(),
    ).toEqual(['', 'wrong-shape']);
    // A producer publishing to NATS directly, with an image the teacher cannot use: stored, then rejected in a shard.
    const direct = headers();
    direct.set('Nats-Msg-Id', 'direct-bad');
    const bad = UnlabeledImage.encode({
      sourceId: 'direct-bad',
      image: { content: { $case: 'tensor', value: { shape: [5, 5, 1], dtype: Dtype.UINT8, data: Buffer.alloc(25) } } },
      ingestedAt: new Date(),
    }).finish();
    await nc.jetstream().publish(`${PREFIX}.unlabeled.producer`, bad, { headers: direct });
    // Resending is idempotent.
    const again = await client.ingest(requests.slice(0, 50));
    expect(again.every((answer) => answer.result?.$case === 'stored' && answer.result.value.duplicate)).toBe(true);

    const stored = IMAGES + 1;
    await labeledWith('v1', stored);
    const shards = await readShards(await nc.jetstreamManager(), names.shardsStream, shardSubject(names, 'v1'));
    const outcome = shardOutcomes(shards);
    const { everyId } = outcome;
    // Exactly one outcome per stored image: nothing lost, nothing twice.
    expect(everyId).toHaveLength(stored);
    expect(new Set(everyId).size).toBe(stored);
    expect(new Set(everyId)).toEqual(new Set([...requests.map((request) => request.sourceId), 'direct-bad']));
    expect(outcome.rejected).toEqual([
      { sourceId: 'direct-bad', reason: expect.stringContaining('image.tensor.shape: expected [28, 28, 1]') },
    ]);
    // Below the threshold are exactly the images the teacher is unsure of (images within 1e-4 of
    // the threshold left out: batches of other sizes may round them to the other side).
    const teacherClient = connectTeacher(teacher.port);
    const confidence = new Map<string, number>();
    for (let start = 0; start < IMAGES; start += 200) {
      const chunk = requests.slice(start, start + 200);
      const response = await teacherClient.predict({ images: chunk.flatMap((request) => request.image ?? []) });
      response.predictions.forEach((prediction, index) =>
        confidence.set(chunk[index]?.sourceId ?? '', prediction.confidence),
      );
    }
    teacherClient.close();
    const clear = (id: string): boolean => Math.abs((confidence.get(id) ?? NaN) - THRESHOLD) > 1e-4;
    const unsure = [...confidence].filter(([id, value]) => value < THRESHOLD && clear(id)).map(([id]) => id);
    expect(outcome.belowThreshold.filter(clear).sort()).toEqual(unsure.sort());
    expect(outcome.inShards.length + outcome.cutByBalancing.length).toBe(IMAGES - outcome.belowThreshold.length);
    // The stats agree with what is in the stream.
    const stats = await client.stats();
    expect(stats.teacherVersion).toBe('v1');
    expect(stats.ingested).toBe(IMAGES);
    expect(stats.ingestDuplicates).toBe(50);
    expect(stats.ingestRejected).toBe(2);
    expect(stats.unlabeledStored).toBe(stored);
    // Prometheus says the same as GetStats.
    const metrics = await (await fetch(`http://127.0.0.1:${labeler.metricsPort}/metrics`)).text();
    expect(metrics).toContain(`labeler_ingested_total{outcome="stored"} ${IMAGES}`);
    expect(metrics).toContain('labeler_ingested_total{outcome="duplicate"} 50');
    expect(metrics).toContain('labeler_teacher_version_info{version="v1"} 1');
    const mine = labeler.stats.versionStats()[0];
    expect(metrics).toContain(
      `labeler_labeled_total{version="v1",outcome="below_threshold"} ${mine?.belowThreshold ?? NaN}`,
    );
    // Both replicas labeled, and their counts add up to what is in the stream.
    expect(labeler.stats.versionStats()[0]?.labeled).toBeGreaterThan(0);
    expect(replica.stats.versionStats()[0]?.labeled).toBeGreaterThan(0);
    expect(versionTotals('v1')).toMatchObject({
      labeled: stored,
      inShards: outcome.inShards.length,
      copies: outcome.copies,
      belowThreshold: outcome.belowThreshold.length,
      cutByBalancing: outcome.cutByBalancing.length,
      rejected: 1,
    });
    for (const shard of shards) {
      const perClass = new Array<number>(10).fill(0);
      // class_counts cover the whole window, over all its parts.
      for (const part of shards.filter((other) => other.windowId === shard.windowId)) {
        for (const example of part.examples)
          perClass[example.hardLabel] = (perClass[example.hardLabel] ?? 0) + example.copyCount;
      }
      expect(shard.classCounts).toEqual(perClass);
      expect(shard.policy?.confidenceThreshold).toBeCloseTo(THRESHOLD, 6);
    }
  });

  it('relabels the retained images when a new teacher is promoted', async () => {
    await promote('v2', 2);
    await teacher.serving('v2');
    await Promise.all([labeler.labelingWith('v2'), replica.labelingWith('v2')]);
    const stored = IMAGES + 1;
    await labeledWith('v2', stored);
    const shards = await readShards(await nc.jetstreamManager(), names.shardsStream, shardSubject(names, 'v2'));
    expect(shards.every((shard) => shard.teacherVersion === 'v2')).toBe(true);
    const outcome = shardOutcomes(shards);
    const { everyId } = outcome;
    expect(everyId).toHaveLength(stored);
    expect(new Set(everyId).size).toBe(stored);
    expect((await client.stats()).teacherVersion).toBe('v2');
  });
});
