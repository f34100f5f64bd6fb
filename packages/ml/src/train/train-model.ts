import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import { randAugment } from '../augment/rand-augment.js';
import { PIXEL_SCALE } from '../preprocess/training-input.js';
import { BatchSampler, validateTrainingSet, type TrainingSet } from './batches.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { clearNoiseStep, setNoiseStep } from './noise-seed.js';
import { learningRateAt, type LearningRateSchedule } from './schedule.js';

export interface TrainProgress {
  step: number;
  steps: number;
  /** Mean loss over the steps since the last report. */
  loss: number;
  learningRate: number;
  imagesPerSecond: number;
}

export interface TrainOptions {
  steps: number;
  /** Labeled examples per step. */
  labeledBatchSize: number;
  /** Pseudo-labeled examples per step (the paper's unlabeled:labeled ratio × labeledBatchSize). @default 0 */
  pseudoBatchSize?: number;
  schedule: LearningRateSchedule;
  /** Targets become (1 − ε)·target + ε/classes. @default 0 */
  labelSmoothing?: number;
  /** RandAugment on every training image (the student's input noise); off when undefined. */
  randAugment?: { numOps: number; magnitude: number };
  seed: number;
  /** Save the state every `everySteps` steps to `path`, and resume from it when it exists. */
  checkpoint?: {
    path: string;
    everySteps: number;
    /** A checkpoint left by a run with other settings: an error, or started over. @default 'throw' */
    onOtherRun?: 'throw' | 'start-over';
  };
  onProgress?: (progress: TrainProgress) => void;
  /** @default 5 */
  progressEverySeconds?: number;
  /** Stops after the current step (saving a checkpoint when configured): a kill loses nothing. */
  signal?: AbortSignal;
}

export interface TrainResult {
  /** Steps done when training ended: `options.steps`, or fewer when `signal` stopped it. */
  steps: number;
  stopped: boolean;
  /** The step training resumed from (0 for a fresh run). */
  resumedFrom: number;
  finalLoss: number;
  imagesPerSecond: number;
}

/**
 * Trains `model` (softmax outputs) with Adam on labeled and, optionally, pseudo-labeled examples
 * against probability targets (hard or soft): loss = mean over the combined batch of
 * −Σ target · log p. Batches, augmentation and dropout/stochastic-depth masks depend only on
 * (seed, step), so a run resumed from its checkpoint ends with the same weights as one that
 * never stopped.
 */
