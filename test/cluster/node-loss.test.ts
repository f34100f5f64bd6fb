// Two labelers and a teacher on a real 3-node JetStream cluster (R3) while a producer streams
// images through Ingest and one NATS node is SIGKILLed mid-stream, then restarted. Asserted from
// the producer's accounting and the shards: every image stored once, with one outcome, nothing lost.
import { natsNames, shardSubject } from '@noisystudent/core';
import { connectLabeler } from '@noisystudent/client';
import { labelerConfig, startLabeler, type Labeler } from '@noisystudent/labeler';
import { readShards, shardOutcomes } from '@noisystudent/labeler/testing';
import { loadFashionMnist } from '@noisystudent/ml';
import { trainedFashionArtifact } from '@noisystudent/ml/testing';
import { openRegistry } from '@noisystudent/registry';
import { startNatsCluster, type NatsCluster } from '@noisystudent/registry/testing';
import { createLogger } from '@noisystudent/runtime';
import { startTeacher, teacherConfig, type Teacher } from '@noisystudent/teacher';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const PREFIX = 'faults';
const IMAGES = 1_200;
const KILL_AFTER = 300;
const names = natsNames(PREFIX);
const silent = createLogger({ service: 'test', level: 'silent' });

let cluster: NatsCluster;
let nc: NatsConnection;
let teacher: Teacher;
let labelers: Labeler[] = [];

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  nc = await connect({ servers: cluster.url.split(','), maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  // The registry at R3 from the start (a fresh cluster may still elect its first leaders: retry).
  let registry;
  for (let attempt = 0; ; attempt++) {
    try {
      registry = await openRegistry(nc, { prefix: PREFIX, replicas: 3 });
      break;
    } catch (error) {
      if (attempt >= 20) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  const artifact = await trainedFashionArtifact({ version: 'v1', seed: 1, steps: 40 });
  await registry.putArtifact(artifact.bytes, 'v1');
  await registry.promote({ version: 'v1', promotedBy: 'test', reason: 'test' }, 0);
  const common = { port: 0, metricsPort: 0, natsUrl: cluster.url, prefix: PREFIX, natsReplicas: 3 };
  teacher = await startTeacher(teacherConfig({ ...common, maxBatchSize: 64 }, {}), silent);
  await teacher.serving('v1');
  labelers = await Promise.all(
    [0, 1].map(() =>
      startLabeler(
        labelerConfig(
          { ...common, teachers: `127.0.0.1:${teacher.port}`, windowSize: 128, windowWaitMs: 300, balance: 'none' },
          {},
        ),
        silent,
      ),
    ),
  );
  await Promise.all(labelers.map((labeler) => labeler.labelingWith('v1')));
}, 180_000);

afterAll(async () => {
  await Promise.all(labelers.map((labeler) => labeler.stop()));
  await teacher?.stop();
  await nc?.close();
  await cluster?.stop();
});

const labeledWithV1 = (): number =>
  labelers.reduce(
    (sum, labeler) => sum + (labeler.stats.versionStats().find((entry) => entry.teacherVersion === 'v1')?.labeled ?? 0),
    0,
  );

describe('a NATS node SIGKILLed while images stream in', () => {
  it('loses no acknowledged image and gives each exactly one outcome', async () => {
    const test = await loadFashionMnist('test');
    const items = Array.from({ length: IMAGES }, (_, index) => ({
      sourceId: `fmnist-test-${index}`,
      image: {
        shape: [28, 28, 1],
        dtype: 'uint8' as const,
        data: test.images.subarray(index * 784, (index + 1) * 784),
      },
    }));
    const client = connectLabeler({
      address: labelers.map((labeler) => `127.0.0.1:${labeler.port}`),
      retry: { attempts: 20, initialBackoffMs: 100, maxBackoffMs: 1_000 },
    });
    const faults: string[] = [];
    const started = Date.now();
    let fault: Promise<void> | undefined;
    try {
      const summary = await client.ingest(items, {
        window: 64,
        onProgress: (progress) => {
          if (fault === undefined && progress.stored >= KILL_AFTER) {
            fault = (async () => {
              faults.push(`killed node 1 at ${progress.stored} stored`);
              await cluster.nodes[1]?.kill();
              await new Promise((resolve) => setTimeout(resolve, 2_000));
              await cluster.restart(1);
              faults.push('node 1 back');
            })();
          }
        },
      });
      await fault;
      expect(faults).toHaveLength(2);
      expect(summary).toMatchObject({ sent: IMAGES, stored: IMAGES, duplicates: 0, rejected: 0 });
    } finally {
      client.close();
    }

    // A window pulled through a node as it died is delivered again once its ack wait (5 s) runs out.
    const deadline = Date.now() + 60_000;
    while (labeledWithV1() < IMAGES && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250));
    expect(labeledWithV1(), `labeled with v1 (${faults.join(', ')})`).toBeGreaterThanOrEqual(IMAGES);
    console.log(
      `node-loss: every image labeled ${((Date.now() - started) / 1000).toFixed(1)} s after the ingest began`,
    );
    const outcomes = shardOutcomes(
      await readShards(await nc.jetstreamManager(), names.shardsStream, shardSubject(names, 'v1')),
    );
    // One outcome per image: an image whose ack the dying node lost comes back, and is found in
    // the shards instead of being labeled a second time.
    const ids = [...outcomes.everyId].sort();
    expect(ids.length - new Set(ids).size, 'images with two outcomes').toBe(0);
    expect(ids).toEqual(items.map((item) => item.sourceId).sort());
    expect(outcomes.rejected).toEqual([]);
  }, 240_000);
});
