/** What a model got right, how sure it was, and how well its confidence matches its accuracy. */
export interface Evaluation {
  count: number;
  /** Top-1 accuracy, 0–1. */
  accuracy: number;
  /** Accuracy per true class (NaN for a class with no example). */
  perClassAccuracy: number[];
  /** Mean cross-entropy −log p[label], with p clamped to ≥ 1e-7. */
  loss: number;
  /**
   * Expected calibration error over `bins` equal-width confidence bins:
   * Σ_b (n_b / N) · |accuracy_b − mean confidence_b|.
   */
  expectedCalibrationError: number;
  bins: number;
  /** `confusion[true][predicted]` counts. */
  confusion: number[][];
}

/** Metrics of `probabilities` (`N × classes` rows) against integer `labels`. @param bins @default 15 */
export function evaluatePredictions(
  probabilities: Float32Array,
  labels: ArrayLike<number>,
  classes: number,
  bins = 15,
): Evaluation {
  const count = labels.length;
  if (count === 0) throw new Error('labels: expected at least one example');
  if (probabilities.length !== count * classes) {
    throw new Error(
      `probabilities: expected ${count}×${classes} = ${count * classes} values, got ${probabilities.length}`,
    );
  }
  if (!Number.isInteger(bins) || bins < 1) throw new Error(`bins: expected a positive integer, got ${bins}`);
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  const binCount = new Array<number>(bins).fill(0);
  const binCorrect = new Array<number>(bins).fill(0);
  const binConfidence = new Array<number>(bins).fill(0);
  let correct = 0;
  let lossSum = 0;
  for (let i = 0; i < count; i++) {
    const label = labels[i] ?? -1;
    if (!Number.isInteger(label) || label < 0 || label >= classes)
      throw new Error(`labels[${i}]: expected 0–${classes - 1}, got ${label}`);
    let predicted = 0;
    let confidence = -Infinity;
    for (let c = 0; c < classes; c++) {
      const p = probabilities[i * classes + c] ?? 0;
      if (p > confidence) {
        confidence = p;
        predicted = c;
      }
    }
    const row = confusion[label];
    if (row !== undefined) row[predicted] = (row[predicted] ?? 0) + 1;
    const hit = predicted === label ? 1 : 0;
    correct += hit;
    lossSum -= Math.log(Math.max(probabilities[i * classes + label] ?? 0, 1e-7));
    const bin = Math.min(Math.floor(confidence * bins), bins - 1);
    binCount[bin] = (binCount[bin] ?? 0) + 1;
    binCorrect[bin] = (binCorrect[bin] ?? 0) + hit;
    binConfidence[bin] = (binConfidence[bin] ?? 0) + confidence;
  }
  let ece = 0;
  for (let b = 0; b < bins; b++) {
    const n = binCount[b] ?? 0;
    if (n > 0) ece += (n / count) * Math.abs((binCorrect[b] ?? 0) / n - (binConfidence[b] ?? 0) / n);
  }
  return {
    count,
    accuracy: correct / count,
    perClassAccuracy: confusion.map((row, label) => {
      const total = row.reduce((a, b) => a + b, 0);
      return total === 0 ? Number.NaN : (row[label] ?? 0) / total;
    }),
    loss: lossSum / count,
    expectedCalibrationError: ece,
    bins,
    confusion,
  };
}
