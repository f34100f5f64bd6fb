import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../backend/select-backend.js';
import { posterizeBits, solarizeThreshold } from './op-parameters.js';
import { invert, posterize, solarize } from './pixel-ops.js';

beforeAll(async () => {
  await initBackend({ request: 'wasm', log: () => undefined });
});

async function run(op: (images: tf.Tensor4D) => tf.Tensor4D, values: number[]): Promise<number[]> {
  const images = tf.tensor4d(values, [1, 1, values.length, 1]);
  const output = op(images);
  const result = Array.from(await output.data());
  tf.dispose([images, output]);
  return result;
}

describe('pixel ops', () => {
  it('invert: 255 − x', async () => {
    expect(await run(invert, [0, 55.5, 255])).toEqual([255, 199.5, 0]);
  });

  it('solarize: identity at M = 0, invert at M = 30, inverts values at or above 128 at M = 15', async () => {
    const values = [0, 100, 127, 128, 200, 255, 17.25];
    expect(await run((images) => solarize(images, solarizeThreshold(0)), values)).toEqual(values);
    expect(await run((images) => solarize(images, solarizeThreshold(30)), values)).toEqual([
      255, 155, 128, 127, 55, 0, 237.75,
    ]);
    expect(await run((images) => solarize(images, solarizeThreshold(15)), values)).toEqual([
      0, 100, 127, 127, 55, 0, 17.25,
    ]);
  });

  it('posterize: identity at M = 0 (fractions kept), 4 bits at M = 30, 7 bits at M = 9', async () => {
    const values = [0, 15, 16, 100, 255, 17.5];
    expect(await run((images) => posterize(images, posterizeBits(0)), values)).toEqual(values);
    expect(await run((images) => posterize(images, posterizeBits(30)), values)).toEqual([0, 0, 16, 96, 240, 16]);
    expect(await run((images) => posterize(images, posterizeBits(9)), values)).toEqual([0, 14, 16, 100, 254, 16]);
    expect(() => posterize(tf.zeros([1, 1, 1, 1]), 0)).toThrow('bits: expected an integer from 1 to 8, got 0');
  });
});
