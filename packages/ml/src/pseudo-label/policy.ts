import { createRandom } from '../random.js';

/**
 * The pseudo-label policy of Noisy Student, as plain functions: the labeler service, the trainer
 * and the offline experiment all call this module.
 */
export interface PseudoLabelPolicy {
  /** Keep an example when its top probability is ≥ this. @default 0.3 (the paper's) */
  threshold?: number;
  /** Soft targets (the teacher's distribution, sharpened by `temperature`) or hard one-hot. @default 'soft' */
  mode?: 'soft' | 'hard';
  /** Soft targets are p_i^(1/T) / Σ_j p_j^(1/T); T < 1 sharpens, T = 1 keeps p. @default 1 */
  temperature?: number;
  /** Per-class count after balancing; `'mean'` = mean accepted count over classes that have any; undefined = no balancing. */
  targetPerClass?: number | 'mean';
  /** Seed for the random rounding of fractional copies. @default 0 */
  seed?: number;
}

export interface PseudoLabelSelection {
  /** Indices (into the input rows) of kept examples, in input order. */
  kept: number[];
  /** Copies of each kept example after balancing (parallel to `kept`). */
  copies: number[];
  /** `kept.length × classes` targets. */
  targets: Float32Array;
  /** The hard label of each kept example (parallel to `kept`). */
  labels: number[];
  /** Indices below the threshold. */
  belowThreshold: number[];
  /** Indices above the threshold that balancing cut (their class had more than the target). */
  cutByBalancing: number[];
  /** Accepted examples per class before balancing, and copies per class after. */
  acceptedPerClass: number[];
  balancedPerClass: number[];
  /** The policy as applied, defaults filled in (recorded in shards). */
  policy: Required<Omit<PseudoLabelPolicy, 'targetPerClass'>> & { targetPerClass: number | null };
}

const DEFAULT_THRESHOLD = 0.3;

/** Validates `probabilities` (`rows × classes`) and returns the per-row argmax and max. */
function topOf(probabilities: Float32Array, classes: number): { labels: Int32Array; confidences: Float32Array } {
  if (!Number.isInteger(classes) || classes < 2) throw new Error(`classes: expected an integer ≥ 2, got ${classes}`);
  if (probabilities.length % classes !== 0) {
    throw new Error(`probabilities: expected rows of ${classes} values, got ${probabilities.length} values`);
  }
  const rows = probabilities.length / classes;
  const labels = new Int32Array(rows);
  const confidences = new Float32Array(rows);
  for (let row = 0; row < rows; row++) {
    let sum = 0;
    let best = -1;
    let bestValue = -Infinity;
    for (let c = 0; c < classes; c++) {
      const value = probabilities[row * classes + c] ?? Number.NaN;
      if (!(value >= 0 && value <= 1))
        throw new Error(`probabilities[${row}]: value ${value} at class ${c} is not in [0, 1]`);
      sum += value;
      if (value > bestValue) {
        bestValue = value;
        best = c;
      }
    }
    if (Math.abs(sum - 1) > 1e-3) throw new Error(`probabilities[${row}]: sums to ${sum}, expected 1 (±1e-3)`);
    labels[row] = best;
    confidences[row] = bestValue;
  }
  return { labels, confidences };
}

/**
 * Threshold, target form and class balancing (the paper's code): classes under the target are
 * duplicated — ⌊target/count⌋ copies each plus one more for a seeded random subset so the class
 * total is exactly the target; classes over it keep their most confident examples (ties by
 * index). A class with no accepted example stays empty.
 */
