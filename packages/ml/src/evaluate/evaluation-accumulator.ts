import { calibrationBinIndex, expectedCalibrationError, type CalibrationBin } from './calibration.js';
import {
  DEFAULT_CALIBRATION_BINS,
  DEFAULT_LOSS_EPSILON,
  type Evaluation,
  type EvaluationOptions,
  type ProbabilityRows,
} from './metrics.js';
import { readProbabilityRows } from './probability-rows.js';

/**
 * The sufficient statistics of an `Evaluation` (confusion counts, loss sum, per-bin counts and
 * sums), added to one batch at a time so a model's outputs never have to be held all at once.
 * Adding the batches of a set gives the same `Evaluation` as `evaluatePredictions` on the whole
 * set. A batch is checked entirely before it counts: a bad batch changes nothing.
 */
export class EvaluationAccumulator {
  readonly classes: number;
  readonly bins: number;
  readonly epsilon: number;
  private examples = 0;
  private correct = 0;
  private lossSum = 0;
  private readonly confusion: number[][];
  private readonly binCount: number[];
  private readonly binCorrect: number[];
  private readonly binConfidence: number[];

  constructor(classes: number, options: EvaluationOptions = {}) {
    const bins = options.bins ?? DEFAULT_CALIBRATION_BINS;
    const epsilon = options.epsilon ?? DEFAULT_LOSS_EPSILON;
    if (!Number.isInteger(classes) || classes < 2) {
      throw new Error(`classes: expected an integer ≥ 2, got ${classes}`);
    }
    if (!Number.isInteger(bins) || bins < 1) throw new Error(`bins: expected a positive integer, got ${bins}`);
    if (!(epsilon > 0 && epsilon < 1)) throw new Error(`epsilon: expected a number in (0, 1), got ${epsilon}`);
    this.classes = classes;
    this.bins = bins;
    this.epsilon = epsilon;
    this.confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
    this.binCount = new Array<number>(bins).fill(0);
    this.binCorrect = new Array<number>(bins).fill(0);
    this.binConfidence = new Array<number>(bins).fill(0);
  }

  /** Examples added so far; errors name examples by their index in the whole set. */
  get count(): number {
    return this.examples;
  }

  /** Adds one batch: `probabilities` rows for `labels.length` examples. */
  add(probabilities: ProbabilityRows, labels: ArrayLike<number>): void {
    const count = labels.length;
    const table = readProbabilityRows(probabilities, this.classes, { expectedRows: count, firstRow: this.examples });
    const { valueAt, topClass: predicted, topProbability: confidence } = table;
    for (let i = 0; i < count; i++) {
      const label = labels[i];
      if (label === undefined || !Number.isInteger(label) || label < 0 || label >= this.classes) {
        throw new Error(
          `labels[${this.examples + i}]: expected an integer class index in 0–${this.classes - 1}, got ${label}`,
        );
      }
    }
    for (let i = 0; i < count; i++) {
      const label = labels[i] ?? 0;
      const top = predicted[i] ?? 0;
      const topValue = confidence[i] ?? 0;
      const row = this.confusion[label];
      if (row !== undefined) row[top] = (row[top] ?? 0) + 1;
      const hit = top === label ? 1 : 0;
      this.correct += hit;
      this.lossSum -= Math.log(Math.max(valueAt(i, label), this.epsilon));
      const bin = calibrationBinIndex(topValue, this.bins);
      this.binCount[bin] = (this.binCount[bin] ?? 0) + 1;
      this.binCorrect[bin] = (this.binCorrect[bin] ?? 0) + hit;
      this.binConfidence[bin] = (this.binConfidence[bin] ?? 0) + topValue;
    }
    this.examples += count;
  }

  /** The metrics of everything added so far. */
  result(): Evaluation {
    const count = this.examples;
    if (count === 0) throw new Error('labels: expected at least one example, got none');
    const calibration: CalibrationBin[] = this.binCount.map((binCount, bin) => ({
      lower: bin / this.bins,
      upper: (bin + 1) / this.bins,
      count: binCount,
      accuracy: binCount === 0 ? Number.NaN : (this.binCorrect[bin] ?? 0) / binCount,
      meanConfidence: binCount === 0 ? Number.NaN : (this.binConfidence[bin] ?? 0) / binCount,
    }));
    const confusion = this.confusion.map((row) => [...row]);
    const classCounts = confusion.map((row) => row.reduce((sum, cell) => sum + cell, 0));
    return {
      count,
      accuracy: this.correct / count,
      perClassAccuracy: confusion.map((row, label) => {
        const total = classCounts[label] ?? 0;
        return total === 0 ? Number.NaN : (row[label] ?? 0) / total;
      }),
      classCounts,
      loss: this.lossSum / count,
      expectedCalibrationError: expectedCalibrationError(calibration),
      bins: this.bins,
      calibration,
      confusion,
    };
  }
}
