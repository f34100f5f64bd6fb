import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../backend/select-backend.js';
import { outputsOverTolerance, runOn } from '../testing/compare-backends.js';
import { brightness, color, contrast, sharpness } from './enhance-ops.js';
import { rotate, shearX, shearY, translateX, translateY } from './geometric-ops.js';
import { autocontrast, equalize } from './histogram-ops.js';
import {
  RAND_AUGMENT_OPS,
  enhanceFactor,
  posterizeBits,
  rotateDegrees,
  shearFactor,
  solarizeThreshold,
  translatePixels,
  type RandAugmentOp,
} from './op-parameters.js';
import { invert, posterize, solarize } from './pixel-ops.js';
import { sampleRandAugmentPlan, type RandAugmentPlan, type RandAugmentStep } from './plan.js';
import { applyRandAugmentPlan, randAugment } from './rand-augment.js';

beforeAll(async () => {
  await initBackend({ request: 'wasm', log: () => undefined });
});

/** Integer-valued test images on the 0–255 scale with some structure (a gradient plus noise). */
function testImages(count: number, size: number, channels: number, seed: number): tf.Tensor4D {
  return tf.tidy(() => {
    const noise = tf.randomUniform([count, size, size, channels], 0, 128, 'float32', seed);
    const gradient = tf.reshape(tf.linspace(0, 127, size), [1, 1, size, 1]);
    return tf.floor(tf.add(noise, gradient)) as tf.Tensor4D;
  });
}

/** One step on one image, with the op functions directly: the reference the batched path must match. */
function referenceStep(image: tf.Tensor4D, step: RandAugmentStep): tf.Tensor4D {
  const { op, magnitude, sign } = step;
  const [, height, width] = image.shape;
  const factor = [enhanceFactor(magnitude, sign)];
  const apply: Record<RandAugmentOp, () => tf.Tensor4D> = {
    autocontrast: () => autocontrast(image),
    equalize: () => equalize(image),
    rotate: () => rotate(image, [rotateDegrees(magnitude, sign)]),
    solarize: () => solarize(image, solarizeThreshold(magnitude)),
    color: () => color(image, factor),
    posterize: () => posterize(image, posterizeBits(magnitude)),
    contrast: () => contrast(image, factor),
    brightness: () => brightness(image, factor),
    sharpness: () => sharpness(image, factor),
    shearX: () => shearX(image, [shearFactor(magnitude, sign)]),
    shearY: () => shearY(image, [shearFactor(magnitude, sign)]),
    translateX: () => translateX(image, [translatePixels(magnitude, sign, width)]),
    translateY: () => translateY(image, [translatePixels(magnitude, sign, height)]),
    invert: () => invert(image),
    identity: () => image,
  };
  return apply[op]();
}

function referencePlan(images: tf.Tensor4D, plan: RandAugmentPlan): tf.Tensor4D {
  return tf.tidy(() => {
    const outputs = plan.map((steps, index) =>
      steps.reduce((image, step) => referenceStep(image, step), tf.slice(images, index, 1) as tf.Tensor4D),
    );
    return tf.concat(outputs, 0);
  });
}

