import * as tf from '@tensorflow/tfjs-core';

import { sampleAffine, type AffineMap } from './affine-sample.js';
import { brightness, color, contrast, sharpness } from './enhance-ops.js';
import { DEFAULT_FILL_VALUE, rotateMap, shearXMap, shearYMap, translateXMap, translateYMap } from './geometric-ops.js';
import { autocontrast, equalize } from './histogram-ops.js';
import {
  DEFAULT_TRANSLATE_FRACTION,
  GEOMETRIC_OPS,
  RAND_AUGMENT_OPS,
  enhanceFactor,
  isRandAugmentOp,
  posterizeBits,
  rotateDegrees,
  shearFactor,
  solarizeThreshold,
  translatePixels,
} from './op-parameters.js';
import { invert, posterize, solarize } from './pixel-ops.js';
import {
  sampleRandAugmentPlan,
  validateMagnitude,
  type RandAugmentPlan,
  type RandAugmentPlanOptions,
  type RandAugmentStep,
} from './plan.js';

export interface RandAugmentApplyOptions {
  /** Value of pixels that rotate, shear and translate bring in from outside the image, 0–255 scale. @default 128 */
  fillValue?: number;
  /** Translation at M = 30 as a fraction of the image side (0–1). @default 0.45 */
  translateFraction?: number;
}

export interface RandAugmentOptions extends RandAugmentPlanOptions, RandAugmentApplyOptions {}

/**
 * RandAugment (Cubuk et al. 2020) on a batch: `numOps` ops per image, drawn per image from a plan seeded
 * by `seed`, each at magnitude `magnitude` (0–30). The same images and options give the same output.
 *
 * @param images float32 [N, H, W, C], C = 1 (grayscale) or 3 (RGB), values on the 0–255 scale (scale to
 *   the model's input range afterwards); values outside [0, 255] are clipped first
 * @returns a new float32 tensor of the same shape, values in [0, 255]; the caller disposes of it
 */
export function randAugment(images: tf.Tensor4D, options: RandAugmentOptions): tf.Tensor4D {
  validateImages(images);
  return applyRandAugmentPlan(images, sampleRandAugmentPlan(images.shape[0], options), options);
}

/**
 * Applies `plan` (one list of steps per image, e.g. from `sampleRandAugmentPlan`) to `images`.
 *
 * Batched by stage: at stage s, the images whose s-th step is the same op (and magnitude) are gathered
 * and transformed together, the geometric ops of a stage all in one affine resampling with a map per
 * image, and the results are put back in batch order with one gather.
 *
 * @param images float32 [N, H, W, C], C = 1 or 3, 0–255 scale; `plan` has N entries
 * @returns a new float32 tensor of the same shape, values in [0, 255]; the caller disposes of it
 */
export function applyRandAugmentPlan(
  images: tf.Tensor4D,
  plan: RandAugmentPlan,
  options: RandAugmentApplyOptions = {},
): tf.Tensor4D {
  validateImages(images);
  validatePlan(plan, images.shape[0]);
  const fillValue = options.fillValue ?? DEFAULT_FILL_VALUE;
  if (!(fillValue >= 0 && fillValue <= 255)) {
    throw new RangeError(`fillValue: expected a number from 0 to 255, got ${String(options.fillValue)}`);
  }
  const translateFraction = options.translateFraction ?? DEFAULT_TRANSLATE_FRACTION;
  if (!(translateFraction >= 0 && translateFraction <= 1)) {
    throw new RangeError(`translateFraction: expected a number from 0 to 1, got ${String(options.translateFraction)}`);
  }
  const stageCount = plan.reduce((most, steps) => Math.max(most, steps.length), 0);
  return tf.tidy(() => {
    let current: tf.Tensor4D = tf.clipByValue(images, 0, 255);
    for (let stage = 0; stage < stageCount; stage++) {
      const input = current;
      current = tf.tidy(() => applyStage(input, plan, stage, fillValue, translateFraction));
    }
    return tf.clipByValue(current, 0, 255);
  });
}

/** Images of one stage that get the same transform call. */
interface Group {
  imageIndices: number[];
  steps: RandAugmentStep[];
}

