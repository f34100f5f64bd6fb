import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../backend/select-backend.js';
import { outputsOverTolerance, runOn } from '../testing/compare-backends.js';
import { brightness, color, contrast, sharpness } from './enhance-ops.js';
import { enhanceFactor } from './op-parameters.js';

beforeAll(async () => {
  await initBackend({ request: 'wasm', log: () => undefined });
});

type EnhanceOp = (images: tf.Tensor4D, factors: readonly number[]) => tf.Tensor4D;

async function run(op: EnhanceOp, values: number[], shape: [number, number, number, number], factors: number[]) {
  const images = tf.tensor4d(values, shape);
  const output = op(images, factors);
  const result = Array.from(await output.data());
  tf.dispose([images, output]);
  return result;
}

const close = (values: number[]): unknown[] => values.map((value) => expect.closeTo(value, 3));

// M = 30: factor 1.9 for sign +1, 0.1 for sign −1.
const strong = enhanceFactor(30, 1);
const weak = enhanceFactor(30, -1);

describe('enhance ops', () => {
  it('color blends RGB with its luma (0.299 R + 0.587 G + 0.114 B) and leaves grayscale alone', async () => {
    // (200, 100, 50) has luma 124.2; (80, 80, 80) is gray already.
    const pixels = [200, 100, 50, 80, 80, 80];
    expect(await run(color, pixels, [1, 1, 2, 3], [weak])).toEqual(close([131.78, 121.78, 116.78, 80, 80, 80]));
    expect(await run(color, pixels, [1, 1, 2, 3], [strong])).toEqual(close([255, 78.22, 0, 80, 80, 80]));
    expect(await run(color, [3, 200.5], [1, 1, 2, 1], [strong])).toEqual([3, 200.5]);
  });

  it('contrast blends with the mean luma of each image', async () => {
    expect(await run(contrast, [0, 100, 100, 200], [1, 2, 2, 1], [strong])).toEqual(close([0, 100, 100, 255]));
    expect(await run(contrast, [0, 100, 100, 200], [1, 2, 2, 1], [weak])).toEqual(close([90, 100, 100, 110]));
    // Lumas 124.2 and 80: mean 102.1.
    expect(await run(contrast, [200, 100, 50, 80, 80, 80], [1, 1, 2, 3], [weak])).toEqual(
      close([111.89, 101.89, 96.89, 99.89, 99.89, 99.89]),
    );
  });

  it('brightness scales values, one factor per image', async () => {
    expect(await run(brightness, [0, 100, 200, 0, 100, 200], [2, 1, 3, 1], [strong, weak])).toEqual(
      close([0, 190, 255, 0, 10, 20]),
    );
  });

  it("sharpness blends with PIL's SMOOTH filter, borders kept, per channel", async () => {
    // One bright pixel (130) at (1, 1) of a 4×4 image: smoothed, (1, 1) → 5·130/13 = 50 and the other
    // three interior pixels → 130/13 = 10; the border stays 0.
    const bright = Array.from({ length: 16 }, (_, index) => (index === 5 ? 130 : 0));
    const blurred = [0, 0, 0, 0, 0, 58, 9, 0, 0, 9, 9, 0, 0, 0, 0, 0]; // 0.1·x + 0.9·smoothed
    const sharpened = [0, 0, 0, 0, 0, 202, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]; // 1.9·x − 0.9·smoothed, clipped
    expect(await run(sharpness, bright, [1, 4, 4, 1], [weak])).toEqual(close(blurred));
    expect(await run(sharpness, bright, [1, 4, 4, 1], [strong])).toEqual(close(sharpened));
    // RGB: the same pattern in red, a flat green (smoothing leaves it), black blue.
    const rgb = bright.flatMap((value) => [value, 100, 0]);
    expect(await run(sharpness, rgb, [1, 4, 4, 3], [weak])).toEqual(close(blurred.flatMap((value) => [value, 100, 0])));
    // Smaller than 3×3: all border, unchanged.
    expect(await run(sharpness, [1, 2, 3, 4], [1, 2, 2, 1], [strong])).toEqual([1, 2, 3, 4]);
  });

  it('returns the images exactly at factor 1 (M = 0)', async () => {
    const values = Array.from({ length: 4 * 4 * 3 }, (_, index) => (index * 37.3) % 255);
    for (const op of [color, contrast, brightness, sharpness]) {
      expect(await run(op, values, [1, 4, 4, 3], [enhanceFactor(0, -1)])).toEqual(Array.from(new Float32Array(values)));
    }
    expect(() => brightness(tf.zeros([2, 1, 1, 1]), [1])).toThrow('factors: expected one per image (2), got 1');
  });

  it('gives the same result on cpu as on wasm', async () => {
    const compute = (): tf.Tensor[] => {
      const images = tf.mul(tf.randomUniform([3, 7, 9, 3], 0, 1, 'float32', 9), 255) as tf.Tensor4D;
      const factors = [0.1, 1.9, 1.27];
      return [sharpness(images, factors), contrast(images, factors), color(images, factors)];
    };
    const reference = await runOn('cpu', compute);
    const actual = await runOn('wasm', compute);
    expect(outputsOverTolerance(actual, reference, 1e-6)).toEqual([]);
  });
});
