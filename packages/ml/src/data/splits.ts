import { createRandom, shuffledIndices } from '../random.js';
import type { LabeledImages } from './fashion-mnist.js';

/** How many examples one part of a split takes: so many of every class, or so many in all (any class). */
export type SplitSize = { perClass: number } | { total: number };

export interface SplitOptions {
  /** Examples whose labels the learner may use; at least one. */
  labeled: SplitSize;
  /**
   * Held out to evaluate teacher and student, disjoint from the others. Drawn first, so the same
   * seed gives the same eval set whatever `labeled` asks for. @default { total: 0 }
   */
  eval?: SplitSize;
  /** @default 0 */
  seed?: number;
}

/** Indices into the labeled set, each part ascending; every index is in exactly one part. */
export interface DatasetSplit {
  labeled: number[];
  /** The rest: the learner sees their images only (see `takeSplit`). */
  unlabeled: number[];
  eval: number[];
}

/** The labeled/unlabeled part of a split without eval: what the offline experiment uses. */
export type LabeledUnlabeledSplit = Pick<DatasetSplit, 'labeled' | 'unlabeled'>;

/** Images whose labels are hidden from the learner. */
export type UnlabeledImages = Omit<LabeledImages, 'labels'>;

export interface SplitImages {
  labeled: LabeledImages;
  unlabeled: UnlabeledImages;
  /**
   * The true labels of `unlabeled` (parallel to its images), kept apart from it: only to measure
   * how accurate the pseudo-labels are, never to train.
   */
  unlabeledTrueLabels: Uint8Array;
  eval: LabeledImages;
}

const UNLABELED = 0;
const LABELED = 1;
const EVAL = 2;

/**
 * A seeded split of a labeled set into labeled, unlabeled and eval parts. One shuffle of all
 * indices (seeded) is walked twice: eval takes its examples first, then labeled; the rest are
 * unlabeled. A per-class part takes the first examples of each class in that order, so the same
 * labels and seed always give the same indices. A class with too few examples is an error that
 * names the class and the part.
 */
export function splitDataset(labels: ArrayLike<number>, classes: number, options: SplitOptions): DatasetSplit {
  if (!Number.isInteger(classes) || classes < 1)
    throw new Error(`classes: expected a positive integer, got ${classes}`);
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(seed)) throw new Error(`seed: expected an integer, got ${seed}`);
  const labeledSize = checkSize(options.labeled, 'labeled', 1);
  const evalSize = checkSize(options.eval ?? { total: 0 }, 'eval', 0);
  const count = labels.length;
  const perClass = new Array<number>(classes).fill(0);
  for (let index = 0; index < count; index++) {
    const label = labels[index];
    if (label === undefined || !Number.isInteger(label) || label < 0 || label >= classes) {
      throw new Error(`labels[${index}]: expected an integer class in 0–${classes - 1}, got ${label}`);
    }
    perClass[label] = (perClass[label] ?? 0) + 1;
  }

  const order = shuffledIndices(count, createRandom(seed));
  const part = new Uint8Array(count);
  const inEval = take(labels, order, part, EVAL, evalSize, classes);
  checkTaken(evalSize, inEval, perClass, new Array<number>(classes).fill(0), 'eval', count);
  const inLabeled = take(labels, order, part, LABELED, labeledSize, classes);
  checkTaken(labeledSize, inLabeled, perClass, inEval, 'labeled', count);

  const split: DatasetSplit = { labeled: [], unlabeled: [], eval: [] };
  part.forEach((value, index) => {
    (value === LABELED ? split.labeled : value === EVAL ? split.eval : split.unlabeled).push(index);
  });
  return split;
}

/**
 * `labeledPerClass` examples of every class labeled, the rest unlabeled, no eval part: the same
 * indices as `splitDataset(labels, classes, { labeled: { perClass: labeledPerClass }, seed })`.
 */
