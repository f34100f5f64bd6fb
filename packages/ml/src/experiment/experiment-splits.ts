import { splitDataset, type DatasetSplit } from '../data/splits.js';
import { createRandom, shuffledIndices } from '../random.js';
import type { ExperimentConfig } from './presets.js';

/** Which images of a data set play which part in one experiment configuration. */
export interface ExperimentSplits {
  /** Labeled, eval and the rest of the training images (indices into the training set). */
  split: DatasetSplit;
  /** Indices into the training set of the unlabeled images, in the experiment's order. */
  unlabeled: number[];
  /** Indices into the test set of the test images. */
  test: number[];
}

type SplitSettings = Pick<ExperimentConfig, 'seed' | 'labeledPerClass' | 'evalImages' | 'unlabeled' | 'testImages'>;

/**
 * The seeded splits of an experiment: eval and labeled images from the training set, the first
 * `unlabeled` of the rest in a seeded order, and `testImages` of the test set. The trainer and
 * `nsctl ingest --split unlabeled` read the same images from it (no tfjs needed).
 */
export function experimentSplits(
  trainLabels: ArrayLike<number>,
  classes: number,
  testCount: number,
  config: SplitSettings,
): ExperimentSplits {
  const split = splitDataset(trainLabels, classes, {
    labeled: { perClass: config.labeledPerClass },
    eval: { total: config.evalImages },
    seed: config.seed,
  });
  const unlabeledOrder = shuffledIndices(split.unlabeled.length, createRandom(config.seed + 17));
  const unlabeled = Array.from(
    unlabeledOrder.subarray(0, Math.min(config.unlabeled, split.unlabeled.length)),
    (i) => split.unlabeled[i] ?? 0,
  );
  const testOrder = shuffledIndices(testCount, createRandom(config.seed + 29));
  return { split, unlabeled, test: Array.from(testOrder.subarray(0, Math.min(config.testImages, testCount))) };
}
