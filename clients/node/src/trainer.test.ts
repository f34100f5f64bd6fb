// The trainer client against a Trainer gRPC server that answers what each test sets (every
// phase, decision and field mapped), and against the real trainer, started on an imported teacher
// (its rounds take minutes to train: test/self-training-loop.test.ts runs them).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { status, type Metadata, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { initBackend } from '@noisystudent/ml';
import { makeTestArtifact } from '@noisystudent/ml/testing';
import {
  RoundDecision,
  TrainerPhase,
  TrainerService,
  GetStatusResponse,
  type ListRoundsRequest,
  type ListRoundsResponse,
  type RoundRecord,
  type TrainerServer,
} from '@noisystudent/proto';
import { startNatsServer, type NatsServer } from '@noisystudent/registry/testing';
import { createLogger, startGrpcServer, type GrpcServer } from '@noisystudent/runtime';
import { startTrainer, trainerConfig, type Trainer } from '@noisystudent/trainer';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { ClientError } from './errors.js';
import {
  connectTrainer,
  decisionName,
  phaseName,
  type TrainerConnection,
  type TrainerPhaseName,
  type TrainerStatus,
} from './trainer.js';

/** What the fake trainer answers, and what it saw. */
interface Script {
  status: GetStatusResponse;
  rounds: RoundRecord[];
  /** Errors to answer GetStatus with before the status, one per call. */
  statusErrors: Array<{ code: number; details: string }>;
  /** ListRounds never answers (the caller's deadline ends it). */
  hangRounds: boolean;
  seen: Array<{ method: string; metadata: Metadata; deadline: number; request: unknown }>;
}

// fromPartial: fields the trainer adds later keep their defaults here.
const STATUS: GetStatusResponse = GetStatusResponse.fromPartial({
  phase: TrainerPhase.TRAINING,
  teacherVersion: 'v2',
  round: 2,
  step: 120,
  steps: 400,
  loss: 0.75,
  imagesPerSecond: 812.5,
  etaSeconds: 34.5,
  examplesWaiting: 6_000,
  examplesNeeded: 5_000,
});

function round(number: number, decision: RoundDecision): RoundRecord {
  return {
    round: number,
    teacherVersion: `v${number}`,
    teacherEval: {
      dataset: 'fashion-mnist/eval',
      exampleCount: 1000,
      top1Accuracy: 0.8,
      loss: 0.6,
      expectedCalibrationError: 0.05,
      eceBinCount: 15,
      perClassAccuracy: [0.8],
    },
    teacherTest: undefined,
    shards: 3,
    pseudoLabeledExamples: 2 ** 40,
    examplesPerClass: [10, 20],
    labeledExamples: 1000,
    studentVersion: `v${number + 1}`,
    studentTraining: undefined,
    studentEval: undefined,
    studentTest: undefined,
    decision,
    reason: 'student 86.97% vs teacher 84.75% on eval (margin 0)',
    startedAt: new Date(Date.UTC(2025, 0, number, 10)),
    finishedAt: new Date(Date.UTC(2025, 0, number, 11)),
    supervisedTest: undefined,
    supervisedNoisedTest: undefined,
  };
}

let script: Script;
let server: GrpcServer;
let trainer: TrainerConnection;

function deadlineOf(call: { getDeadline(): Date | number }): number {
  const deadline = call.getDeadline();
  return deadline instanceof Date ? deadline.getTime() : deadline;
}

const fakeTrainer: TrainerServer = {
  getStatus(call: ServerUnaryCall<unknown, GetStatusResponse>, callback: sendUnaryData<GetStatusResponse>) {
    script.seen.push({
      method: 'GetStatus',
      metadata: call.metadata,
      deadline: deadlineOf(call),
      request: call.request,
    });
    const error = script.statusErrors.shift();
    if (error !== undefined) callback(error);
    else callback(null, script.status);
  },
  listRounds(
    call: ServerUnaryCall<ListRoundsRequest, ListRoundsResponse>,
    callback: sendUnaryData<ListRoundsResponse>,
  ) {
    script.seen.push({
      method: 'ListRounds',
      metadata: call.metadata,
      deadline: deadlineOf(call),
      request: call.request,
    });
    if (!script.hangRounds) callback(null, { rounds: script.rounds.slice(0, call.request.limit || undefined) });
  },
};

