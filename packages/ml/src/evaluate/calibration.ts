/** One equal-width confidence bin of a reliability diagram. */
export interface CalibrationBin {
  /** Confidences in (lower, upper]; the first bin also takes 0. */
  lower: number;
  upper: number;
  /** Examples whose confidence (top probability) falls in the bin. */
  count: number;
  /** Fraction of them predicted right (NaN when the bin is empty). */
  accuracy: number;
  /** Their mean confidence (NaN when the bin is empty). */
  meanConfidence: number;
}

/**
 * Index of the bin, of `bins` equal-width bins over [0, 1], that holds `confidence`: bin b
 * (0-based) covers (b/B, (b+1)/B], as in Guo et al. 2017, with 0 in the first bin.
 */
export function calibrationBinIndex(confidence: number, bins: number): number {
  return Math.min(bins - 1, Math.max(0, Math.ceil(confidence * bins) - 1));
}

/**
 * Expected calibration error (Guo, Pleiss, Sun, Weinberger, "On Calibration of Modern Neural
 * Networks", ICML 2017, eq. 3):
 *
 *   ECE = Σ_{b=1..B} (n_b / N) · |acc_b − conf_b|
 *
 * where an example's confidence is its top probability, bin b holds the n_b examples whose
 * confidence lies in ((b−1)/B, b/B], acc_b is the fraction of them whose top class is the label,
 * conf_b their mean confidence, and N = Σ n_b. Empty bins add nothing. 0 = perfectly calibrated;
 * at most 1.
 */
export function expectedCalibrationError(bins: readonly CalibrationBin[]): number {
  const total = bins.reduce((sum, bin) => sum + bin.count, 0);
  if (total === 0) return 0;
  return bins.reduce(
    (sum, bin) => (bin.count === 0 ? sum : sum + (bin.count / total) * Math.abs(bin.accuracy - bin.meanConfidence)),
    0,
  );
}