export function splitLabeledUnlabeled(
  labels: ArrayLike<number>,
  classes: number,
  labeledPerClass: number,
  seed: number,
): LabeledUnlabeledSplit {
  const { labeled, unlabeled } = splitDataset(labels, classes, { labeled: { perClass: labeledPerClass }, seed });
  return { labeled, unlabeled };
}

/** The images of some indices of `data`, in the order given. */
export function selectImages(data: LabeledImages, indices: readonly number[]): LabeledImages {
  const pixels = data.height * data.width * data.channels;
  const images = new Uint8Array(indices.length * pixels);
  const labels = new Uint8Array(indices.length);
  indices.forEach((index, row) => {
    if (!Number.isInteger(index) || index < 0 || index >= data.count) {
      throw new Error(`indices[${row}]: expected an integer in 0–${data.count - 1}, got ${index}`);
    }
    images.set(data.images.subarray(index * pixels, (index + 1) * pixels), row * pixels);
    labels[row] = data.labels[index] ?? 0;
  });
  const { height, width, channels, classNames } = data;
  return { images, labels, count: indices.length, height, width, channels, classNames };
}

/** The images of each part of a split; the unlabeled part's labels are set apart. */
export function takeSplit(data: LabeledImages, split: DatasetSplit): SplitImages {
  const { labels: unlabeledTrueLabels, ...unlabeled } = selectImages(data, split.unlabeled);
  return {
    labeled: selectImages(data, split.labeled),
    unlabeled,
    unlabeledTrueLabels,
    eval: selectImages(data, split.eval),
  };
}

type CheckedSize = { kind: 'perClass' | 'total'; value: number };

function checkSize(size: SplitSize, field: string, minimum: number): CheckedSize {
  const perClass = 'perClass' in size ? size.perClass : undefined;
  const total = 'total' in size ? size.total : undefined;
  if ((perClass === undefined) === (total === undefined)) {
    throw new Error(`${field}: expected { perClass: n } or { total: n }, got ${JSON.stringify(size)}`);
  }
  const kind = perClass !== undefined ? 'perClass' : 'total';
  const value = perClass ?? total ?? 0;
  if (!Number.isSafeInteger(value) || value < minimum) {
    const expected = minimum === 0 ? 'a non-negative integer' : 'a positive integer';
    throw new Error(`${field}.${kind}: expected ${expected}, got ${value}`);
  }
  return { kind, value };
}

/** Walks `order`, moving unassigned examples into `into` as `size` allows; returns the count taken per class. */
function take(
  labels: ArrayLike<number>,
  order: Int32Array,
  part: Uint8Array,
  into: number,
  size: CheckedSize,
  classes: number,
): number[] {
  const taken = new Array<number>(classes).fill(0);
  let takenTotal = 0;
  for (const index of order) {
    if (size.kind === 'total' && takenTotal === size.value) break;
    if (part[index] !== UNLABELED) continue;
    const label = labels[index] ?? 0;
    if (size.kind === 'perClass' && (taken[label] ?? 0) >= size.value) continue;
    part[index] = into;
    taken[label] = (taken[label] ?? 0) + 1;
    takenTotal++;
  }
  return taken;
}

function checkTaken(
  size: CheckedSize,
  taken: readonly number[],
  perClass: readonly number[],
  takenBefore: readonly number[],
  field: string,
  count: number,
): void {
  const before = takenBefore.reduce((total, value) => total + value, 0);
  if (size.kind === 'total') {
    const available = count - before;
    if (available < size.value) {
      const after = before > 0 ? ` (${before} of ${count} are in eval)` : '';
      throw new Error(`${field}.total: expected at most ${available}, the examples left${after}, got ${size.value}`);
    }
    return;
  }
  const short = taken.findIndex((value) => value < size.value);
  if (short < 0) return;
  const inAll = perClass[short] ?? 0;
  const inEarlier = takenBefore[short] ?? 0;
  const detail = inEarlier > 0 ? ` left after eval (${inAll} in all)` : '';
  throw new Error(
    `${field}.perClass: class ${short} has ${inAll - inEarlier} examples${detail}, fewer than the ${size.value} asked for`,
  );
}