export async function trainModel(
  model: tfl.LayersModel,
  labeled: TrainingSet,
  pseudoLabeled: TrainingSet | undefined,
  options: TrainOptions,
): Promise<TrainResult> {
  validateTrainingSet(labeled, 'labeled');
  const pseudoBatchSize = options.pseudoBatchSize ?? 0;
  if (pseudoLabeled !== undefined) {
    validateTrainingSet(pseudoLabeled, 'pseudoLabeled');
    const sameShape = ['height', 'width', 'channels', 'classes'] as const;
    for (const field of sameShape) {
      if (pseudoLabeled[field] !== labeled[field]) {
        throw new Error(
          `pseudoLabeled.${field}: expected ${labeled[field]} like the labeled set, got ${pseudoLabeled[field]}`,
        );
      }
    }
  }
  if (pseudoBatchSize > 0 && pseudoLabeled === undefined)
    throw new Error('pseudoBatchSize: > 0 needs a pseudoLabeled set');
  if (!Number.isInteger(options.steps) || options.steps <= 0)
    throw new Error(`steps: expected a positive integer, got ${options.steps}`);
  const smoothing = options.labelSmoothing ?? 0;
  if (!(smoothing >= 0 && smoothing < 1))
    throw new Error(`labelSmoothing: expected a number in [0, 1), got ${smoothing}`);

  const labeledSampler = new BatchSampler(labeled, options.labeledBatchSize, options.seed);
  const pseudoSampler =
    pseudoLabeled !== undefined && pseudoBatchSize > 0
      ? new BatchSampler(pseudoLabeled, pseudoBatchSize, options.seed + 1)
      : undefined;
  const optimizer = tf.train.adam(learningRateAt(options.schedule, 0, options.steps));
  const runKey = JSON.stringify({
    seed: options.seed,
    steps: options.steps,
    labeled: [labeled.count, options.labeledBatchSize],
    pseudo: pseudoLabeled === undefined ? null : [pseudoLabeled.count, pseudoBatchSize],
    schedule: options.schedule,
  });
  const resumedFrom =
    options.checkpoint === undefined
      ? 0
      : await loadCheckpoint(options.checkpoint.path, runKey, model, optimizer, options.checkpoint.onOtherRun);

  const batchImages = labeled.height * labeled.width * labeled.channels;
  const makeBatch = (set: TrainingSet, indices: Int32Array): { pixels: Float32Array; targets: Float32Array } => {
    const pixels = new Float32Array(indices.length * batchImages);
    const targets = new Float32Array(indices.length * set.classes);
    indices.forEach((index, row) => {
      const source = set.images.subarray(index * batchImages, (index + 1) * batchImages);
      for (let p = 0; p < batchImages; p++) pixels[row * batchImages + p] = source[p] ?? 0;
      for (let c = 0; c < set.classes; c++) {
        const target = set.targets[index * set.classes + c] ?? 0;
        targets[row * set.classes + c] = (1 - smoothing) * target + smoothing / set.classes;
      }
    });
    return { pixels, targets };
  };

  const reportEvery = (options.progressEverySeconds ?? 5) * 1000;
  let lastReport = performance.now();
  let lossSinceReport = 0;
  let stepsSinceReport = 0;
  let imagesTrained = 0;
  let secondsTraining = 0;
  let finalLoss = Number.NaN;
  let stepsDone = resumedFrom;
  try {
    for (let step = resumedFrom; step < options.steps; step++) {
      const started = performance.now();
      const labeledBatch = makeBatch(labeled, labeledSampler.indices(step));
      const pseudoBatch =
        pseudoSampler !== undefined && pseudoLabeled !== undefined
          ? makeBatch(pseudoLabeled, pseudoSampler.indices(step))
          : undefined;
      const batchSize = options.labeledBatchSize + (pseudoBatch === undefined ? 0 : pseudoBatchSize);
      const pixels = pseudoBatch === undefined ? labeledBatch.pixels : concat(labeledBatch.pixels, pseudoBatch.pixels);
      const targetValues =
        pseudoBatch === undefined ? labeledBatch.targets : concat(labeledBatch.targets, pseudoBatch.targets);
      const learningRate = learningRateAt(options.schedule, step, options.steps);
      (optimizer as unknown as { learningRate: number }).learningRate = learningRate;
      setNoiseStep(options.seed, step);
      const loss = tf.tidy(() => {
        const raw = tf.tensor4d(pixels, [batchSize, labeled.height, labeled.width, labeled.channels]);
        const noised =
          options.randAugment === undefined
            ? raw
            : randAugment(raw, { ...options.randAugment, seed: (options.seed * 1_000_003 + step) >>> 0 });
        const inputs = tf.mul(noised, PIXEL_SCALE);
        const targets = tf.tensor2d(targetValues, [batchSize, labeled.classes]);
        const result = optimizer.minimize(() => {
          const probabilities = model.apply(inputs, { training: true }) as tf.Tensor;
          const logProbabilities = tf.log(tf.clipByValue(probabilities, 1e-7, 1));
          return tf.neg(tf.mean(tf.sum(tf.mul(targets, logProbabilities), -1))) as tf.Scalar;
        }, true);
        if (result === null) throw new Error('optimizer returned no loss');
        return result;
      });
      const lossValue = (await loss.data())[0] ?? Number.NaN;
      loss.dispose();
      if (!Number.isFinite(lossValue))
        throw new Error(`loss is ${lossValue} at step ${step}: lower the learning rate or check the targets`);
      finalLoss = lossValue;
      lossSinceReport += lossValue;
      stepsSinceReport++;
      imagesTrained += batchSize;
      secondsTraining += (performance.now() - started) / 1000;
      const done = step + 1;
      stepsDone = done;
      if (
        options.onProgress !== undefined &&
        (performance.now() - lastReport >= reportEvery || done === options.steps)
      ) {
        options.onProgress({
          step: done,
          steps: options.steps,
          loss: lossSinceReport / stepsSinceReport,
          learningRate,
          imagesPerSecond: imagesTrained / secondsTraining,
        });
        lastReport = performance.now();
        lossSinceReport = 0;
        stepsSinceReport = 0;
      }
      const stopping = options.signal?.aborted === true && done < options.steps;
      if (
        options.checkpoint !== undefined &&
        (stopping || done % options.checkpoint.everySteps === 0 || done === options.steps)
      ) {
        await saveCheckpoint(options.checkpoint.path, runKey, done, model, optimizer);
      }
      if (stopping) break;
      // An abort comes from an event (a worker's message, a signal handler): let events run between
      // steps, or on a backend whose reads resolve at once (wasm, cpu) it would never arrive.
      if (options.signal !== undefined) await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    clearNoiseStep();
    optimizer.dispose();
  }
  return {
    steps: stepsDone,
    stopped: stepsDone < options.steps,
    resumedFrom,
    finalLoss,
    imagesPerSecond: secondsTraining > 0 ? imagesTrained / secondsTraining : 0,
  };
}

function concat(first: Float32Array, second: Float32Array): Float32Array {
  const joined = new Float32Array(first.length + second.length);
  joined.set(first);
  joined.set(second, first.length);
  return joined;
}
