// The whole Noisy Student loop on real parts, each service its own process: nats-server, the
// trainer (bootstraps v1 into an empty registry), the teacher (serves it), the labeler (labels
// what is ingested). Round 1's student is promoted to v2, the teacher hot-swaps to it while
// callers keep predicting, the labeler relabels with v2 and round 2 trains on v2's shards. Then the
// same loop with the trainer SIGKILLed in the middle of a round. Everything is asserted from
// ListRounds, the registry and the shards.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { loadFashionMnist, PRESETS, SelfTraining, type LabeledImages } from '@noisystudent/ml';
import {
  Dtype,
  RoundDecision,
  TrainerPhase,
  type GetStatusResponse,
  type IngestRequest,
  type RoundRecord,
} from '@noisystudent/proto';
import { openRegistry, type Registry } from '@noisystudent/registry';
import { startNatsServer, type NatsServer } from '@noisystudent/registry/testing';
import { HealthClient, spawnService, type SpawnedService } from '@noisystudent/runtime';
import { readShards } from '@noisystudent/labeler/testing';
import { connectTrainer } from '@noisystudent/trainer/testing';
import { natsNames as names, shardSubject } from '@noisystudent/core';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { connectLabeler } from './support/labeler-client.js';
import { connectTeacher, type TestTeacherClient } from './support/teacher-client.js';

const EXEC_ARGV = ['--import', 'tsx', '--conditions', 'source'];
const entry = (service: string): string =>
  fileURLToPath(new URL(`../services/${service}/src/main.ts`, import.meta.url));
const IMAGES = 300;
/** The smoke preset, with the student steps the kill test needs to catch it mid-training. */
const smoke = PRESETS['smoke'];
if (smoke === undefined) throw new Error('no smoke preset');
const TRAINER_ARGS = ['--preset', 'smoke', '--student-steps', '60', '--checkpoint-every-steps', '10'];

let server: NatsServer;
let nc: NatsConnection;
let train: LabeledImages;
let test: LabeledImages;
const cleanup: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  [train, test] = await Promise.all([loadFashionMnist('train'), loadFashionMnist('test')]);
}, 60_000);

afterAll(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
  await nc?.close();
  await server?.stop();
});

interface TrainerHandle {
  service: SpawnedService;
  status(): Promise<GetStatusResponse>;
  rounds(): Promise<RoundRecord[]>;
  close(): void;
}

/** What every service here is started with: ports it picks, this test's nats-server, its own prefix. */
const serviceArgs = (prefix: string): string[] => [
  '--port',
  '0',
  '--metrics-port',
  '0',
  '--nats-url',
  server.url,
  '--prefix',
  prefix,
];

