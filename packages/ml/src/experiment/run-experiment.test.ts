import { beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../backend/select-backend.js';
import { loadFashionMnist } from '../data/fashion-mnist.js';
import { PRESETS } from './presets.js';
import { runNoisyStudentExperiment } from './run-experiment.js';

beforeAll(async () => {
  await initBackend({ request: 'wasm', log: () => undefined });
});

describe('the offline Noisy Student experiment (smoke preset, real Fashion-MNIST)', () => {
  it('runs teacher, pseudo-labels, student and baselines, and reports them in the documented shape', async () => {
    const [train, test] = await Promise.all([loadFashionMnist('train'), loadFashionMnist('test')]);
    const lines: string[] = [];
    const smoke = PRESETS['smoke'];
    if (smoke === undefined) throw new Error('no smoke preset');
    const result = await runNoisyStudentExperiment(
      { ...smoke, rounds: 2 },
      { name: 'fashion-mnist', train, test },
      (line) => lines.push(line),
    );
    expect(result).toMatchObject({ dataset: 'fashion-mnist', labels: 100, unlabeled: 400, preset: 'smoke' });
    expect(result.teacher.steps).toBe(20);
    expect(['supervised', 'supervised_noised']).toContain(result.teacher.recipe);
    expect(result.rounds).toHaveLength(2);
    for (const round of result.rounds) {
      for (const accuracy of [
        round.student.accuracy,
        round.baselines.supervised,
        round.baselines.supervised_noised,
        round.pseudo_label_accuracy,
      ]) {
        expect(accuracy).toBeGreaterThanOrEqual(0);
        expect(accuracy).toBeLessThanOrEqual(100);
      }
      expect(round.accepted).toBeGreaterThan(0);
      expect(round.accepted).toBeLessThanOrEqual(400);
      expect(round.promoted).toBe(round.student.accuracy > round.teacherAccuracy);
    }
    // The second round's teacher is the first round's student when it was promoted.
    const [first, second] = result.rounds;
    if (first !== undefined && second !== undefined) {
      expect(second.teacherAccuracy).toBe(first.promoted ? first.student.accuracy : first.teacherAccuracy);
    }
    // Baselines at the same budget are trained once and reused.
    expect(lines.filter((line) => line.startsWith('supervised (20 steps)'))).toHaveLength(1);
    expect(lines.some((line) => /round 1: kept \d+\/400 pseudo-labels/.test(line))).toBe(true);
  });
});
