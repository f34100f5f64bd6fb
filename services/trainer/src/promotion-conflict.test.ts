// The trainer's promotion against a pointer that moved under its round: on a real nats-server,
// the trainer (in-process) bootstraps v1, trains a round on v1's shards, and while it trains
// another promoter makes v7 the teacher. The compare-and-set of the student must fail, the
// student be decided again against v7 (never written over it), and then promoted on top of v7.
// And a student that does not clear the margin is rejected, the reason naming both accuracies.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { eventsSubject, natsNames, shardSubject } from '@noisystudent/core';
import { loadFashionMnist, type LabeledImages } from '@noisystudent/ml';
import { makeTestArtifact } from '@noisystudent/ml/testing';
import {
  Dtype,
  EvaluationMetrics,
  RoundDecision,
  Shard,
  TrainerEvent,
  TrainerPhase,
  type RoundRecord,
  type RoundStarted,
} from '@noisystudent/proto';
import { openRegistry, type Registry } from '@noisystudent/registry';
import { startNatsServer, type NatsServer } from '@noisystudent/registry/testing';
import { createLogger } from '@noisystudent/runtime';
import { connect, type NatsConnection, type Subscription } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { trainerConfig } from './config.js';
import { RoundStore } from './round-store.js';
import { startTrainer, type Trainer } from './trainer.js';

const SHARDS = 2;
const IMAGES_PER_SHARD = 100;
const CLASSES = 10;
/** How long a round may take on a loaded 2-core machine (it takes ~15 s on an idle one). */
const ROUND_MS = 150_000;
const log = createLogger({
  service: 'test',
  level: process.env['NS_TEST_SERVICE_LOGS'] === '1' ? 'info' : 'silent',
});

let server: NatsServer;
let nc: NatsConnection;
let train: LabeledImages;
const cleanup: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  train = await loadFashionMnist('train');
}, 60_000);

afterAll(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
  await nc?.close();
  await server?.stop();
});

/** A trainer of its own prefix and state folder, sized to finish one round in seconds. */
async function startTestTrainer(
  prefix: string,
  stateDir: string,
  minImprovement: number,
  studentSteps = 80,
): Promise<Trainer> {
  const trainer = await startTrainer(
    trainerConfig(
      {
        natsUrl: server.url,
        prefix,
        port: 0,
        metricsPort: 0,
        stateDir,
        preset: 'smoke',
        teacherSteps: 20,
        studentSteps,
        checkpointEverySteps: 10,
        minImages: SHARDS * IMAGES_PER_SHARD,
        minImprovement,
        maxRounds: 1,
      },
      {},
    ),
    log,
  );
  cleanup.push(() => trainer.stop());
  return trainer;
}

async function stateFolder(prefix: string): Promise<string> {
  const stateDir = await mkdtemp(join(tmpdir(), `ns-${prefix}-`));
  cleanup.push(() => rm(stateDir, { recursive: true, force: true }));
  return stateDir;
}

/** The last training images as v1's pseudo-labeled shards: soft labels peaked on the true class. */
async function publishShards(prefix: string): Promise<void> {
  const js = nc.jetstream();
  for (let shardIndex = 0; shardIndex < SHARDS; shardIndex++) {
    const shardId = `${prefix}-w${shardIndex}.0`;
    const examples = Array.from({ length: IMAGES_PER_SHARD }, (_, i) => {
      const index = train.count - 1 - (shardIndex * IMAGES_PER_SHARD + i);
      const label = train.labels[index] ?? 0;
      return {
        sourceId: `u-${index}`,
        image: {
          content: {
            $case: 'tensor' as const,
            value: {
              shape: [28, 28, 1],
              dtype: Dtype.UINT8,
              data: Buffer.from(train.images.subarray(index * 784, (index + 1) * 784)),
            },
          },
        },
        softLabel: Array.from({ length: CLASSES }, (_, c) => (c === label ? 0.91 : 0.01)),
        hardLabel: label,
        confidence: 0.91,
        copyCount: 1,
      };
    });
    const shard = Shard.fromPartial({ shardId, teacherVersion: 'v1', windowId: shardId, partCount: 1, examples });
    await js.publish(shardSubject(natsNames(prefix), 'v1'), Shard.encode(shard).finish(), { msgID: shardId });
  }
}

/** The trainer's events (core NATS: subscribed before the trainer starts, or they are missed). */
class TrainerEvents {
  private readonly subscription: Subscription;
  private readonly iterator: AsyncIterator<{ data: Uint8Array }>;

  constructor(prefix: string) {
    this.subscription = nc.subscribe(eventsSubject(natsNames(prefix), 'trainer'));
    this.iterator = this.subscription[Symbol.asyncIterator]();
    cleanup.push(async () => this.subscription.unsubscribe());
  }

