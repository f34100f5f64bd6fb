import type { ProbabilityRows } from './metrics.js';

/** How far a row's sum may stray from 1: float32 softmax over thousands of classes stays far inside. */
export const ROW_SUM_TOLERANCE = 1e-3;

/** A checked window of teacher outputs: every row a probability distribution over `classes`. */
export interface ProbabilityTable {
  rows: number;
  classes: number;
  /** Probability of class `classIndex` in row `row`. */
  valueAt(row: number, classIndex: number): number;
  /** The top class of each row (the lowest class index on a tie). */
  topClass: Int32Array;
  /** The top probability of each row, as given. */
  topProbability: Float64Array;
  /**
   * 1 where the row came as float32 (a `Float32Array`), so a threshold is compared at float32
   * precision: a float32 0.7 is 0.699999988…, and it must still reach a threshold of 0.7.
   */
  float32: Uint8Array;
}

export interface ReadProbabilityRowsOptions {
  /** The number of rows there must be (one per label); errors then say so. @default any */
  expectedRows?: number;
  /** The index of the first row in a larger set, so errors name rows by that index. @default 0 */
  firstRow?: number;
}

/**
 * Reads and checks probabilities given flat (row-major `N × classes`, e.g. a `[N, classes]`
 * tensor's `dataSync()`) or as an array of rows (`number[][]`, `Float32Array[]`). Errors name the
 * row: `probabilities[4]: expected values summing to 1 ± 0.001 (softmax outputs, not logits), got 1.7`.
 * The one reader of model outputs: the pseudo-label policy and evaluation both use it.
 */
export function readProbabilityRows(
  probabilities: ProbabilityRows,
  classes: number,
  options: ReadProbabilityRowsOptions = {},
): ProbabilityTable {
  if (!Number.isInteger(classes) || classes < 2) {
    throw new Error(`classes: expected an integer ≥ 2, got ${classes}`);
  }
  const { expectedRows } = options;
  const firstRow = options.firstRow ?? 0;
  let rows: number;
  let valueAt: (row: number, classIndex: number) => number;
  const float32Row: (row: number) => boolean = isRowArray(probabilities)
    ? (row) => probabilities[row] instanceof Float32Array
    : () => probabilities instanceof Float32Array;
  if (isRowArray(probabilities)) {
    rows = probabilities.length;
    if (expectedRows !== undefined && rows !== expectedRows) {
      throw new Error(`probabilities: expected ${expectedRows} rows (one per label), got ${rows}`);
    }
    probabilities.forEach((values, row) => {
      if (values.length !== classes) {
        throw new Error(
          `probabilities[${firstRow + row}]: expected ${classes} values (one per class), got ${values.length}`,
        );
      }
    });
    valueAt = (row, classIndex) => probabilities[row]?.[classIndex] ?? Number.NaN;
  } else {
    if (expectedRows !== undefined && probabilities.length !== expectedRows * classes) {
      throw new Error(
        `probabilities: expected ${expectedRows}×${classes} = ${expectedRows * classes} values (one row of ${classes} per label), got ${probabilities.length}`,
      );
    }
    if (probabilities.length % classes !== 0) {
      throw new Error(
        `probabilities: expected a multiple of ${classes} values (one row of ${classes} per example), got ${probabilities.length}`,
      );
    }
    rows = probabilities.length / classes;
    valueAt = (row, classIndex) => probabilities[row * classes + classIndex] ?? Number.NaN;
  }

  const topClass = new Int32Array(rows);
  const topProbability = new Float64Array(rows);
  const float32 = new Uint8Array(rows);
  for (let row = 0; row < rows; row++) {
    let sum = 0;
    let top = 0;
    let topValue = -1;
    for (let classIndex = 0; classIndex < classes; classIndex++) {
      const value = valueAt(row, classIndex);
      if (!(value >= 0 && value <= 1)) {
        throw new Error(
          `probabilities[${firstRow + row}][${classIndex}]: expected a probability in [0, 1], got ${value}`,
        );
      }
      sum += value;
      if (value > topValue) {
        topValue = value;
        top = classIndex;
      }
    }
    if (Math.abs(sum - 1) > ROW_SUM_TOLERANCE) {
      throw new Error(
        `probabilities[${firstRow + row}]: expected values summing to 1 ± ${ROW_SUM_TOLERANCE} (softmax outputs, not logits), got ${sum}`,
      );
    }
    topClass[row] = top;
    topProbability[row] = topValue;
    float32[row] = float32Row(row) ? 1 : 0;
  }
  return { rows, classes, valueAt, topClass, topProbability, float32 };
}

function isRowArray(probabilities: ProbabilityRows): probabilities is readonly ArrayLike<number>[] {
  return Array.isArray(probabilities) && probabilities.length > 0 && typeof probabilities[0] !== 'number';
}