async function spawnTrainer(prefix: string, stateDir: string, extra: string[]): Promise<TrainerHandle> {
  const service = await spawnService(entry('trainer'), {
    args: [...serviceArgs(prefix), '--state-dir', stateDir, ...TRAINER_ARGS, ...extra],
    execArgv: EXEC_ARGV,
    output: process.env['NS_TEST_SERVICE_LOGS'] === '1' ? 'stderr' : 'ignore',
    timeoutMs: 120_000,
  });
  const client = connectTrainer(service.address);
  return { service, status: () => client.status(), rounds: () => client.rounds(), close: () => client.close() };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 240_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Unlabeled images: the last training images, as raw tensors. */
function unlabeledRequests(tag: string): IngestRequest[] {
  return Array.from({ length: IMAGES }, (_, i) => {
    const index = train.count - 1 - i;
    return {
      sourceId: `${tag}-${index}`,
      image: {
        content: {
          $case: 'tensor',
          value: {
            shape: [28, 28, 1],
            dtype: Dtype.UINT8,
            data: Buffer.from(train.images.subarray(index * 784, (index + 1) * 784)),
          },
        },
      },
    };
  });
}

async function startStack(
  prefix: string,
): Promise<{ teacher: SpawnedService; labeler: SpawnedService; registry: Registry }> {
  const registry = await openRegistry(nc, { prefix });
  const teacher = await spawnService(entry('teacher'), {
    args: serviceArgs(prefix),
    execArgv: EXEC_ARGV,
    timeoutMs: 120_000,
  });
  cleanup.push(() => teacher.stop());
  const labeler = await spawnService(entry('labeler'), {
    args: [...serviceArgs(prefix), '--teachers', teacher.address, '--window-size', '100', '--window-wait-ms', '300'],
    execArgv: EXEC_ARGV,
    timeoutMs: 120_000,
  });
  cleanup.push(() => labeler.stop());
  return { teacher, labeler, registry };
}

const servedVersion = async (client: TestTeacherClient): Promise<string> =>
  (await client.modelInfo()).metadata?.version ?? '';

describe('the self-training loop through the services', () => {
  it('bootstraps v1, promotes round 1’s student to v2 while callers predict, and runs round 2 on v2’s shards', async () => {
    const prefix = 'loop';
    const stateDir = await mkdtemp(join(tmpdir(), 'ns-loop-'));
    cleanup.push(() => rm(stateDir, { recursive: true, force: true }));
    const { teacher, labeler, registry } = await startStack(prefix);
    // A negative margin: the small setting's student need not beat its teacher to be promoted.
    const trainer = await spawnTrainer(prefix, stateDir, [
      '--min-images',
      String(IMAGES),
      '--min-improvement',
      '-1',
      '--max-rounds',
      '2',
    ]);
    cleanup.push(async () => {
      trainer.close();
      await trainer.service.stop();
    });

    const v1 = await until('teacher v1 in the registry', async () => (await registry.readTeacher())?.pointer);
    expect(v1.version).toBe('v1');
    expect(v1.promotedBy).toBe('trainer');
    const client = connectTeacher(teacher.port);
    cleanup.push(async () => client.close());
    await until('the teacher serving v1', async () => ((await servedVersion(client)) === 'v1' ? true : undefined));

    // Callers predict throughout; not one request may fail, across the hot swap too.
    const sample = unlabeledRequests('probe')[0]?.image;
    if (sample === undefined) throw new Error('no probe image');
    let calls = 0;
    const failures: string[] = [];
    let calling = true;
    const callers = (async () => {
      while (calling) {
        await client.predict({ images: [sample] }, 10_000).then(
          () => calls++,
          (error: Error) => failures.push(error.message),
        );
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();

    const ingest = connectLabeler(labeler.port);
    cleanup.push(async () => ingest.close());
    const answers = await ingest.ingest(unlabeledRequests('u'));
    expect(answers.filter((answer) => answer.result?.$case === 'stored')).toHaveLength(IMAGES);

    const round1 = await until('round 1', async () => (await trainer.rounds()).find((round) => round.round === 1));
    expect(round1.teacherVersion).toBe('v1');
    expect(round1.decision).toBe(RoundDecision.PROMOTED);
    expect(round1.studentVersion).toBe('v2');
    expect(round1.shards).toBeGreaterThan(0);
    expect(round1.pseudoLabeledExamples).toBeGreaterThan(0);
    expect(round1.examplesPerClass.reduce((a, b) => a + b, 0)).toBe(round1.pseudoLabeledExamples);
    expect(round1.studentTraining?.steps).toBe(60);
    expect(round1.teacherEval?.exampleCount).toBe(smoke.evalImages);
    expect(round1.studentTest?.exampleCount).toBe(smoke.testImages);
    // The round trained on every v1 shard the stream holds.
    const v1Shards = await readShards(
      await nc.jetstreamManager(),
      names(prefix).shardsStream,
      shardSubject(names(prefix), 'v1'),
    );
    expect(round1.shards).toBe(v1Shards.length);

    await until('the teacher serving v2', async () => ((await servedVersion(client)) === 'v2' ? true : undefined));
    // The served v2 answers the test images as the trainer measured it.
    const loop = new SelfTraining({ ...smoke, studentSteps: 60 }, { name: 'fashion-mnist', train, test });
    let correct = 0;
    for (let start = 0; start < loop.testIndices.length; start += 100) {
      const chunk = loop.testIndices.slice(start, start + 100);
      const { predictions } = await client.predict({
        images: chunk.map((index) => ({
          content: {
            $case: 'tensor' as const,
            value: {
              shape: [28, 28, 1],
              dtype: Dtype.UINT8,
              data: Buffer.from(test.images.subarray(index * 784, (index + 1) * 784)),
            },
          },
        })),
      });
      correct += predictions.filter((prediction, i) => prediction.labelIndex === loop.testLabels[start + i]).length;
    }
    expect(
      Math.abs((correct / loop.testIndices.length) * 100 - (round1.studentTest?.top1Accuracy ?? 0) * 100),
    ).toBeLessThanOrEqual(0.1);

    const round2 = await until('round 2', async () => (await trainer.rounds()).find((round) => round.round === 2));
    expect(round2.teacherVersion).toBe('v2');
    const v2Shards = await readShards(
      await nc.jetstreamManager(),
      names(prefix).shardsStream,
      shardSubject(names(prefix), 'v2'),
    );
    expect(v2Shards.length).toBeGreaterThan(0);
    expect(round2.shards).toBe(v2Shards.length);
    calling = false;
    await callers;
    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThan(0);

    const history = await registry.history();
    expect(history.map((record) => record.pointer.version).slice(0, 2)).toEqual(['v1', 'v2']);
    const status = await trainer.status();
    expect(status.phase).toBe(TrainerPhase.COLLECTING);
    expect(status.teacherVersion).toBe(history.at(-1)?.pointer.version);
    const health = new HealthClient(trainer.service.address);
    try {
      expect(await health.check('noisystudent.v1.Trainer')).toBe('SERVING');
    } finally {
      health.close();
    }
  }, 600_000);

  it('survives a SIGKILL in the middle of a round: resumes it with the shards it had, and promotes once', async () => {
    const prefix = 'kill';
    const stateDir = await mkdtemp(join(tmpdir(), 'ns-kill-'));
    cleanup.push(() => rm(stateDir, { recursive: true, force: true }));
    const { labeler, registry } = await startStack(prefix);
    const args = ['--min-images', String(IMAGES), '--min-improvement', '-1', '--max-rounds', '1'];
    const first = await spawnTrainer(prefix, stateDir, args);
    cleanup.push(() => first.service.stop());
    await until('teacher v1', async () => (await registry.readTeacher())?.pointer);
    const ingest = connectLabeler(labeler.port);
    cleanup.push(async () => ingest.close());
    await ingest.ingest(unlabeledRequests('k'));
    await until('round 1 training past a checkpoint', async () => {
      const status = await first.status();
      return status.phase === TrainerPhase.TRAINING && status.step >= 20 ? status : undefined;
    });
    const keptBeforeKill = (await readdir(join(stateDir, 'shards', 'v1'))).filter((name) => name.endsWith('.shard'));
    first.service.child.kill('SIGKILL');
    await new Promise((resolve) => first.service.child.once('exit', resolve));
    first.close();

    const second = await spawnTrainer(prefix, stateDir, args);
    cleanup.push(async () => {
      second.close();
      await second.service.stop();
    });
    const round1 = await until('round 1 after the restart', async () =>
      (await second.rounds()).find((round) => round.round === 1),
    );
    expect(round1.decision).toBe(RoundDecision.PROMOTED);
    const state = JSON.parse(await readFile(join(stateDir, 'rounds', '1', 'state.json'), 'utf8')) as {
      shardIds: string[];
    };
    for (const file of keptBeforeKill) expect(state.shardIds).toContain(file.replace(/\.shard$/, ''));
    expect(round1.shards).toBe(state.shardIds.length);
    const promotions = (await registry.history()).filter((record) => record.pointer.reason.startsWith('round 1:'));
    expect(promotions).toHaveLength(1);
    expect((await second.rounds()).filter((round) => round.round === 1)).toHaveLength(1);
  }, 600_000);
});
