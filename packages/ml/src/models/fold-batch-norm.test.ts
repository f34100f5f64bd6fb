import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../backend/select-backend.js';
import { seededValues } from '../random.js';
import { randomizeBatchNorms } from '../testing/batch-norms.js';
import { foldBatchNorm } from './fold-batch-norm.js';
import { buildReferenceResNet } from './reference-resnet.js';
import { buildResNet } from './resnet.js';

beforeAll(async () => {
  await initBackend({ request: 'wasm', log: () => undefined });
});

async function predictions(model: tfl.LayersModel, images: tf.Tensor): Promise<Float32Array> {
  const output = model.predict(images) as tf.Tensor;
  const values = (await output.data()) as Float32Array;
  output.dispose();
  return values;
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((max, value, index) => Math.max(max, Math.abs(value - (b[index] ?? NaN))), 0);
}

function classNames(model: tfl.LayersModel): string[] {
  return model.layers.map((layer) => layer.getClassName());
}

describe('foldBatchNorm', () => {
  it('folds every BN and the ReLU after it into the reference ResNet convolutions; predictions unchanged', async () => {
    const model = buildReferenceResNet({ seed: 3 });
    randomizeBatchNorms(model, 5);
    const images = tf.tensor4d(seededValues(8 * 28 * 28, 9), [8, 28, 28, 1]);
    const tensorsBefore = tf.memory().numTensors;

    const { model: folded, folded: report } = await foldBatchNorm(model);

    // 8 convolutions (stem, 2 per block, 1 projection), each with its BN.
    expect(report.batchNorms).toHaveLength(8);
    // ReLUs right after a BN: the stem's and each block's first; the block outputs follow an add.
    expect(report.relus).toEqual(['stem_relu', 'block1_relu1', 'block2_relu1', 'block3_relu1']);
    expect(report.identities).toEqual(['dropout']);
    expect(classNames(folded)).not.toContain('BatchNormalization');
    expect(folded.layers.filter((layer) => layer.getClassName() === 'Conv2D')).toHaveLength(8);
    const expected = await predictions(model, images);
    const actual = await predictions(folded, images);
    expect(maxDifference(actual, expected)).toBeLessThan(1e-5);
    // The original is untouched and keeps working after the copy is gone.
    folded.dispose();
    expect(maxDifference(await predictions(model, images), expected)).toBe(0);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    model.dispose();
    images.dispose();
  });

  it('folds stochastic depth scaling into the residual convolution of a noised bottleneck ResNet', async () => {
    const { model } = buildResNet({
      inputShape: [16, 16, 3],
      block: 'bottleneck',
      stages: [
        { filters: 8, blocks: 2, strides: 1 },
        { filters: 16, blocks: 1, strides: 2 },
      ],
      finalSurvivalProbability: 0.5,
      seed: 11,
    });
    randomizeBatchNorms(model, 6);
    const images = tf.tensor4d(seededValues(4 * 16 * 16 * 3, 4), [4, 16, 16, 3]);

    const { model: folded, folded: report } = await foldBatchNorm(model);

    expect(report.survivalScales).toHaveLength(3);
    expect(classNames(folded)).not.toContain('StochasticDepth');
    expect(classNames(folded)).not.toContain('BatchNormalization');
    expect(maxDifference(await predictions(folded, images), await predictions(model, images))).toBeLessThan(1e-5);
    folded.dispose();
    model.dispose();
    images.dispose();
  });

  it('leaves a BN alone when the convolution output is used elsewhere too, and still predicts the same', async () => {
    const input = tfl.input({ shape: [8, 8, 2] });
    const conv = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'conv' }).apply(input);
    const normalized = tfl.layers.batchNormalization({ name: 'bn' }).apply(conv);
    const relu = tfl.layers.activation({ activation: 'relu', name: 'relu' }).apply(normalized);
    const sum = tfl.layers.add({ name: 'sum' }).apply([relu as tfl.SymbolicTensor, conv as tfl.SymbolicTensor]);
    const conv2 = tfl.layers.conv2d({ filters: 3, kernelSize: 1, name: 'conv2' }).apply(sum);
    const bn2 = tfl.layers.batchNormalization({ name: 'bn2', center: false }).apply(conv2);
    const out = tfl.layers.activation({ activation: 'relu', name: 'relu2' }).apply(bn2) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: out });
    randomizeBatchNorms(model, 8);
    const images = tf.tensor4d(seededValues(2 * 8 * 8 * 2, 5), [2, 8, 8, 2]);

    const { model: folded, folded: report } = await foldBatchNorm(model);

    // conv feeds both bn and the sum: not folded. conv2 → bn2 (no beta) → relu2 (the output) is.
    expect(report.batchNorms).toEqual(['bn2']);
    expect(report.relus).toEqual(['relu2']);
    expect(folded.getLayer('conv2').getConfig()['activation']).toBe('relu');
    expect(maxDifference(await predictions(folded, images), await predictions(model, images))).toBeLessThan(1e-5);
    folded.dispose();
    model.dispose();
    images.dispose();
  });

  it('copies a Sequential model unfolded', async () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [6, 6, 1], filters: 2, kernelSize: 3 }),
        tfl.layers.batchNormalization(),
        tfl.layers.flatten(),
      ],
    });
    randomizeBatchNorms(model, 2);
    const images = tf.tensor4d(seededValues(2 * 36, 1), [2, 6, 6, 1]);
    const { model: copy, folded: report } = await foldBatchNorm(model);
    expect(report.batchNorms).toEqual([]);
    expect(maxDifference(await predictions(copy, images), await predictions(model, images))).toBe(0);
    copy.dispose();
    model.dispose();
    images.dispose();
  });
});