beforeAll(async () => {
  server = await startGrpcServer({ port: 0 }, [
    { name: 'noisystudent.v1.Trainer', definition: TrainerService, implementation: fakeTrainer },
  ]);
  trainer = connectTrainer({
    address: `127.0.0.1:${server.port}`,
    metadata: { authorization: 'Bearer secret' },
    retry: { attempts: 3, initialBackoffMs: 10, maxBackoffMs: 20 },
  });
});

beforeEach(() => {
  script = { status: STATUS, rounds: [], statusErrors: [], hangRounds: false, seen: [] };
});

afterAll(async () => {
  trainer?.close();
  await server?.shutdown(1_000);
});

describe('the trainer client', () => {
  it('gives the status as plain numbers with the phase by name', async () => {
    expect(await trainer.status()).toEqual({ ...STATUS, phase: 'training' });
  });

  it('lists rounds with the decision by name and Dates, passing the limit', async () => {
    script.rounds = [
      round(3, RoundDecision.REJECTED),
      round(2, RoundDecision.PROMOTED),
      round(1, RoundDecision.FAILED),
    ];
    const rounds = await trainer.rounds({ limit: 2 });
    expect(script.seen[0]?.request).toEqual({ limit: 2 });
    expect(rounds.map((entry) => [entry.round, entry.decision])).toEqual([
      [3, 'rejected'],
      [2, 'promoted'],
    ]);
    expect(rounds[0]?.startedAt).toEqual(new Date('2025-01-03T10:00:00Z'));
    expect(rounds[0]?.pseudoLabeledExamples).toBe(2 ** 40);
    expect(rounds[0]?.teacherEval?.top1Accuracy).toBe(0.8);
    expect((await trainer.rounds()).map((entry) => entry.decision)).toEqual(['rejected', 'promoted', 'failed']);
  });

  it('names every phase and decision, and an unknown one unspecified', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, -1].map((phase) => phaseName(phase as TrainerPhase))).toEqual([
      'unspecified',
      'bootstrapping',
      'collecting',
      'training',
      'evaluating',
      'promoting',
      'stopping',
      'unspecified',
      'unspecified',
    ]);
    expect([0, 1, 2, 3, 9].map((decision) => decisionName(decision as RoundDecision))).toEqual([
      'unspecified',
      'promoted',
      'rejected',
      'failed',
      'unspecified',
    ]);
  });

  it("sends the connection's metadata with the call's, and the call's deadline", async () => {
    const before = Date.now();
    await trainer.status({ deadlineMs: 5_000, metadata: { 'x-request-id': 'r1' } });
    const seen = script.seen[0];
    expect(seen?.metadata.get('authorization')).toEqual(['Bearer secret']);
    expect(seen?.metadata.get('x-request-id')).toEqual(['r1']);
    expect(seen?.deadline).toBeGreaterThanOrEqual(before + 4_000);
    expect(seen?.deadline).toBeLessThanOrEqual(Date.now() + 5_000);
  });

  it('retries UNAVAILABLE and nothing else', async () => {
    script.statusErrors = [
      { code: status.UNAVAILABLE, details: 'no teacher yet' },
      { code: status.UNAVAILABLE, details: 'no teacher yet' },
    ];
    expect((await trainer.status()).phase).toBe('training');
    expect(script.seen).toHaveLength(3);

    script.seen = [];
    script.statusErrors = [{ code: status.FAILED_PRECONDITION, details: 'round store: unreadable' }];
    const error = await trainer.status().catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(ClientError);
    expect(error).toMatchObject({ code: status.FAILED_PRECONDITION, codeName: 'FAILED_PRECONDITION', attempts: 1 });
    expect((error as ClientError).message).toBe(
      `trainer GetStatus at 127.0.0.1:${server.port}: FAILED_PRECONDITION: round store: unreadable`,
    );
    expect(script.seen).toHaveLength(1);

    script.statusErrors = Array.from({ length: 3 }, () => ({ code: status.UNAVAILABLE, details: 'shutting down' }));
    const exhausted = await trainer.status().catch((thrown: unknown) => thrown);
    expect(exhausted).toMatchObject({ code: status.UNAVAILABLE, attempts: 3 });
    expect((exhausted as ClientError).message).toBe(
      `trainer at 127.0.0.1:${server.port} is unavailable (UNAVAILABLE: shutting down; 3 attempts): try again shortly`,
    );
  });

  it('ends a call at its deadline with DEADLINE_EXCEEDED', async () => {
    script.hangRounds = true;
    const error = await trainer.rounds({ deadlineMs: 200 }).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(ClientError);
    expect(error).toMatchObject({ code: status.DEADLINE_EXCEEDED, service: 'trainer', method: 'ListRounds' });
    expect((error as ClientError).message).toMatch(
      /^trainer ListRounds at 127\.0\.0\.1:\d+: no answer within 200 ms \(DEADLINE_EXCEEDED\)/,
    );
  });

  it('reports health as the server sets it', async () => {
    server.setServing('NOT_SERVING');
    expect(await trainer.health()).toBe('NOT_SERVING');
    server.setServing('SERVING');
    expect(await trainer.health()).toBe('SERVING');
    expect(await trainer.health({ service: '' })).toBe('SERVING');
    await expect(trainer.health({ service: 'noisystudent.v1.Nothing' })).rejects.toMatchObject({
      code: status.NOT_FOUND,
      service: 'trainer',
      method: 'Check',
    });
  });
});

