import type { CalibrationBin } from './calibration.js';
import { EvaluationAccumulator } from './evaluation-accumulator.js';

/** Equal-width confidence bins of the expected calibration error. */
export const DEFAULT_CALIBRATION_BINS = 15;

/** Probabilities below this are raised to it before the log of the cross-entropy (Keras' epsilon). */
export const DEFAULT_LOSS_EPSILON = 1e-7;

export interface EvaluationOptions {
  /** Equal-width confidence bins of the expected calibration error. @default 15 */
  bins?: number;
  /**
   * The cross-entropy of an example is −ln max(p[label], epsilon), so one confidently wrong
   * example costs at most −ln epsilon (16.1 nats) instead of +∞. @default 1e-7
   */
  epsilon?: number;
}

/**
 * Probabilities as models give them: one row of `classes` values per example, either flat
 * (row-major `N × classes`, e.g. a `[N, classes]` tensor's `data()`) or as an array of rows.
 * Each row is a distribution (values in [0, 1] summing to 1 ± 1e-3): softmax outputs, not logits.
 */
export type ProbabilityRows = ArrayLike<number> | readonly ArrayLike<number>[];

/** What a model got right, how sure it was, and how well its confidence matches its accuracy. */
export interface Evaluation {
  /** Examples evaluated. */
  count: number;
  /** Top-1 accuracy, 0–1: the top class (the first one on a tie) equals the label. */
  accuracy: number;
  /** Top-1 accuracy per true class, 0–1 (NaN for a class with no example). */
  perClassAccuracy: number[];
  /** Examples per true class. */
  classCounts: number[];
  /** Mean cross-entropy −ln max(p[label], epsilon) over the examples, in nats. */
  loss: number;
  /** Σ_b (n_b / N) · |acc_b − conf_b| over `bins` equal-width confidence bins (see calibration.ts). */
  expectedCalibrationError: number;
  /** Number of calibration bins. */
  bins: number;
  /** The bins behind the expected calibration error: a reliability diagram. */
  calibration: CalibrationBin[];
  /** `confusion[trueLabel][predictedClass]`: counts; rows sum to `classCounts`. */
  confusion: number[][];
}

/**
 * Every metric of `probabilities` against integer `labels` in 0…classes−1: top-1 and per-class
 * accuracy, mean cross-entropy, expected calibration error, confusion matrix. Pure. Bad input is
 * an error naming the example: `labels[7]: expected an integer class index in 0–9, got 10`.
 */
export function evaluatePredictions(
  probabilities: ProbabilityRows,
  labels: ArrayLike<number>,
  classes: number,
  options: EvaluationOptions = {},
): Evaluation {
  if (labels.length === 0) throw new Error('labels: expected at least one example, got none');
  const accumulator = new EvaluationAccumulator(classes, options);
  accumulator.add(probabilities, labels);
  return accumulator.result();
}
