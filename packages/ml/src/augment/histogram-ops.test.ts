import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../backend/select-backend.js';
import { outputsOverTolerance, runOn } from '../testing/compare-backends.js';
import { autocontrast, equalize } from './histogram-ops.js';

beforeAll(async () => {
  await initBackend({ request: 'wasm', log: () => undefined });
});

async function valuesOf(tensor: tf.Tensor): Promise<number[]> {
  const values = Array.from(await tensor.data());
  tensor.dispose();
  return values;
}

/** A 32×32 channel: 255 pixels at each of `levels[0..2]`, the last 259 at `levels[3]` (row-major order). */
function fourLevelChannel(levels: readonly [number, number, number, number]): number[] {
  return Array.from({ length: 1024 }, (_, index) => levels[Math.min(3, Math.floor(index / 255))] ?? 0);
}

describe('autocontrast', () => {
  it('stretches each channel of each image to 0–255 and leaves constant channels alone', async () => {
    const gray = tf.tensor4d([50, 100, 150, 100], [1, 2, 2, 1]);
    expect(await valuesOf(autocontrast(gray))).toEqual([0, 127.5, 255, 127.5]);
    // Two RGB images of 1×3 pixels, channels interleaved: [r, g, b, r, g, b, r, g, b].
    const rgb = tf.tensor4d([10, 7, 0, 20, 7, 255, 30, 7, 51, 100, 1, 3, 100, 2, 3, 200, 3, 3], [2, 1, 3, 3]);
    expect(await valuesOf(autocontrast(rgb))).toEqual([
      0, 7, 0, 127.5, 7, 255, 255, 7, 51, 0, 0, 3, 0, 127.5, 3, 255, 255, 3,
    ]);
    tf.dispose([gray, rgb]);
  });
});

describe('equalize', () => {
  it("maps PIL's way: step = (n − h_last) // 255, level i → min(255, (Σ_{j<i} h_j + step // 2) // step)", async () => {
    // Channel 0: levels 0, 50, 100 (255 pixels each), 150 (259): step = (1024 − 259) // 255 = 3,
    // so 0 → (0 + 1) // 3 = 0, 50 → 256 // 3 = 85, 100 → 511 // 3 = 170, 150 → 766 // 3 = 255.
    // Channel 1: one value (77.5, kept with its fraction): step 0, unchanged.
    // Channel 2: levels 255, 205, 155 (255 pixels each), 105 (259); the highest level (255) holds 255
    // pixels: step = (1024 − 255) // 255 = 3, so 105 → (0 + 1) // 3 = 0, 155 → 260 // 3 = 86,
    // 205 → 515 // 3 = 171, 255 → 770 // 3 = 256, clipped to 255. Values are binned by floor (50.75 → 50).
    const channel0 = fourLevelChannel([0, 50.75, 100, 150]);
    const channel2 = fourLevelChannel([255, 205, 155, 105]);
    const interleaved = channel0.flatMap((value, index) => [value, 77.5, channel2[index] ?? 0]);
    const images = tf.tensor4d(interleaved, [1, 32, 32, 3]);
    const output = await valuesOf(equalize(images));
    const expected0 = fourLevelChannel([0, 85, 170, 255]);
    const expected2 = fourLevelChannel([255, 171, 86, 0]);
    expect(output).toEqual(expected0.flatMap((value, index) => [value, 77.5, expected2[index] ?? 0]));
    images.dispose();
  });

  it('equalizes each image of a batch on its own, and leaves images with too few pixels (step 0) alone', async () => {
    const first = fourLevelChannel([0, 50, 100, 150]);
    const second = fourLevelChannel([10, 20, 30, 40]);
    const batch = tf.tensor4d([...first, ...second], [2, 32, 32, 1]);
    const output = await valuesOf(equalize(batch));
    expect(output).toEqual([...fourLevelChannel([0, 85, 170, 255]), ...fourLevelChannel([0, 85, 170, 255])]);
    const tiny = tf.tensor4d([0, 0, 10, 10, 10, 20, 30, 200, 255], [1, 3, 3, 1]);
    expect(await valuesOf(equalize(tiny))).toEqual([0, 0, 10, 10, 10, 20, 30, 200, 255]);
    tf.dispose([batch, tiny]);
  });

  it('gives the same result on cpu as on wasm', async () => {
    const compute = (): tf.Tensor[] => {
      const images = tf.floor(tf.mul(tf.randomUniform([3, 24, 24, 3], 0, 1, 'float32', 5), 255)) as tf.Tensor4D;
      return [equalize(images), autocontrast(images)];
    };
    const reference = await runOn('cpu', compute);
    const actual = await runOn('wasm', compute);
    expect(outputsOverTolerance(actual, reference, 1e-6)).toEqual([]);
  });
});
