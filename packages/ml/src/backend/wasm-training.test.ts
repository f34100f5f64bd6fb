import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';

import { buildReferenceResNet } from '../models/reference-resnet.js';
import { lossAndWeightGradients, outputsOverTolerance, runOn } from '../testing/compare-backends.js';
import { seededValues } from '../random.js';
import { initBackend } from './select-backend.js';

beforeAll(async () => {
  await initBackend({ request: 'wasm', log: () => undefined });
});

/** Every layer kind the model zoo trains: strided, depthwise and separable convolutions, BN, pooling, dropout, dense. */
function buildLayerZoo(): tfl.LayersModel {
  let seed = 100;
  const init = () => tfl.initializers.glorotUniform({ seed: seed++ });
  const input = tfl.input({ shape: [12, 12, 3] });
  let x = tfl.layers
    .conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', kernelInitializer: init() })
    .apply(input);
  x = tfl.layers.batchNormalization().apply(x);
  x = tfl.layers
    .depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', depthwiseInitializer: init() })
    .apply(x);
  x = tfl.layers.maxPooling2d({ poolSize: 2 }).apply(x);
  x = tfl.layers
    .separableConv2d({
      filters: 6,
      kernelSize: 3,
      padding: 'same',
      depthwiseInitializer: init(),
      pointwiseInitializer: init(),
    })
    .apply(x);
  x = tfl.layers.averagePooling2d({ poolSize: 1, strides: 1 }).apply(x);
  x = tfl.layers.globalAveragePooling2d({}).apply(x);
  x = tfl.layers.dropout({ rate: 0.3, seed: 5 }).apply(x);
  const output = tfl.layers.dense({ units: 4, activation: 'softmax', kernelInitializer: init() }).apply(x);
  return tfl.model({ inputs: input, outputs: output as tfl.SymbolicTensor });
}

function buildEmbeddingModel(): tfl.LayersModel {
  const input = tfl.input({ shape: [5], dtype: 'int32' });
  let x = tfl.layers
    .embedding({ inputDim: 20, outputDim: 6, embeddingsInitializer: tfl.initializers.randomUniform({ seed: 3 }) })
    .apply(input);
  x = tfl.layers.globalAveragePooling1d({}).apply(x);
  const output = tfl.layers
    .dense({ units: 3, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: 4 }) })
    .apply(x);
  return tfl.model({ inputs: input, outputs: output as tfl.SymbolicTensor });
}

function weightGradients(build: () => tfl.LayersModel, makeInputs: () => tf.Tensor, labels: number[], classes: number) {
  return (): tf.Tensor[] => {
    const model = build();
    const inputs = makeInputs();
    const targets = tf.oneHot(tf.tensor1d(labels, 'int32'), classes);
    const outputs = lossAndWeightGradients(
      model,
      () =>
        tf.mean(
          tfl.metrics.categoricalCrossentropy(targets, model.apply(inputs, { training: true }) as tf.Tensor),
        ) as tf.Scalar,
    );
    model.dispose();
    return outputs;
  };
}

async function expectSameGradients(compute: () => tf.Tensor[], expectedOutputs: number): Promise<void> {
  const reference = await runOn('cpu', compute);
  const actual = await runOn('wasm', compute);
  expect(reference.length).toBe(expectedOutputs);
  expect(outputsOverTolerance(actual, reference, 1e-4)).toEqual([]);
}

describe('training on wasm', () => {
  it('gives the layer zoo the same weight gradients as cpu', async () => {
    const images = () => tf.tensor4d(seededValues(6 * 12 * 12 * 3, 31), [6, 12, 12, 3]);
    // loss + conv (2) + BN γ, β (2) + depthwise (2) + separable (3) + dense (2)
    await expectSameGradients(weightGradients(buildLayerZoo, images, [0, 1, 2, 3, 1, 2], 4), 1 + 11);
  });

  it('gives embeddings the same gradients as cpu (UnsortedSegmentSum)', async () => {
    const ids = () => tf.tensor2d([1, 4, 4, 19, 0, 7, 7, 7, 2, 4, 0, 0, 3, 3, 18], [3, 5], 'int32');
    await expectSameGradients(weightGradients(buildEmbeddingModel, ids, [0, 2, 1], 3), 1 + 3);
  });

  it('fits the layer zoo: the loss falls on a learnable task', async () => {
    await tf.setBackend('wasm');
    const model = buildLayerZoo();
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    // The class is which quarter of the image is brightest: learnable from pooled features.
    const count = 64;
    const labels = Array.from({ length: count }, (_, i) => i % 4);
    const noise = seededValues(count * 12 * 12 * 3, 41);
    const pixels = noise.map((value, index) => {
      const pixel = Math.floor(index / 3);
      const row = Math.floor(pixel / 12) % 12;
      const col = pixel % 12;
      const image = Math.floor(pixel / 144);
      const quarter = (row < 6 ? 0 : 2) + (col < 6 ? 0 : 1);
      return value * 0.3 + (quarter === labels[image] ? 1 : 0);
    });
    const x = tf.tensor4d(pixels, [count, 12, 12, 3]);
    const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 4);
    const history = await model.fit(x, y, { epochs: 15, batchSize: 16, shuffle: false, verbose: 0 });
    const losses = history.history['loss'] as number[];
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[losses.length - 1]).toBeLessThan((losses[0] ?? 0) * 0.7);
    tf.dispose([x, y]);
    model.dispose();
  });
});

describe('memory', () => {
  it('returns to the same tensor and buffer counts after many train and predict steps', async () => {
    await tf.setBackend('wasm');
    const model = buildReferenceResNet();
    model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
    const x = tf.tensor4d(seededValues(4 * 28 * 28, 51), [4, 28, 28, 1]);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3], 'int32'), 10);
    const step = async () => {
      await model.trainOnBatch(x, y);
      const probabilities = model.predict(x) as tf.Tensor;
      await probabilities.data();
      probabilities.dispose();
    };
    await step(); // creates the optimizer's moment variables
    const tensorsBefore = tf.memory().numTensors;
    const buffersBefore = tf.engine().backend.numDataIds();
    for (let i = 0; i < 6; i++) await step();
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    // Kernel-internal intermediates are not engine tensors: count the backend's buffers too.
    expect(tf.engine().backend.numDataIds()).toBe(buffersBefore);
    tf.dispose([x, y]);
    model.dispose();
  });
});