describe('randAugment', () => {
  it('keeps shape and dtype, clips to 0–255, and leaks no tensors', async () => {
    for (const channels of [1, 3]) {
      const images = testImages(16, 12, channels, 1);
      const before = tf.memory().numTensors;
      const output = randAugment(images, { numOps: 3, magnitude: 30, seed: 5 });
      expect(tf.memory().numTensors).toBe(before + 1);
      expect(output.shape).toEqual([16, 12, 12, channels]);
      expect(output.dtype).toBe('float32');
      const values = await output.data();
      expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...values)).toBeLessThanOrEqual(255);
      output.dispose();
      expect(tf.memory().numTensors).toBe(before);
      images.dispose();
    }
  });

  it('is seeded: the same seed gives the same output, another seed another one', async () => {
    const images = testImages(8, 10, 3, 2);
    const options = { numOps: 2, magnitude: 9, seed: 11 };
    const [first, again, other] = [options, options, { ...options, seed: 12 }].map((each) => randAugment(images, each));
    const [a, b, c] = await Promise.all([first, again, other].map(async (tensor) => tensor?.data()));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    tf.dispose([images, first, again, other] as tf.Tensor[]);
  });

  it('batches ops by stage and puts every image back in its place (matches one image at a time)', async () => {
    // Stage 0: every op once (the five geometric ones share one resampling); stage 1: ops in pairs of
    // images with opposite signs; one image without steps, one with a single step. M = 17 throughout.
    const plan: RandAugmentStep[][] = RAND_AUGMENT_OPS.map((op, index) => [
      { op, magnitude: 17, sign: index % 2 === 0 ? 1 : -1 },
      { op: RAND_AUGMENT_OPS[Math.floor(index / 2)] ?? 'identity', magnitude: 17, sign: index % 2 === 0 ? -1 : 1 },
    ]);
    plan.push([]);
    plan.push([{ op: 'rotate', magnitude: 30, sign: -1 }]);
    for (const channels of [1, 3]) {
      const images = testImages(plan.length, 20, channels, 3);
      const batched = applyRandAugmentPlan(images, plan);
      const reference = referencePlan(images, plan);
      const error = outputsOverTolerance(
        [await batched.data()] as Float32Array[],
        [await reference.data()] as Float32Array[],
        1e-6,
      );
      expect(error).toEqual([]);
      tf.dispose([images, batched, reference]);
    }
  });

  it('returns the images unchanged at M = 0 with every op that has a magnitude', async () => {
    const identities: RandAugmentOp[] = [
      'rotate',
      'solarize',
      'color',
      'posterize',
      'contrast',
      'brightness',
      'sharpness',
      'shearX',
      'shearY',
      'translateX',
      'translateY',
      'identity',
    ];
    const plan: RandAugmentPlan = identities.map((op, index) => [
      { op, magnitude: 0, sign: index % 2 === 0 ? 1 : -1 },
      { op: identities[(index + 5) % identities.length] ?? 'identity', magnitude: 0, sign: 1 },
    ]);
    const images = tf.add(testImages(plan.length, 8, 3, 4), 0.5) as tf.Tensor4D;
    const output = applyRandAugmentPlan(images, plan);
    expect(await output.data()).toEqual(await images.data());
    tf.dispose([images, output]);
  });

  it('fills with fillValue and translates by translateFraction', async () => {
    const images = tf.tensor4d([1, 2, 3, 4], [1, 1, 4, 1]);
    const plan: RandAugmentPlan = [[{ op: 'translateX', magnitude: 30, sign: 1 }]];
    const output = applyRandAugmentPlan(images, plan, { fillValue: 0, translateFraction: 0.25 });
    expect(Array.from(await output.data())).toEqual([2, 3, 4, 0]); // 1 px
    tf.dispose([images, output]);
  });

  it('names the bad field', () => {
    const images = tf.zeros([2, 4, 4, 1]) as tf.Tensor4D;
    const step: RandAugmentStep = { op: 'invert', magnitude: 9, sign: 1 };
    expect(() => randAugment(images, { numOps: 2, magnitude: 40, seed: 1 })).toThrow(
      'magnitude: expected a number from 0 to 30, got 40',
    );
    expect(() => randAugment(images, { numOps: -2, magnitude: 9, seed: 1 })).toThrow('numOps: expected');
    const wrong = tf.zeros([2, 4, 4, 2]) as tf.Tensor4D;
    expect(() => randAugment(wrong, { numOps: 2, magnitude: 9, seed: 1 })).toThrow(
      'images: expected a float32 tensor [N, H, W, C] with C = 1 or 3 on the 0–255 scale, got float32 [2, 4, 4, 2]',
    );
    const integers = tf.zeros([2, 4, 4, 3], 'int32') as tf.Tensor4D;
    expect(() => randAugment(integers, { numOps: 2, magnitude: 9, seed: 1 })).toThrow('got int32 [2, 4, 4, 3]');
    expect(() => applyRandAugmentPlan(images, [[step]])).toThrow(
      'plan: expected one list of steps per image (2), got 1',
    );
    const badOp = { ...step, op: 'cutout' } as unknown as RandAugmentStep;
    expect(() => applyRandAugmentPlan(images, [[step], [step, badOp]])).toThrow('plan[1][1].op: expected one of');
    expect(() => applyRandAugmentPlan(images, [[{ ...step, magnitude: 31 }], []])).toThrow(
      'plan[0][0].magnitude: expected a number from 0 to 30, got 31',
    );
    const badSign = { ...step, sign: 0 } as unknown as RandAugmentStep;
    expect(() => applyRandAugmentPlan(images, [[], [badSign]])).toThrow('plan[1][0].sign: expected -1 or 1, got 0');
    expect(() => applyRandAugmentPlan(images, [[], []], { fillValue: 300 })).toThrow(
      'fillValue: expected a number from 0 to 255, got 300',
    );
    expect(() => applyRandAugmentPlan(images, [[], []], { translateFraction: -0.1 })).toThrow(
      'translateFraction: expected a number from 0 to 1, got -0.1',
    );
    tf.dispose([images, wrong, integers]);
  });

  it('gives the same result on cpu as on wasm', async () => {
    const compute = (): tf.Tensor[] => {
      const gray = testImages(24, 14, 1, 6);
      const rgb = testImages(24, 10, 3, 7);
      return [
        randAugment(gray, { numOps: 2, magnitude: 9, seed: 1 }),
        randAugment(rgb, { numOps: 2, magnitude: 9, seed: 2 }),
      ];
    };
    const reference = await runOn('cpu', compute);
    const actual = await runOn('wasm', compute);
    expect(outputsOverTolerance(actual, reference, 1e-5)).toEqual([]);
  });

  it('samples the plan it applies (randAugment = sampleRandAugmentPlan + applyRandAugmentPlan)', async () => {
    const images = testImages(6, 8, 3, 8);
    const options = { numOps: 2, magnitude: 12, seed: 99 };
    const direct = randAugment(images, options);
    const planned = applyRandAugmentPlan(images, sampleRandAugmentPlan(6, options));
    expect(await direct.data()).toEqual(await planned.data());
    tf.dispose([images, direct, planned]);
  });
});
