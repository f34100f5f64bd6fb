import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../backend/select-backend.js';
import { seededValues } from '../random.js';
import { evaluateModel, predictProbabilities } from './evaluate-model.js';
import { evaluatePredictions } from './metrics.js';

const COUNT = 7;
const labels = [0, 1, 2, 2, 1, 0, 1];
let model: tfl.LayersModel;
let images: tf.Tensor4D;
/** Probabilities of all 7 images in one pass: what batched evaluation must reproduce. */
let reference: Float32Array;

beforeAll(async () => {
  await initBackend({ request: 'wasm', log: () => undefined });
  model = tfl.sequential({
    layers: [
      tfl.layers.flatten({ inputShape: [2, 2, 1] }),
      tfl.layers.dense({ units: 3, kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }) }),
      tfl.layers.softmax(),
    ],
  });
  images = tf.tensor4d(
    seededValues(COUNT * 4, 5).map((value) => value * 3),
    [COUNT, 2, 2, 1],
  );
  const all = model.predict(images) as tf.Tensor;
  reference = (await all.data()) as Float32Array;
  all.dispose();
});

afterAll(() => {
  images.dispose();
  model.dispose();
});

function expectSameEvaluation(
  actual: ReturnType<typeof evaluatePredictions>,
  expected: ReturnType<typeof evaluatePredictions>,
): void {
  expect(actual.count).toBe(expected.count);
  expect(actual.confusion).toEqual(expected.confusion);
  expect(actual.calibration.map((bin) => bin.count)).toEqual(expected.calibration.map((bin) => bin.count));
  expect(actual.loss).toBeCloseTo(expected.loss, 6);
  expect(actual.expectedCalibrationError).toBeCloseTo(expected.expectedCalibrationError, 6);
}

describe('evaluateModel', () => {
  it('evaluates a tensor in batches exactly as the whole set at once, leaving the tensor to the caller', async () => {
    const before = tf.memory().numTensors;
    const evaluation = await evaluateModel(model, images, labels, { batchSize: 3, bins: 4 });
    expect(tf.memory().numTensors).toBe(before);
    expect(images.isDisposed).toBe(false);
    expectSameEvaluation(evaluation, evaluatePredictions(reference, labels, 3, { bins: 4 }));
    expect(evaluation.bins).toBe(4);
  });

  it('evaluates batches from an iterator, holding one batch at a time and disposing each', async () => {
    const baseline = tf.memory().numTensors;
    const seen: number[] = [];
    async function* batches(): AsyncGenerator<tf.Tensor4D> {
      for (let start = 0; start < COUNT; start += 2) {
        // Everything of the previous batch (its input and outputs) is gone before the next one is made.
        seen.push(tf.memory().numTensors - baseline);
        yield tf.slice(images, [start, 0, 0, 0], [Math.min(2, COUNT - start), -1, -1, -1]);
      }
    }
    const evaluation = await evaluateModel(model, batches(), labels);
    expect(seen).toEqual([0, 0, 0, 0]);
    expect(tf.memory().numTensors).toBe(baseline);
    expectSameEvaluation(evaluation, evaluatePredictions(reference, labels, 3));

    const sync = [tf.slice(images, [0, 0, 0, 0], [4, -1, -1, -1]), tf.slice(images, [4, 0, 0, 0], [3, -1, -1, -1])];
    expectSameEvaluation(await evaluateModel(model, sync, labels), evaluation);
    expect(sync.every((batch) => batch.isDisposed)).toBe(true);
  });

  it('refuses labels that do not match the images, empty input, and a bad batch size, leaking nothing', async () => {
    const before = tf.memory().numTensors;
    await expect(evaluateModel(model, images, labels.slice(1))).rejects.toThrow(
      'labels: expected 7 (one per image), got 6',
    );
    await expect(evaluateModel(model, images, [0, 1, 2, 2, 1, 0, 3])).rejects.toThrow(
      'labels[6]: expected an integer class index in 0–2, got 3',
    );
    await expect(
      evaluateModel(model, [tf.slice(images, [0, 0, 0, 0], [4, -1, -1, -1])], labels.slice(0, 3)),
    ).rejects.toThrow('labels: expected one label per image, got 3 labels for more images');
    await expect(evaluateModel(model, [tf.slice(images, [0, 0, 0, 0], [4, -1, -1, -1])], labels)).rejects.toThrow(
      'labels: expected 4 (one per image), got 7',
    );
    await expect(evaluateModel(model, [], [])).rejects.toThrow(
      'images: expected at least one batch of images, got none',
    );
    const empty = tf.zeros([0, 2, 2, 1]) as tf.Tensor4D;
    await expect(evaluateModel(model, empty, [])).rejects.toThrow('images: expected at least one image, got none');
    empty.dispose();
    await expect(evaluateModel(model, images, labels, { batchSize: 0 })).rejects.toThrow(
      'batchSize: expected a positive integer, got 0',
    );
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('predictProbabilities', () => {
  it('returns the rows of the chosen images and names an index out of range', async () => {
    const source = { images: Uint8Array.from({ length: 3 * 4 }, (_, i) => i * 20), height: 2, width: 2, channels: 1 };
    const before = tf.memory().numTensors;
    const probabilities = await predictProbabilities(model, source, [2, 0], 1);
    expect(tf.memory().numTensors).toBe(before);
    const direct = tf.tidy(
      () =>
        model.predict(
          tf.tensor4d(
            Array.from(source.images.subarray(8, 12), (v) => v / 255),
            [1, 2, 2, 1],
          ),
        ) as tf.Tensor,
    );
    expect(Array.from(probabilities.subarray(0, 3))).toEqual(Array.from(await direct.data()));
    direct.dispose();
    await expect(predictProbabilities(model, source, [0, 3])).rejects.toThrow(
      'indices[1]: expected an image index in 0–2, got 3',
    );
  });
});
