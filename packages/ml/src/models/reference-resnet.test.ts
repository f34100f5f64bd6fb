import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../backend/select-backend.js';
import { lossAndWeightGradients, outputsOverTolerance, runOn } from '../testing/compare-backends.js';
import { seededValues } from '../random.js';
import { clearNoiseStep, setNoiseStep } from '../train/noise-seed.js';
import { buildReferenceResNet, forwardFlopsPerImage } from './reference-resnet.js';

beforeAll(async () => {
  await initBackend({ request: 'wasm', log: () => undefined });
});

describe('reference ResNet', () => {
  it('has the documented size: 151,274 trainable parameters and 80.7 MFLOP per image', () => {
    const model = buildReferenceResNet();
    const trainable =
      model.countParams() -
      model.nonTrainableWeights.reduce((total, weight) => total + tf.util.sizeFromShape(weight.shape as number[]), 0);
    expect(trainable).toBe(151_274);
    expect(forwardFlopsPerImage(model)).toBe(80_734_464);
    model.dispose();
  });

  it('gives every weight the same gradient on wasm as on cpu', async () => {
    // 16×16 inputs keep every layer (both stride-2 stages included) while the cpu reference,
    // whose convolution gradients are plain loops, stays a few seconds long.
    const batch = 2;
    const compute = (): tf.Tensor[] => {
      // One noise step on both backends: the same dropout mask.
      setNoiseStep(3, 0);
      const model = buildReferenceResNet({ seed: 7, inputShape: [16, 16, 1] });
      const images = tf.tensor4d(seededValues(batch * 16 * 16, 21), [batch, 16, 16, 1]);
      const labels = tf.oneHot(tf.tensor1d([3, 8], 'int32'), 10);
      const outputs = lossAndWeightGradients(model, () => {
        const probabilities = model.apply(images, { training: true }) as tf.Tensor;
        return tf.mean(tf.sum(tf.mul(labels, tf.neg(tf.log(tf.add(probabilities, 1e-7)))), -1)) as tf.Scalar;
      });
      model.dispose();
      clearNoiseStep();
      return outputs;
    };
    const reference = await runOn('cpu', compute);
    const actual = await runOn('wasm', compute);
    expect(actual.length).toBe(reference.length);
    // The loss, then 8 conv kernels, γ and β of 8 batch norms, the dense kernel and bias.
    expect(reference.length).toBe(1 + 8 + 16 + 2);
    expect(outputsOverTolerance(actual, reference, 1e-4)).toEqual([]);
  });
});
