import { access, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { EvaluationMetrics, RoundDecision, RoundRecord } from '@noisystudent/proto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { RoundStore, type RoundState } from './round-store.js';

let directory: string;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'ns-round-store-'));
});

afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

function metrics(dataset: string, top1Accuracy: number): EvaluationMetrics {
  return EvaluationMetrics.fromPartial({
    dataset,
    exampleCount: 300,
    top1Accuracy,
    loss: 1.25,
    expectedCalibrationError: 0.05,
    eceBinCount: 15,
    perClassAccuracy: [0.5, 0.75, 1],
  });
}

function state(round: number, teacherVersion: string, shardIds: string[]): RoundState {
  return {
    round,
    teacherVersion,
    teacherRevision: round * 2,
    shardIds,
    shardFiles: shardIds.map((id) => join('shards', teacherVersion, `${id}.shard`)),
    studentVersion: `v${round + 1}`,
    width: 1.5,
    startedAt: new Date(Date.UTC(2025, 0, round)).toISOString(),
  };
}

function record(round: number, teacherVersion: string, decision: RoundDecision): RoundRecord {
  return RoundRecord.fromPartial({
    round,
    teacherVersion,
    teacherEval: metrics('fashion-mnist/eval', 0.5),
    teacherTest: metrics('fashion-mnist/test', 0.52),
    shards: 3,
    pseudoLabeledExamples: 120,
    examplesPerClass: [40, 40, 40],
    labeledExamples: 100,
    studentVersion: decision === RoundDecision.PROMOTED ? `v${round + 1}` : '',
    studentTraining: { steps: 80 },
    studentEval: metrics('fashion-mnist/eval', 0.6),
    studentTest: metrics('fashion-mnist/test', 0.61),
    decision,
    reason: 'student 60% vs teacher v1 50% on eval (margin 0)',
    startedAt: new Date(Date.UTC(2025, 0, round)),
    finishedAt: new Date(Date.UTC(2025, 0, round, 1)),
  });
}

