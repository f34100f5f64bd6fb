import { createRandom } from '../random.js';

/** A pseudo-label that passed the threshold: its index in the caller's window, class and confidence. */
export interface AcceptedExample {
  index: number;
  label: number;
  confidence: number;
}

export interface BalanceOptions {
  /**
   * Copies per class after balancing: a count, or `'mean'` = the mean accepted count over the
   * classes that have any, rounded half up (classes with none cannot be filled, so they do not
   * pull the target down).
   */
  targetPerClass: number | 'mean';
  /** Seed of the random rounding of fractional copies. @default 0 */
  seed?: number;
}

/** The outcome of balancing one window. Duplicates are counts: no example is repeated. */
export interface ClassBalance {
  /** Indices of the examples kept, ascending. */
  kept: number[];
  /** Copies of each kept example (parallel to `kept`), each ≥ 1. */
  copies: number[];
  /** Indices cut because their class had more than the target, ascending. */
  cut: number[];
  /** Accepted examples per class, before balancing. */
  acceptedPerClass: number[];
  /** Copies per class after balancing: the target, or 0 for a class with no accepted example. */
  balancedPerClass: number[];
  /** Classes with no accepted example: they stay at 0. */
  emptyClasses: number[];
  /** The target the window was balanced to (`'mean'` resolved). */
  targetPerClass: number;
}

/** The mean of the non-zero counts, rounded half up; 0 when every count is 0. */
export function meanTargetPerClass(acceptedPerClass: readonly number[]): number {
  const present = acceptedPerClass.filter((count) => count > 0);
  if (present.length === 0) return 0;
  return Math.round(present.reduce((total, count) => total + count, 0) / present.length);
}

/**
 * Class balancing of the Noisy Student paper's code, over whatever window of accepted examples
 * the caller passes. A class with n accepted examples and target t:
 *
 * - n = 0: stays empty (listed in `emptyClasses`);
 * - n ≥ t: keeps its t most confident examples (ties: lower index first), the rest are `cut`;
 * - n < t: every example gets ⌊t/n⌋ copies, and t − n·⌊t/n⌋ of them, chosen at random (seeded),
 *   one more, so the class has exactly t copies.
 *
 * The random choices use one stream seeded by `seed`, drawn class by class in class order, each
 * class's examples taken by ascending index: the same window and seed give the same copies.
 */
export function balanceClasses(
  accepted: readonly AcceptedExample[],
  classes: number,
  options: BalanceOptions,
): ClassBalance {
  if (!Number.isInteger(classes) || classes < 1) {
    throw new Error(`classes: expected a positive integer, got ${classes}`);
  }
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(seed)) throw new Error(`seed: expected an integer, got ${seed}`);
  const byClass: AcceptedExample[][] = Array.from({ length: classes }, () => []);
  const seen = new Set<number>();
  accepted.forEach((example, position) => {
    const { index, label, confidence } = example;
    if (!Number.isInteger(index) || index < 0) {
      throw new Error(`accepted[${position}].index: expected a non-negative integer, got ${index}`);
    }
    if (seen.has(index)) throw new Error(`accepted[${position}].index: ${index} appears more than once`);
    seen.add(index);
    if (!Number.isInteger(label) || label < 0 || label >= classes) {
      throw new Error(`accepted[${position}].label: expected an integer in 0–${classes - 1}, got ${label}`);
    }
    if (!(confidence >= 0 && confidence <= 1)) {
      throw new Error(`accepted[${position}].confidence: expected a number in [0, 1], got ${confidence}`);
    }
    byClass[label]?.push(example);
  });
  for (const examples of byClass) examples.sort((a, b) => a.index - b.index);
  const acceptedPerClass = byClass.map((examples) => examples.length);

  const requested = options.targetPerClass;
  let target: number;
  if (requested === 'mean') {
    target = meanTargetPerClass(acceptedPerClass);
  } else {
    if (!Number.isSafeInteger(requested) || requested < 0) {
      throw new Error(`targetPerClass: expected a non-negative integer or 'mean', got ${String(requested)}`);
    }
    target = requested;
  }

  const copiesOf = new Map<number, number>();
  const cut: number[] = [];
  const random = createRandom(seed);
  for (const examples of byClass) {
    if (examples.length === 0) continue;
    if (examples.length >= target) {
      const mostConfident = [...examples].sort((a, b) => b.confidence - a.confidence || a.index - b.index);
      mostConfident.forEach((example, rank) => {
        if (rank < target) copiesOf.set(example.index, 1);
        else cut.push(example.index);
      });
      continue;
    }
    const base = Math.floor(target / examples.length);
    const extra = target - base * examples.length;
    // The `extra` examples that get one more copy: a partial Fisher–Yates shuffle.
    const order = examples.map((example) => example.index);
    for (let i = 0; i < extra; i++) {
      const j = i + Math.floor(random() * (order.length - i));
      const swap = order[i] ?? 0;
      order[i] = order[j] ?? 0;
      order[j] = swap;
    }
    order.forEach((index, position) => copiesOf.set(index, base + (position < extra ? 1 : 0)));
  }

  const kept = [...copiesOf.keys()].sort((a, b) => a - b);
  return {
    kept,
    copies: kept.map((index) => copiesOf.get(index) ?? 0),
    cut: cut.sort((a, b) => a - b),
    acceptedPerClass,
    balancedPerClass: acceptedPerClass.map((count) => (count === 0 ? 0 : target)),
    emptyClasses: acceptedPerClass.flatMap((count, label) => (count === 0 ? [label] : [])),
    targetPerClass: target,
  };
}