  async started(trainer: Trainer): Promise<RoundStarted> {
    return this.next('roundStarted', trainer) as Promise<RoundStarted>;
  }

  async finished(trainer: Trainer): Promise<RoundRecord> {
    return this.next('roundFinished', trainer) as Promise<RoundRecord>;
  }

  /** The next event of `kind`; fails when the trainer's work loop ends first (its error says why) or at ROUND_MS. */
  private async next(kind: 'roundStarted' | 'roundFinished', trainer: Trainer): Promise<unknown> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out waiting for the trainer's ${kind} event (phase ${trainer.status().phase})`)),
        ROUND_MS,
      );
    });
    const ended = trainer.done.then(() => {
      throw new Error(`the trainer's work loop ended before ${kind}`);
    });
    try {
      for (;;) {
        const message = await Promise.race([this.iterator.next(), timeout, ended]);
        if (message.done === true) throw new Error(`the event subscription ended before ${kind}`);
        const event = TrainerEvent.decode(message.value.data).event;
        if (event?.$case === kind) return event.value;
      }
    } finally {
      clearTimeout(timer);
    }
  }
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** One sample's value from the trainer's /metrics. */
async function metric(trainer: Trainer, sample: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${trainer.metricsPort}/metrics`)).text();
  const line = text.split('\n').find((entry) => entry.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

const percent = (fraction: number): number => Math.round(fraction * 10_000) / 100;
const versions = async (registry: Registry): Promise<string[]> =>
  (await registry.history()).map((record) => record.pointer.version);

describe('the trainer’s promotion', () => {
  it(
    'decides again against a teacher promoted during the round, and promotes the student on top of it',
    async () => {
      const prefix = 'conflict';
      const registry = await openRegistry(nc, { prefix });
      expect(await registry.readTeacher()).toBeUndefined();
      // Another promoter's model: untrained, so its evaluation differs plainly from v1's.
      const other = await makeTestArtifact({ version: 'v7', seed: 7 });
      const events = new TrainerEvents(prefix);
      await nc.flush();
      const stateDir = await stateFolder(prefix);
      const trainer = await startTestTrainer(prefix, stateDir, -1);
      await publishShards(prefix);

      const started = await events.started(trainer);
      expect(started).toMatchObject({ round: 1, teacherVersion: 'v1', shards: SHARDS });
      await until(
        'round 1 training',
        () => (trainer.status().phase === TrainerPhase.TRAINING ? true : undefined),
        10_000,
      );
      const before = await registry.readTeacher();
      expect(before?.pointer.version).toBe('v1');
      await registry.putArtifact(other.bytes, 'v7');
      await registry.promote({ version: 'v7', promotedBy: 'test', reason: 'another promoter' }, before?.revision ?? 0);
      // The pointer moved while the student was still training: the trainer's CAS is still to come.
      expect(trainer.status().phase).toBe(TrainerPhase.TRAINING);

      const finished = await events.finished(trainer);
      const [round] = trainer.rounds();
      expect(trainer.rounds()).toHaveLength(1);
      expect(finished).toEqual(round);
      expect(round?.round).toBe(1);
      expect(round?.decision).toBe(RoundDecision.PROMOTED);
      expect(round?.teacherVersion).toBe('v7');
      expect(round?.studentVersion).toBe('v2');
      expect(round?.shards).toBe(SHARDS);
      expect(round?.reason).toContain('teacher v7');
      // The teacher columns are v7's evaluation, not v1's.
      const store = await RoundStore.open(stateDir);
      const [v1, v7] = await Promise.all([store.teacherEvaluation('v1'), store.teacherEvaluation('v7')]);
      expect(v7).toBeDefined();
      expect(round?.teacherEval).toEqual(v7?.eval);
      expect(round?.teacherTest).toEqual(v7?.test);
      expect(v7?.eval.top1Accuracy).not.toBe(v1?.eval.top1Accuracy);

      const history = await registry.history();
      expect(history.map((record) => record.pointer.version)).toEqual(['v1', 'v7', 'v2']);
      expect(history.map((record) => record.pointer.promotedBy)).toEqual(['trainer', 'test', 'trainer']);
      expect(history[1]?.pointer.parentVersion).toBe('v1');
      expect(history[2]?.pointer.parentVersion).toBe('v7');
      expect(history[2]?.pointer.reason).toMatch(/^round 1: .*teacher v7/);
      expect(await metric(trainer, 'trainer_promotion_conflicts_total')).toBe(1);
      expect(await metric(trainer, 'trainer_rounds_total{decision="promoted"}')).toBe(1);
    },
    2 * ROUND_MS,
  );

  it(
    'rejects a student that does not beat the teacher by the margin, naming both accuracies',
    async () => {
      const prefix = 'reject';
      const registry = await openRegistry(nc, { prefix });
      // A teacher already in the registry: no bootstrap, straight to collecting its shards.
      const teacher = await makeTestArtifact({ version: 'v1', seed: 3 });
      await registry.putArtifact(teacher.bytes, 'v1');
      await registry.promote({ version: 'v1', promotedBy: 'test', reason: 'first teacher' }, 0);
      const events = new TrainerEvents(prefix);
      await nc.flush();
      // The decision, not the student's quality, is under test: a short training will do.
      const trainer = await startTestTrainer(prefix, await stateFolder(prefix), 0.99, 20);
      await publishShards(prefix);

      const finished = await events.finished(trainer);
      const [round] = trainer.rounds();
      expect(finished).toEqual(round);
      expect(round?.decision).toBe(RoundDecision.REJECTED);
      expect(round?.teacherVersion).toBe('v1');
      expect(round?.studentVersion).toBe('');
      const student = round?.studentEval?.top1Accuracy ?? Number.NaN;
      const teacherAccuracy = round?.teacherEval?.top1Accuracy ?? Number.NaN;
      expect(student).toBeLessThan(teacherAccuracy + 0.99);
      expect(round?.reason).toBe(
        `student ${percent(student)}% vs teacher v1 ${percent(teacherAccuracy)}% on eval (margin 0.99)`,
      );
      // Nothing promoted, nothing stored for the student.
      expect(await versions(registry)).toEqual(['v1']);
      expect((await registry.listVersions()).map((info) => info.version)).toEqual(['v1']);
      expect(trainer.status().teacherVersion).toBe('v1');
      expect(await metric(trainer, 'trainer_promotion_conflicts_total')).toBe(0);
      expect(await metric(trainer, 'trainer_rounds_total{decision="rejected"}')).toBe(1);
    },
    2 * ROUND_MS,
  );

  it(
    'after a restart, keeps its promotion made before the crash though the pointer moved since',
    async () => {
      // The trainer promoted round 1's student v2 and died before recording the round; then another
      // promoter made v9 the teacher. The restarted trainer resumes round 1 from its state.
      const prefix = 'resumed';
      const registry = await openRegistry(nc, { prefix });
      const v2 = await makeTestArtifact({ version: 'v2', seed: 2, parentVersion: 'v1' });
      await registry.putArtifact((await makeTestArtifact({ version: 'v1', seed: 1 })).bytes, 'v1');
      await registry.putArtifact(v2.bytes, 'v2');
      await registry.putArtifact((await makeTestArtifact({ version: 'v9', seed: 9 })).bytes, 'v9');
      const first = await registry.promote({ version: 'v1', promotedBy: 'test', reason: 'first teacher' }, 0);
      const own = await registry.promote(
        { version: 'v2', promotedBy: 'trainer', reason: 'round 1: before the crash' },
        first.revision,
      );
      await registry.promote({ version: 'v9', promotedBy: 'test', reason: 'another promoter' }, own.revision);

      const stateDir = await stateFolder(prefix);
      const store = await RoundStore.open(stateDir);
      const evaluation = (top1Accuracy: number): EvaluationMetrics =>
        EvaluationMetrics.fromPartial({ dataset: 'fashion-mnist/eval', exampleCount: 300, top1Accuracy });
      await store.saveTeacherEvaluation('v1', { eval: evaluation(0.3), test: evaluation(0.3), params: 1 });
      await store.save({
        round: 1,
        teacherVersion: 'v1',
        teacherRevision: first.revision,
        shardIds: ['w0.0'],
        shardFiles: [join('shards', 'v1', 'w0.0.shard')],
        studentVersion: 'v2',
        width: 1,
        startedAt: new Date().toISOString(),
        trained: {
          steps: 80,
          shards: 1,
          examples: 100,
          perClass: [10, 10, 10, 10, 10, 10, 10, 10, 10, 10],
          eval: EvaluationMetrics.toJSON(evaluation(0.5)),
          test: EvaluationMetrics.toJSON(evaluation(0.5)),
        },
      });
      await writeFile(join(store.roundDirectory(1), 'student.nsmodel'), v2.bytes);

      const events = new TrainerEvents(prefix);
      await nc.flush();
      const trainer = await startTestTrainer(prefix, stateDir, -1);
      const finished = await events.finished(trainer);
      expect(finished).toMatchObject({
        round: 1,
        decision: RoundDecision.PROMOTED,
        teacherVersion: 'v1',
        studentVersion: 'v2',
      });
      expect(trainer.rounds()).toEqual([finished]);
      expect(await versions(registry)).toEqual(['v1', 'v2', 'v9']);
      expect(await metric(trainer, 'trainer_promotion_conflicts_total')).toBe(0);
    },
    2 * ROUND_MS,
  );
});
