import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../backend/select-backend.js';
import { outputsOverTolerance, runOn } from '../testing/compare-backends.js';
import { sampleAffine } from './affine-sample.js';
import { rotate, shearX, shearY, translateX, translateY } from './geometric-ops.js';
import { rotateDegrees, shearFactor, translatePixels } from './op-parameters.js';

beforeAll(async () => {
  await initBackend({ request: 'wasm', log: () => undefined });
});

/** 4×4 grayscale image with pixel (row r, column c) = 4r + c + 1, i.e. 1 … 16 in reading order. */
const counting = Array.from({ length: 16 }, (_, index) => index + 1);
const F = 128; // the default fill

type GeometricOp = (images: tf.Tensor4D, parameters: readonly number[], fillValue?: number) => tf.Tensor4D;

async function run(op: GeometricOp, values: number[], shape: [number, number, number, number], parameters: number[]) {
  const images = tf.tensor4d(values, shape);
  const output = op(images, parameters);
  const result = Array.from(await output.data());
  tf.dispose([images, output]);
  return result;
}

describe('geometric ops (nearest neighbour, PIL pixel-centre convention)', () => {
  it('are the identity at M = 0', async () => {
    const values = counting.map((value) => value + 0.25);
    expect(await run(rotate, values, [1, 4, 4, 1], [rotateDegrees(0, 1)])).toEqual(values);
    expect(await run(shearX, values, [1, 4, 4, 1], [shearFactor(0, -1)])).toEqual(values);
    expect(await run(shearY, values, [1, 4, 4, 1], [shearFactor(0, 1)])).toEqual(values);
    expect(await run(translateX, values, [1, 4, 4, 1], [translatePixels(0, 1, 4)])).toEqual(values);
    expect(await run(translateY, values, [1, 4, 4, 1], [translatePixels(0, -1, 4)])).toEqual(values);
  });

  it('rotate ±30° (M = 30) about the centre, counter-clockwise for +, filling the corners', async () => {
    // Output pixel centre p, centre c = (2, 2): reads floor(R(θ)(p − c) + c); e.g. output (row 1, col 0)
    // reads (0.866·−1.5 − 0.5·−0.5 + 2, 0.5·−1.5 + 0.866·−0.5 + 2) = (0.95, 0.82) → pixel 1.
    expect(await run(rotate, counting, [1, 4, 4, 1], [rotateDegrees(30, 1)])).toEqual([
      F,
      3,
      4,
      F,
      1,
      6,
      7,
      12,
      5,
      10,
      11,
      16,
      F,
      13,
      14,
      F,
    ]);
    expect(await run(rotate, counting, [1, 4, 4, 1], [rotateDegrees(30, -1)])).toEqual([
      F,
      1,
      2,
      F,
      9,
      6,
      7,
      4,
      13,
      10,
      11,
      8,
      F,
      15,
      16,
      F,
    ]);
    // 90° on 3×3 is exact: the top-right corner goes to the top-left.
    expect(await run(rotate, [1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1], [90])).toEqual([3, 6, 9, 2, 5, 8, 1, 4, 7]);
  });

  it('shearX ±0.3 (M = 30) about the top-left corner: row r reads columns shifted by 0.3·(r + 0.5)', async () => {
    expect(await run(shearX, counting, [1, 4, 4, 1], [shearFactor(30, 1)])).toEqual([
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8,
      10,
      11,
      12,
      F,
      14,
      15,
      16,
      F,
    ]);
    expect(await run(shearX, counting, [1, 4, 4, 1], [shearFactor(30, -1)])).toEqual([
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8,
      F,
      9,
      10,
      11,
      F,
      13,
      14,
      15,
    ]);
  });

  it('shearY 0.3 (M = 30): column c reads rows shifted by 0.3·(c + 0.5)', async () => {
    expect(await run(shearY, counting, [1, 4, 4, 1], [shearFactor(30, 1)])).toEqual([
      1,
      2,
      7,
      8,
      5,
      6,
      11,
      12,
      9,
      10,
      15,
      16,
      13,
      14,
      F,
      F,
    ]);
  });

  it('translate by 0.45 of the side at M = 30 (1.8 px on 4 px, nearest: 2 px), 0.9 px at M = 15', async () => {
    const row = [1, 2, 3, 4];
    expect(await run(translateX, row, [1, 1, 4, 1], [translatePixels(30, 1, 4)])).toEqual([3, 4, F, F]);
    expect(await run(translateX, row, [1, 1, 4, 1], [translatePixels(30, -1, 4)])).toEqual([F, F, 1, 2]);
    expect(await run(translateX, row, [1, 1, 4, 1], [translatePixels(15, 1, 4)])).toEqual([2, 3, 4, F]);
    expect(await run(translateY, counting, [1, 4, 4, 1], [translatePixels(30, -1, 4)])).toEqual([
      F,
      F,
      F,
      F,
      F,
      F,
      F,
      F,
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8,
    ]);
  });

  it('moves all channels together, with one map per image and the given fill value', async () => {
    const rgb = [1, 2, 3, 4].flatMap((value) => [value, value + 10, value + 20]);
    const images = tf.tensor4d([...rgb, ...rgb], [2, 1, 4, 3]);
    const output = translateX(images, [-2, 1], 0);
    expect(Array.from(await output.data())).toEqual([
      ...[0, 0, 0, 0, 0, 0, 1, 11, 21, 2, 12, 22],
      ...[2, 12, 22, 3, 13, 23, 4, 14, 24, 0, 0, 0],
    ]);
    tf.dispose([images, output]);
    expect(() => sampleAffine(tf.zeros([2, 1, 1, 1]), [[1, 0, 0, 0, 1, 0]], 0)).toThrow(
      'maps: expected one per image (2), got 1',
    );
  });

  it('gives the same result on cpu as on wasm, per image in a batch', async () => {
    const compute = (): tf.Tensor[] => {
      const images = tf.mul(tf.randomUniform([4, 9, 11, 3], 0, 1, 'float32', 3), 255) as tf.Tensor4D;
      return [
        rotate(images, [-27, 9, 13.5, 30]),
        shearY(images, [0.3, -0.09, 0.2, 0]),
        translateX(images, [3.5, -1, 0, 7]),
      ];
    };
    const reference = await runOn('cpu', compute);
    const actual = await runOn('wasm', compute);
    expect(outputsOverTolerance(actual, reference, 0)).toEqual([]);
  });
});
