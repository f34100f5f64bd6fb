/** What a student learns from a pseudo-label: the teacher's distribution, or its top class. */
export type PseudoLabelMode = 'soft' | 'hard';

/**
 * The teacher's distribution at temperature T:
 *
 *   q_i = p_i^(1/T) / Σ_j p_j^(1/T)
 *
 * T < 1 sharpens (T → 0 tends to one-hot on the top class, ties shared), T > 1 softens (T → ∞
 * tends to uniform over the classes with p > 0), T = 1 gives p renormalised to sum to exactly 1.
 * Computed as (p_i / p_max)^(1/T), renormalised, which is the same number but never underflows
 * to 0/0 for a small T. `probabilities` must be a checked distribution (see evaluate/probability-rows.ts).
 */
export function applyTemperature(probabilities: ArrayLike<number>, temperature: number): number[] {
  const out = new Float64Array(probabilities.length);
  writeTempered(out, 0, probabilities, temperature);
  return Array.from(out);
}

/**
 * Writes the target of one pseudo-label into `out` at `offset`: one-hot of `topClass` for `hard`,
 * `applyTemperature(probabilities, temperature)` for `soft`.
 */
export function writePseudoLabelTarget(
  out: Float32Array,
  offset: number,
  probabilities: ArrayLike<number>,
  topClass: number,
  mode: PseudoLabelMode,
  temperature: number,
): void {
  if (mode === 'hard') {
    if (!Number.isInteger(topClass) || topClass < 0 || topClass >= probabilities.length) {
      throw new Error(`topClass: expected an integer in 0–${probabilities.length - 1}, got ${topClass}`);
    }
    out.fill(0, offset, offset + probabilities.length);
    out[offset + topClass] = 1;
    return;
  }
  writeTempered(out, offset, probabilities, temperature);
}

function writeTempered(
  out: Float32Array | Float64Array,
  offset: number,
  probabilities: ArrayLike<number>,
  temperature: number,
): void {
  if (!(temperature > 0 && Number.isFinite(temperature))) {
    throw new Error(`temperature: expected a positive finite number, got ${temperature}`);
  }
  const classes = probabilities.length;
  let top = 0;
  for (let c = 0; c < classes; c++) top = Math.max(top, probabilities[c] ?? 0);
  const powered = new Float64Array(classes);
  let sum = 0;
  for (let c = 0; c < classes; c++) {
    const value = probabilities[c] ?? 0;
    // At T = 1 the powers are skipped, so the targets are exactly p / Σp.
    powered[c] = temperature === 1 ? value : Math.pow(value / top, 1 / temperature);
    sum += powered[c] ?? 0;
  }
  for (let c = 0; c < classes; c++) out[offset + c] = (powered[c] ?? 0) / sum;
}
