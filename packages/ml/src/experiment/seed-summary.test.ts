import { describe, expect, it } from 'vitest';

import type { ExperimentResult, RoundResult } from './run-experiment.js';
import { spread, summarizeSeeds } from './seed-summary.js';

function round(student: number, baselines: [number, number], promoted: boolean): RoundResult {
  return {
    student: { accuracy: student, eval_accuracy: student + 1, steps: 40, ece: 0.05 },
    teacherAccuracy: 60,
    teacher_eval_accuracy: 61,
    accepted: 200,
    acceptedFraction: 0.5,
    pseudo_label_accuracy: 70,
    promoted,
    baselines: { supervised: baselines[0], supervised_noised: baselines[1] },
    gain_over_best_baseline: Math.round((student - Math.max(...baselines)) * 100) / 100,
  };
}

function run(seed: number, teacher: number, rounds: RoundResult[]): ExperimentResult {
  return {
    dataset: 'fashion-mnist',
    seed,
    labels: 100,
    unlabeled: 400,
    eval_images: 300,
    test_images: 300,
    preset: 'smoke',
    chosen_on: 'eval',
    teacher: {
      accuracy: teacher,
      eval_accuracy: teacher - 2,
      steps: 40,
      recipe: seed === 2 ? 'supervised_noised' : 'supervised',
      recipes: {
        supervised: { accuracy: teacher, eval_accuracy: teacher - 2 },
        supervised_noised: { accuracy: teacher - 5, eval_accuracy: teacher - 6 },
      },
    },
    rounds,
    wall_s: 10,
  };
}

describe('summarizeSeeds', () => {
  it('gives mean, min and max of every reported accuracy, round by round', () => {
    const summary = summarizeSeeds([
      run(1, 60, [round(62, [59, 55], true), round(63, [59, 55], true)]),
      run(2, 58, [round(57, [58, 56], false), round(59, [58, 56], true)]),
      run(3, 62, [round(64, [61, 57], true), round(64, [61, 57], false)]),
    ]);
    expect(summary).toMatchObject({ dataset: 'fashion-mnist', preset: 'smoke', seeds: [1, 2, 3], chosen_on: 'eval' });
    expect(summary.teacher).toEqual({
      accuracy: { mean: 60, min: 58, max: 62 },
      eval_accuracy: { mean: 58, min: 56, max: 60 },
      recipes: { supervised: 2, supervised_noised: 1 },
    });
    expect(summary.rounds).toHaveLength(2);
    const [first, second] = summary.rounds;
    expect(first?.student.accuracy).toEqual({ mean: 61, min: 57, max: 64 });
    expect(first?.student.eval_accuracy).toEqual({ mean: 62, min: 58, max: 65 });
    expect(first?.baselines.supervised).toEqual({ mean: 59.33, min: 58, max: 61 });
    expect(first?.gain_over_best_baseline).toEqual({ mean: 1.67, min: -1, max: 3 });
    expect(first?.promoted).toBe(2);
    expect(second?.student.accuracy).toEqual({ mean: 62, min: 59, max: 64 });
    expect(second?.gain_over_best_baseline).toEqual({ mean: 2.67, min: 1, max: 4 });
    expect(second?.promoted).toBe(2);
  });

  it('refuses runs of different configurations and no runs at all', () => {
    expect(() => summarizeSeeds([run(1, 60, [round(62, [59, 55], true)]), run(2, 60, [])])).toThrow(
      'runs[1]: expected fashion-mnist/smoke, 1 round(s), like runs[0]; got fashion-mnist/smoke, 0 round(s)',
    );
    expect(() => summarizeSeeds([])).toThrow('runs: expected at least one run, got none');
  });
});

describe('spread', () => {
  it('rounds the mean to hundredths and keeps min and max as they are', () => {
    expect(spread([1, 2, 2])).toEqual({ mean: 1.67, min: 1, max: 2 });
    expect(spread([83.12])).toEqual({ mean: 83.12, min: 83.12, max: 83.12 });
  });
});