describe('RoundStore', () => {
  it('starts empty', async () => {
    const store = await RoundStore.open(directory);
    expect(store.finished).toEqual([]);
    expect(store.unfinished).toBeUndefined();
    expect(store.lastRound).toBe(0);
    expect(store.usedShards('v1').size).toBe(0);
    expect(store.lastRecordOf('v1')).toBeUndefined();
    expect(await store.teacherEvaluation('v1')).toBeUndefined();
    expect((await readdir(directory)).sort()).toEqual(['rounds', 'teachers']);
  });

  it('keeps round states and records across a reopen, and finds the round started and not recorded', async () => {
    const first = await RoundStore.open(directory);
    const round1 = state(1, 'v1', ['w1.0', 'w2.0']);
    await first.save(round1);
    expect(first.unfinished).toEqual(round1);
    expect(first.lastRound).toBe(1);
    const trained: RoundState = {
      ...round1,
      trained: { steps: 80, shards: 2, examples: 120, perClass: [40, 40, 40], eval: { top1Accuracy: 0.6 }, test: {} },
    };
    await first.save(trained);
    const record1 = record(1, 'v1', RoundDecision.REJECTED);
    await first.finish(record1);
    expect(first.unfinished).toBeUndefined();
    const round2 = state(2, 'v1', ['w1.0', 'w2.0', 'w3.0']);
    await first.save(round2);
    const round3 = state(3, 'v2', ['x1.0']);
    await first.save(round3);
    // Folders that are not a round, or a round whose state was never written, are ignored.
    await mkdir(join(directory, 'rounds', 'scratch'));
    await mkdir(join(directory, 'rounds', '9'));

    const second = await RoundStore.open(directory);
    expect(second.finished).toEqual([record1]);
    expect(second.finished[0]?.finishedAt).toEqual(new Date(Date.UTC(2025, 0, 1, 1)));
    expect(second.lastRound).toBe(3);
    expect(second.unfinished?.round).toBe(2);
    expect(second.usedShards('v1')).toEqual(new Set(['w1.0', 'w2.0', 'w3.0']));
    expect(second.usedShards('v2')).toEqual(new Set(['x1.0']));
    expect(second.usedShards('v3').size).toBe(0);
    expect(second.lastRecordOf('v1')).toEqual(record1);
    expect(second.lastRecordOf('v2')).toBeUndefined();

    const record2 = record(2, 'v1', RoundDecision.PROMOTED);
    await second.finish(record2);
    const record3 = record(3, 'v2', RoundDecision.FAILED);
    await second.finish(record3);

    const third = await RoundStore.open(directory);
    expect(third.finished).toEqual([record1, record2, record3]);
    expect(third.unfinished).toBeUndefined();
    expect(third.lastRecordOf('v1')?.round).toBe(2);
    expect(third.lastRound).toBe(3);
    // The next round after a restart is numbered on from every round started, recorded or not.
    await third.save(state(4, 'v2', ['x1.0', 'x2.0']));
    const fourth = await RoundStore.open(directory);
    expect(fourth.unfinished?.round).toBe(4);
    expect(fourth.lastRound).toBe(4);
    expect(fourth.usedShards('v2')).toEqual(new Set(['x1.0', 'x2.0']));
  });

  it('reads back a trained state as saved', async () => {
    const store = await RoundStore.open(directory);
    const trained: RoundState = {
      ...state(1, 'v1', ['w1.0']),
      trained: {
        steps: 80,
        shards: 1,
        examples: 30,
        perClass: [10, 10, 10],
        eval: EvaluationMetrics.toJSON(metrics('fashion-mnist/eval', 0.6)),
        test: EvaluationMetrics.toJSON(metrics('fashion-mnist/test', 0.61)),
      },
    };
    await store.save(trained);
    const reopened = await RoundStore.open(directory);
    expect(reopened.unfinished).toEqual(trained);
    expect(EvaluationMetrics.fromJSON(reopened.unfinished?.trained?.eval)).toEqual(metrics('fashion-mnist/eval', 0.6));
  });

  it('keeps each teacher’s evaluation', async () => {
    const store = await RoundStore.open(directory);
    const evaluation = {
      eval: metrics('fashion-mnist/eval', 0.55),
      test: metrics('fashion-mnist/test', 0.57),
      params: 12_345,
    };
    await store.saveTeacherEvaluation('v1', evaluation);
    await store.saveTeacherEvaluation('v2', { ...evaluation, params: 99 });
    const reopened = await RoundStore.open(directory);
    expect(await reopened.teacherEvaluation('v1')).toEqual(evaluation);
    expect((await reopened.teacherEvaluation('v2'))?.params).toBe(99);
    expect(await reopened.teacherEvaluation('v3')).toBeUndefined();
  });

  it('removes the round’s checkpoint when it is recorded, keeping its state and student', async () => {
    const store = await RoundStore.open(directory);
    await store.save(state(1, 'v1', ['w1.0']));
    const folder = store.roundDirectory(1);
    expect(folder).toBe(join(directory, 'rounds', '1'));
    await writeFile(join(folder, 'student.ckpt'), 'checkpoint');
    await writeFile(join(folder, 'student.nsmodel'), 'artifact');
    await store.finish(record(1, 'v1', RoundDecision.PROMOTED));
    expect((await readdir(folder)).sort()).toEqual(['state.json', 'student.nsmodel']);
    // A round recorded without a checkpoint (it failed before one) is fine too.
    await store.save(state(2, 'v1', ['w1.0']));
    await store.finish(record(2, 'v1', RoundDecision.FAILED));
    expect(await exists(join(store.roundDirectory(2), 'student.ckpt'))).toBe(false);
    expect((await RoundStore.open(directory)).finished.map((entry) => entry.round)).toEqual([1, 2]);
  });

  it('refuses an unreadable record file, naming it', async () => {
    await writeFile(join(directory, 'rounds.json'), '{ not json');
    await expect(RoundStore.open(directory)).rejects.toThrow(
      `${join(directory, 'rounds.json')}: unreadable round records`,
    );
  });
});