export function selectPseudoLabels(
  probabilities: Float32Array,
  classes: number,
  policy: PseudoLabelPolicy = {},
): PseudoLabelSelection {
  const threshold = policy.threshold ?? DEFAULT_THRESHOLD;
  const mode = policy.mode ?? 'soft';
  const temperature = policy.temperature ?? 1;
  const seed = policy.seed ?? 0;
  if (!(threshold >= 0 && threshold <= 1)) throw new Error(`threshold: expected a number in [0, 1], got ${threshold}`);
  if (!(temperature > 0)) throw new Error(`temperature: expected a positive number, got ${temperature}`);
  if (mode !== 'soft' && mode !== 'hard') throw new Error(`mode: expected 'soft' or 'hard', got ${String(mode)}`);
  const { labels, confidences } = topOf(probabilities, classes);

  const byClass: number[][] = Array.from({ length: classes }, () => []);
  const belowThreshold: number[] = [];
  labels.forEach((label, row) => {
    if ((confidences[row] ?? 0) >= threshold) byClass[label]?.push(row);
    else belowThreshold.push(row);
  });
  const acceptedPerClass = byClass.map((rows) => rows.length);

  let target: number | null = null;
  if (policy.targetPerClass === 'mean') {
    const present = acceptedPerClass.filter((count) => count > 0);
    target = present.length === 0 ? 0 : Math.round(present.reduce((a, b) => a + b, 0) / present.length);
  } else if (policy.targetPerClass !== undefined) {
    if (!Number.isInteger(policy.targetPerClass) || policy.targetPerClass < 0) {
      throw new Error(`targetPerClass: expected a non-negative integer or 'mean', got ${policy.targetPerClass}`);
    }
    target = policy.targetPerClass;
  }

  const copiesOf = new Map<number, number>();
  const cutByBalancing: number[] = [];
  const random = createRandom(seed);
  byClass.forEach((rows) => {
    if (target === null || rows.length === 0) {
      for (const row of rows) copiesOf.set(row, 1);
      return;
    }
    if (rows.length >= target) {
      const mostConfident = [...rows]
        .sort((a, b) => (confidences[b] ?? 0) - (confidences[a] ?? 0) || a - b)
        .slice(0, target);
      for (const row of mostConfident) copiesOf.set(row, 1);
      for (const row of rows) if (!copiesOf.has(row)) cutByBalancing.push(row);
      return;
    }
    const base = Math.floor(target / rows.length);
    const extra = target - base * rows.length;
    // A seeded choice of which `extra` examples get one more copy (partial Fisher–Yates).
    const order = [...rows];
    for (let i = 0; i < extra; i++) {
      const j = i + Math.floor(random() * (order.length - i));
      [order[i], order[j]] = [order[j] ?? 0, order[i] ?? 0];
    }
    const bonus = new Set(order.slice(0, extra));
    for (const row of rows) copiesOf.set(row, base + (bonus.has(row) ? 1 : 0));
  });

  const kept = [...copiesOf.keys()].sort((a, b) => a - b);
  const targets = new Float32Array(kept.length * classes);
  kept.forEach((row, k) => {
    const label = labels[row] ?? 0;
    if (mode === 'hard') {
      targets[k * classes + label] = 1;
      return;
    }
    let sum = 0;
    for (let c = 0; c < classes; c++) {
      const value = Math.pow(probabilities[row * classes + c] ?? 0, 1 / temperature);
      targets[k * classes + c] = value;
      sum += value;
    }
    for (let c = 0; c < classes; c++) targets[k * classes + c] = (targets[k * classes + c] ?? 0) / sum;
  });
  const copies = kept.map((row) => copiesOf.get(row) ?? 0);
  const balancedPerClass = new Array<number>(classes).fill(0);
  kept.forEach((row, k) => {
    const label = labels[row] ?? 0;
    balancedPerClass[label] = (balancedPerClass[label] ?? 0) + (copies[k] ?? 0);
  });
  return {
    kept,
    copies,
    targets,
    labels: kept.map((row) => labels[row] ?? 0),
    belowThreshold,
    cutByBalancing: cutByBalancing.sort((a, b) => a - b),
    acceptedPerClass,
    balancedPerClass,
    policy: { threshold, mode, temperature, seed, targetPerClass: target },
  };
}
