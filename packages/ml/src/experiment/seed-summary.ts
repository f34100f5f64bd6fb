import type { Recipe } from './decisions.js';
import type { ExperimentResult } from './run-experiment.js';

/** One reported number over the seeds: its mean and its range (min to max). */
export interface Spread {
  mean: number;
  min: number;
  max: number;
}

/** `ExperimentResult`'s accuracies, each as a `Spread` over runs that differ only in their seed. */
export interface ExperimentSummary {
  dataset: string;
  preset: string;
  seeds: number[];
  chosen_on: 'eval';
  teacher: {
    accuracy: Spread;
    eval_accuracy: Spread;
    /** How many runs chose each recipe. */
    recipes: Record<Recipe, number>;
  };
  rounds: {
    student: { accuracy: Spread; eval_accuracy: Spread };
    pseudo_label_accuracy: Spread;
    baselines: { supervised: Spread; supervised_noised: Spread };
    gain_over_best_baseline: Spread;
    /** How many runs promoted this round's student. */
    promoted: number;
  }[];
}

export function spread(values: readonly number[]): Spread {
  if (values.length === 0) throw new Error('values: expected at least one run, got none');
  const mean = values.reduce((total, value) => total + value, 0) / values.length;
  return { mean: Math.round(mean * 100) / 100, min: Math.min(...values), max: Math.max(...values) };
}

/**
 * Mean, min and max of every accuracy the runs report. The runs must be of one configuration
 * (same dataset, preset and number of rounds); only their seeds differ.
 */
export function summarizeSeeds(runs: readonly ExperimentResult[]): ExperimentSummary {
  const [first] = runs;
  if (first === undefined) throw new Error('runs: expected at least one run, got none');
  runs.forEach((run, index) => {
    if (run.dataset !== first.dataset || run.preset !== first.preset || run.rounds.length !== first.rounds.length) {
      throw new Error(
        `runs[${index}]: expected ${first.dataset}/${first.preset}, ${first.rounds.length} round(s), like runs[0]; ` +
          `got ${run.dataset}/${run.preset}, ${run.rounds.length} round(s)`,
      );
    }
  });
  const over = (pick: (run: ExperimentResult) => number): Spread => spread(runs.map(pick));
  const count = (test: (run: ExperimentResult) => boolean): number => runs.filter(test).length;
  return {
    dataset: first.dataset,
    preset: first.preset,
    seeds: runs.map((run) => run.seed),
    chosen_on: 'eval',
    teacher: {
      accuracy: over((run) => run.teacher.accuracy),
      eval_accuracy: over((run) => run.teacher.eval_accuracy),
      recipes: {
        supervised: count((run) => run.teacher.recipe === 'supervised'),
        supervised_noised: count((run) => run.teacher.recipe === 'supervised_noised'),
      },
    },
    rounds: first.rounds.map((_, index) => {
      const round = (run: ExperimentResult) => {
        const result = run.rounds[index];
        if (result === undefined) throw new Error(`runs: round ${index + 1} missing`);
        return result;
      };
      return {
        student: {
          accuracy: over((run) => round(run).student.accuracy),
          eval_accuracy: over((run) => round(run).student.eval_accuracy),
        },
        pseudo_label_accuracy: over((run) => round(run).pseudo_label_accuracy),
        baselines: {
          supervised: over((run) => round(run).baselines.supervised),
          supervised_noised: over((run) => round(run).baselines.supervised_noised),
        },
        gain_over_best_baseline: over((run) => round(run).gain_over_best_baseline),
        promoted: count((run) => round(run).promoted),
      };
    }),
  };
}
