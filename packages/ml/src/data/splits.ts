import { createRandom, shuffledIndices } from '../random.js';

export interface LabeledUnlabeledSplit {
  /** Indices whose labels the learner may use. */
  labeled: number[];
  /** The rest: labels hidden from the learner (kept only to measure pseudo-label accuracy). */
  unlabeled: number[];
}

/**
 * A seeded split of a labeled set into `labeledPerClass` examples of every class and the rest.
 * The same labels and seed always give the same indices (sorted ascending).
 */
export function splitLabeledUnlabeled(
  labels: ArrayLike<number>,
  classes: number,
  labeledPerClass: number,
  seed: number,
): LabeledUnlabeledSplit {
  if (!Number.isInteger(labeledPerClass) || labeledPerClass < 1) {
    throw new Error(`labeledPerClass: expected a positive integer, got ${labeledPerClass}`);
  }
  const order = shuffledIndices(labels.length, createRandom(seed));
  const taken = new Array<number>(classes).fill(0);
  const labeled: number[] = [];
  const unlabeled: number[] = [];
  for (const index of order) {
    const label = labels[index] ?? -1;
    if (!Number.isInteger(label) || label < 0 || label >= classes)
      throw new Error(`labels[${index}]: expected 0–${classes - 1}, got ${label}`);
    if ((taken[label] ?? 0) < labeledPerClass) {
      taken[label] = (taken[label] ?? 0) + 1;
      labeled.push(index);
    } else {
      unlabeled.push(index);
    }
  }
  const short = taken.findIndex((count) => count < labeledPerClass);
  if (short >= 0)
    throw new Error(`class ${short}: has ${taken[short]} examples, fewer than labeledPerClass = ${labeledPerClass}`);
  return { labeled: labeled.sort((a, b) => a - b), unlabeled: unlabeled.sort((a, b) => a - b) };
}