describe('the trainer client against the real trainer', () => {
  let nats: NatsServer;
  let directory: string;
  let real: Trainer;
  let client: TrainerConnection;

  beforeAll(async () => {
    await initBackend({ request: 'cpu', log: () => undefined });
    nats = await startNatsServer();
    directory = await mkdtemp(join(tmpdir(), 'ns-client-trainer-'));
    const importTeacher = join(directory, 'v1.nsmodel');
    await writeFile(importTeacher, (await makeTestArtifact({ version: 'v1', seed: 2 })).bytes);
    const config = { port: 0, metricsPort: 0, natsUrl: nats.url, stateDir: join(directory, 'state'), importTeacher };
    real = await startTrainer(
      trainerConfig({ ...config, preset: 'smoke' }, {}),
      createLogger({ service: 'trainer', level: 'silent' }),
    );
    client = connectTrainer(`127.0.0.1:${real.port}`);
  });

  afterAll(async () => {
    client?.close();
    await real?.stop();
    await nats?.stop();
    await rm(directory, { recursive: true, force: true });
  });

  /** Asks GetStatus until `done` holds (the trainer announces no phase changes), for at most `timeoutMs`. */
  async function statusWhen(done: (status: TrainerStatus) => boolean, timeoutMs = 30_000): Promise<TrainerStatus[]> {
    const seen: TrainerStatus[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const current = await client.status();
      seen.push(current);
      if (done(current)) return seen;
      if (Date.now() > deadline) throw new Error(`trainer status never matched; last ${JSON.stringify(current)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('reports its phases by name, an empty round list, and its health', async () => {
    const seen = await statusWhen((current) => current.phase === 'collecting' && current.teacherVersion === 'v1');
    const phases: TrainerPhaseName[] = ['bootstrapping', 'collecting'];
    expect(seen.every((current) => phases.includes(current.phase))).toBe(true);
    expect(seen.at(-1)).toMatchObject({ phase: 'collecting', teacherVersion: 'v1', round: 1, step: 0 });
    expect(seen.at(-1)?.examplesNeeded).toBeGreaterThan(0);
    expect(await client.rounds({ limit: 5 })).toEqual([]);
    expect(await client.health()).toBe('SERVING');
  });
});
