import type { ProbabilityRows } from '../evaluate/metrics.js';
import { balanceClasses, type AcceptedExample } from './balance.js';
import { readProbabilityRows } from '../evaluate/probability-rows.js';
import { writePseudoLabelTarget, type PseudoLabelMode } from './targets.js';

/** The paper's threshold on the teacher's top probability. */
export const DEFAULT_PSEUDO_LABEL_THRESHOLD = 0.3;

/**
 * The pseudo-label policy of Noisy Student: the labeler service, the trainer and the offline
 * experiment all call `selectPseudoLabels` with one of these.
 */
export interface PseudoLabelPolicy {
  /**
   * Keep an example when its top probability is ≥ this (in [0, 1]); float32 inputs are compared
   * at float32 precision. @default 0.3 (the paper's)
   */
  threshold?: number;
  /** Soft targets (the teacher's distribution at `temperature`) or hard (one-hot of the top class). @default 'soft' */
  mode?: PseudoLabelMode;
  /** Soft targets are p_i^(1/T) / Σ_j p_j^(1/T): T < 1 sharpens, T = 1 keeps p, T > 1 softens. @default 1 */
  temperature?: number;
  /**
   * Copies per class after balancing (see balance.ts): a count, or `'mean'` = the mean accepted
   * count over the classes that have any. @default undefined: no balancing, every kept example once
   */
  targetPerClass?: number | 'mean';
  /** Seed of the random rounding of fractional copies. @default 0 */
  seed?: number;
}

/** The policy as applied, defaults filled in: plain JSON, stored with each shard. */
export interface AppliedPseudoLabelPolicy {
  threshold: number;
  mode: PseudoLabelMode;
  temperature: number;
  seed: number;
  /** How the target was chosen: none (no balancing), the window's mean, or a fixed count. */
  balance: 'none' | 'mean' | 'fixed';
  /** The target count per class this window was balanced to; null without balancing. */
  targetPerClass: number | null;
}

/** What the policy made of one window. Row indices refer to the rows passed in. */
export interface PseudoLabelSelection {
  /** Rows kept, ascending. */
  kept: number[];
  /** Copies of each kept row after balancing (parallel to `kept`, each ≥ 1): duplicates are counts. */
  copies: number[];
  /** `kept.length × classes` targets, soft or hard (parallel to `kept`). */
  targets: Float32Array;
  /** The top class of each kept row (parallel to `kept`). */
  labels: number[];
  /** The top probability of each kept row (parallel to `kept`). */
  confidences: number[];
  /** Rows whose top probability is under the threshold, ascending. */
  belowThreshold: number[];
  /** Rows that reached the threshold but were cut because their class had more than the target, ascending. */
  cutByBalancing: number[];
  /** Rows that reached the threshold, per class (before balancing). */
  acceptedPerClass: number[];
  /** Copies per class after balancing (= `acceptedPerClass` without balancing). */
  balancedPerClass: number[];
  /** Classes with no row above the threshold: balancing cannot fill them. */
  emptyClasses: number[];
  policy: AppliedPseudoLabelPolicy;
}

/** Fills in the defaults and checks every field; errors name the field and what is allowed. */
export function resolvePseudoLabelPolicy(policy: PseudoLabelPolicy = {}): AppliedPseudoLabelPolicy {
  const threshold = policy.threshold ?? DEFAULT_PSEUDO_LABEL_THRESHOLD;
  const mode = policy.mode ?? 'soft';
  const temperature = policy.temperature ?? 1;
  const seed = policy.seed ?? 0;
  const target = policy.targetPerClass;
  if (!(threshold >= 0 && threshold <= 1)) throw new Error(`threshold: expected a number in [0, 1], got ${threshold}`);
  if (mode !== 'soft' && mode !== 'hard') throw new Error(`mode: expected 'soft' or 'hard', got ${String(mode)}`);
  if (!(temperature > 0 && Number.isFinite(temperature))) {
    throw new Error(`temperature: expected a positive finite number, got ${temperature}`);
  }
  if (!Number.isSafeInteger(seed)) throw new Error(`seed: expected an integer, got ${seed}`);
  if (target !== undefined && target !== 'mean' && !(Number.isSafeInteger(target) && target >= 0)) {
    throw new Error(`targetPerClass: expected a non-negative integer or 'mean', got ${String(target)}`);
  }
  return {
    threshold,
    mode,
    temperature,
    seed,
    balance: target === undefined ? 'none' : target === 'mean' ? 'mean' : 'fixed',
    targetPerClass: typeof target === 'number' ? target : null,
  };
}

/**
 * Applies the policy to one window of teacher outputs (`probabilities`: flat `N × classes` or N
 * rows, each a distribution): threshold on the top probability, class balancing (balance.ts),
 * then soft or hard targets for the rows kept. Pure: the same input and policy give the same
 * selection. Bad input is an error naming the field or row.
 */
export function selectPseudoLabels(
  probabilities: ProbabilityRows,
  classes: number,
  policy: PseudoLabelPolicy = {},
): PseudoLabelSelection {
  const applied = resolvePseudoLabelPolicy(policy);
  const table = readProbabilityRows(probabilities, classes);
  const float32Threshold = Math.fround(applied.threshold);

  const accepted: AcceptedExample[] = [];
  const belowThreshold: number[] = [];
  for (let row = 0; row < table.rows; row++) {
    const confidence = table.topProbability[row] ?? 0;
    const threshold = table.float32[row] === 1 ? float32Threshold : applied.threshold;
    if (confidence >= threshold) accepted.push({ index: row, label: table.topClass[row] ?? 0, confidence });
    else belowThreshold.push(row);
  }

  let kept: number[];
  let copies: number[];
  let cutByBalancing: number[] = [];
  let balancedPerClass: number[];
  const acceptedPerClass = new Array<number>(classes).fill(0);
  for (const { label } of accepted) acceptedPerClass[label] = (acceptedPerClass[label] ?? 0) + 1;
  if (applied.balance === 'none') {
    kept = accepted.map((example) => example.index);
    copies = kept.map(() => 1);
    balancedPerClass = [...acceptedPerClass];
  } else {
    const balance = balanceClasses(accepted, classes, {
      targetPerClass: applied.balance === 'mean' ? 'mean' : (applied.targetPerClass ?? 0),
      seed: applied.seed,
    });
    ({ kept, copies, balancedPerClass } = balance);
    cutByBalancing = balance.cut;
    applied.targetPerClass = balance.targetPerClass;
  }

  const targets = new Float32Array(kept.length * classes);
  const row = new Float64Array(classes);
  kept.forEach((index, k) => {
    for (let classIndex = 0; classIndex < classes; classIndex++) row[classIndex] = table.valueAt(index, classIndex);
    writePseudoLabelTarget(targets, k * classes, row, table.topClass[index] ?? 0, applied.mode, applied.temperature);
  });
  return {
    kept,
    copies,
    targets,
    labels: kept.map((index) => table.topClass[index] ?? 0),
    confidences: kept.map((index) => table.topProbability[index] ?? 0),
    belowThreshold,
    cutByBalancing,
    acceptedPerClass,
    balancedPerClass,
    emptyClasses: acceptedPerClass.flatMap((count, label) => (count === 0 ? [label] : [])),
    policy: applied,
  };
}