function applyStage(
  images: tf.Tensor4D,
  plan: RandAugmentPlan,
  stage: number,
  fillValue: number,
  translateFraction: number,
): tf.Tensor4D {
  const groups = new Map<string, Group>();
  plan.forEach((steps, imageIndex) => {
    const step = steps[stage];
    if (step === undefined || step.op === 'identity') return;
    const key = GEOMETRIC_OPS.has(step.op) ? 'geometric' : `${step.op}@${step.magnitude}`;
    const group = groups.get(key) ?? { imageIndices: [], steps: [] };
    group.imageIndices.push(imageIndex);
    group.steps.push(step);
    groups.set(key, group);
  });
  if (groups.size === 0) return images;
  const count = images.shape[0];
  const pieces: tf.Tensor4D[] = [];
  const order: number[] = [];
  for (const group of groups.values()) {
    const subset = group.imageIndices.length === count ? images : gatherImages(images, group.imageIndices);
    pieces.push(applyGroup(subset, group.steps, fillValue, translateFraction));
    order.push(...group.imageIndices);
  }
  if (pieces.length === 1 && order.length === count) return pieces[0] ?? images;
  const transformed = new Set(order);
  const unchanged = Array.from({ length: count }, (_, index) => index).filter((index) => !transformed.has(index));
  if (unchanged.length > 0) {
    pieces.push(gatherImages(images, unchanged));
    order.push(...unchanged);
  }
  const positionOf = new Int32Array(count);
  order.forEach((imageIndex, position) => (positionOf[imageIndex] = position));
  return gatherImages(tf.concat(pieces, 0), positionOf);
}

/** Images `indices` of the batch, in that order (gatherND: on wasm several times faster than gather). */
function gatherImages(images: tf.Tensor4D, indices: ArrayLike<number>): tf.Tensor4D {
  return tf.gatherND(images, tf.tensor2d(Int32Array.from(indices), [indices.length, 1], 'int32')) as tf.Tensor4D;
}

/** All steps of a group share the op and magnitude, except geometric groups, which mix the five ops. */
function applyGroup(
  images: tf.Tensor4D,
  steps: readonly RandAugmentStep[],
  fillValue: number,
  translateFraction: number,
): tf.Tensor4D {
  const first = steps[0];
  if (first === undefined) return images;
  const [, height, width] = images.shape;
  const factors = (): number[] => steps.map((step) => enhanceFactor(step.magnitude, step.sign));
  switch (first.op) {
    case 'autocontrast':
      return autocontrast(images);
    case 'equalize':
      return equalize(images);
    case 'invert':
      return invert(images);
    case 'solarize':
      return solarize(images, solarizeThreshold(first.magnitude));
    case 'posterize':
      return posterize(images, posterizeBits(first.magnitude));
    case 'color':
      return color(images, factors());
    case 'contrast':
      return contrast(images, factors());
    case 'brightness':
      return brightness(images, factors());
    case 'sharpness':
      return sharpness(images, factors());
    case 'identity':
      return images;
    case 'rotate':
    case 'shearX':
    case 'shearY':
    case 'translateX':
    case 'translateY':
      return sampleAffine(
        images,
        steps.map((step) => affineMapOf(step, height, width, translateFraction)),
        fillValue,
      );
  }
}

function affineMapOf(step: RandAugmentStep, height: number, width: number, translateFraction: number): AffineMap {
  const { op, magnitude, sign } = step;
  switch (op) {
    case 'rotate':
      return rotateMap(rotateDegrees(magnitude, sign), height, width);
    case 'shearX':
      return shearXMap(shearFactor(magnitude, sign));
    case 'shearY':
      return shearYMap(shearFactor(magnitude, sign));
    case 'translateX':
      return translateXMap(translatePixels(magnitude, sign, width, translateFraction));
    case 'translateY':
      return translateYMap(translatePixels(magnitude, sign, height, translateFraction));
    default:
      throw new Error(`${op} is not a geometric op`);
  }
}

/** Throws a RangeError naming `images` unless it is float32 [N, H, W, 1 or 3]. */
export function validateImages(images: tf.Tensor): void {
  const channels = images.shape[3];
  if (images.rank !== 4 || images.dtype !== 'float32' || (channels !== 1 && channels !== 3)) {
    throw new RangeError(
      `images: expected a float32 tensor [N, H, W, C] with C = 1 or 3 on the 0–255 scale, got ${images.dtype} [${images.shape.join(', ')}]`,
    );
  }
}

function validatePlan(plan: RandAugmentPlan, batchSize: number): void {
  if (plan.length !== batchSize) {
    throw new RangeError(`plan: expected one list of steps per image (${batchSize}), got ${plan.length}`);
  }
  plan.forEach((steps, image) =>
    steps.forEach((step, index) => {
      const field = `plan[${image}][${index}]`;
      if (!isRandAugmentOp(step.op)) {
        throw new RangeError(`${field}.op: expected one of ${RAND_AUGMENT_OPS.join('|')}, got "${String(step.op)}"`);
      }
      validateMagnitude(step.magnitude, `${field}.magnitude`);
      if (step.sign !== 1 && step.sign !== -1) {
        throw new RangeError(`${field}.sign: expected -1 or 1, got ${String(step.sign)}`);
      }
    }),
  );
}
