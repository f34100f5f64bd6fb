import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../backend/select-backend.js';
import { seededValues } from '../random.js';
import { clearNoiseStep, setNoiseStep } from '../train/noise-seed.js';
import { NoiseDropout } from './noise-dropout.js';
import { buildResNet, resNetSurvivalProbabilities, resolveResNetConfig, type ResNetOptions } from './resnet.js';
import { StochasticDepth } from './stochastic-depth.js';

/** 4 basic blocks on 8×8×1 images: small enough to train in a test. */
const tiny: ResNetOptions = {
  name: 'tiny',
  inputShape: [8, 8, 1],
  classes: 3,
  stem: { filters: 4 },
  stages: [
    { filters: 4, blocks: 2, strides: 1 },
    { filters: 8, blocks: 2, strides: 2 },
  ],
  finalSurvivalProbability: 0.6,
  seed: 5,
};

function layersOf<T extends tfl.layers.Layer>(model: tfl.LayersModel, kind: abstract new (...args: never[]) => T): T[] {
  return model.layers.filter((layer): layer is T => layer instanceof kind);
}

async function weightValues(model: tfl.LayersModel): Promise<Array<{ name: string; values: number[] }>> {
  return Promise.all(
    model.weights.map(async (weight) => ({
      name: weight.originalName,
      values: Array.from(await weight.read().data()),
    })),
  );
}

function crossEntropy(model: tfl.LayersModel, images: tf.Tensor, targets: tf.Tensor, training: boolean): tf.Scalar {
  const probabilities = model.apply(images, { training }) as tf.Tensor;
  return tf.neg(tf.mean(tf.sum(tf.mul(targets, tf.log(tf.clipByValue(probabilities, 1e-7, 1))), -1))) as tf.Scalar;
}

beforeAll(async () => {
  await initBackend({ request: 'wasm', log: () => undefined });
});

afterEach(() => {
  clearNoiseStep();
});

describe('buildResNet', () => {
  it('gives block l of L the survival probability 1 − (l/L)(1 − p_L), each with its own seed', () => {
    const { model, config } = buildResNet(tiny);
    const blocks = layersOf(model, StochasticDepth);
    expect(blocks.map((layer) => layer.name)).toEqual([1, 2, 3, 4].map((block) => `block${block}_drop_path`));
    const expected = [1, 2, 3, 4].map((block) => 1 - (block / 4) * (1 - 0.6));
    expect(blocks.map((layer) => layer.survivalProbability)).toEqual(expected);
    expect(resNetSurvivalProbabilities(config)).toEqual(expected);
    expect(new Set(blocks.map((layer) => layer.seed)).size).toBe(4);
    const dropout = layersOf(model, NoiseDropout);
    expect(dropout.map((layer) => [layer.name, layer.rate])).toEqual([['dropout', 0.5]]);
    model.dispose();
  });

  it('builds a plain model without noise: additions, no dropout, the same weights', async () => {
    const noisy = buildResNet(tiny);
    const plain = buildResNet({ ...tiny, noise: false });
    expect(layersOf(plain.model, StochasticDepth)).toEqual([]);
    expect(layersOf(plain.model, NoiseDropout)).toEqual([]);
    expect(plain.model.layers.filter((layer) => layer.getClassName() === 'Add').map((layer) => layer.name)).toEqual([
      'block1_add',
      'block2_add',
      'block3_add',
      'block4_add',
    ]);
    expect(resNetSurvivalProbabilities(plain.config)).toEqual([1, 1, 1, 1]);
    expect(await weightValues(plain.model)).toEqual(await weightValues(noisy.model));
    // p_L = 1 keeps dropout and uses plain additions.
    const noDepthNoise = buildResNet({ ...tiny, finalSurvivalProbability: 1 });
    expect(layersOf(noDepthNoise.model, StochasticDepth)).toEqual([]);
    expect(layersOf(noDepthNoise.model, NoiseDropout).length).toBe(1);
    [noisy, plain, noDepthNoise].forEach(({ model }) => model.dispose());
  });

  it('builds identical models from one seed, and different weights from another', async () => {
    const first = buildResNet(tiny);
    const second = buildResNet(tiny);
    const reseeded = buildResNet({ ...tiny, seed: 6 });
    expect(second.model.layers.map((layer) => layer.name)).toEqual(first.model.layers.map((layer) => layer.name));
    const firstWeights = await weightValues(first.model);
    expect(await weightValues(second.model)).toEqual(firstWeights);
    const reseededWeights = await weightValues(reseeded.model);
    expect(reseededWeights.map(({ name }) => name)).toEqual(firstWeights.map(({ name }) => name));
    expect(reseededWeights[0]?.values).not.toEqual(firstWeights[0]?.values);
    [first, second, reseeded].forEach(({ model }) => model.dispose());
  });

  it('builds bottleneck blocks (4× channels out) with projections only where the shape changes', () => {
    const { model } = buildResNet({
      inputShape: [8, 8, 3],
      block: 'bottleneck',
      stem: { filters: 4, kernelSize: 5, strides: 1, maxPool: true },
      stages: [
        { filters: 2, blocks: 2, strides: 1 },
        { filters: 4, blocks: 1, strides: 2 },
      ],
      widthMultiplier: 2,
    });
    const shapeOf = (name: string): tfl.Shape | tfl.Shape[] => model.getLayer(name).outputShape;
    expect(shapeOf('stem_conv')).toEqual([null, 8, 8, 8]);
    expect(shapeOf('stem_pool')).toEqual([null, 4, 4, 8]);
    expect(model.getLayer('stem_conv').getWeights()[0]?.shape).toEqual([5, 5, 3, 8]);
    expect(shapeOf('block1_conv1')).toEqual([null, 4, 4, 4]);
    expect(shapeOf('block1_out')).toEqual([null, 4, 4, 16]);
    expect(shapeOf('block3_conv2')).toEqual([null, 2, 2, 8]);
    expect(shapeOf('block3_out')).toEqual([null, 2, 2, 32]);
    const projections = model.layers.filter((layer) => layer.name.endsWith('_proj')).map((layer) => layer.name);
    expect(projections).toEqual(['block1_proj', 'block3_proj']);
    expect(model.outputs[0]?.shape).toEqual([null, 10]);
    model.dispose();
  });

  it('resolves defaults and refuses bad configs, naming the field and what it expects', () => {
    expect(resolveResNetConfig({ stages: [{ filters: 16, blocks: 1, strides: 1 }] })).toEqual({
      name: 'resnet',
      inputShape: [28, 28, 1],
      classes: 10,
      block: 'basic',
      stem: { filters: 16, kernelSize: 3, strides: 1, maxPool: false },
      stages: [{ filters: 16, blocks: 1, strides: 1 }],
      widthMultiplier: 1,
      noise: true,
      dropout: 0.5,
      finalSurvivalProbability: 0.8,
      seed: 1,
    });
    const stages = tiny.stages;
    expect(() => buildResNet({ stages: [] })).toThrow(
      'stages: expected at least one { filters, blocks, strides }, got []',
    );
    expect(() =>
      buildResNet({
        stages: [stages[0] ?? { filters: 1, blocks: 1, strides: 1 }, { filters: 8, blocks: 1, strides: 0 }],
      }),
    ).toThrow('stages[1].strides: expected a positive integer, got 0');
    expect(() => buildResNet({ ...tiny, dropout: 1 })).toThrow('dropout: expected a number in [0, 1), got 1');
    expect(() => buildResNet({ ...tiny, finalSurvivalProbability: 0 })).toThrow(
      'finalSurvivalProbability: expected a number in (0, 1], got 0',
    );
    expect(() => buildResNet({ ...tiny, inputShape: [8, 8, 0] })).toThrow(
      'inputShape: expected [height, width, channels] of positive integers, got [8,8,0]',
    );
    expect(() => buildResNet({ ...tiny, widthMultiplier: -1 })).toThrow(
      'widthMultiplier: expected a positive number, got -1',
    );
    expect(() => buildResNet({ ...tiny, name: 'two words' })).toThrow(/^name: expected/);
  });

  it('rebuilds the same model from its config stored as JSON, and round-trips through the tfjs topology', async () => {
    const { model, config } = buildResNet(tiny);
    const stored: unknown = JSON.parse(JSON.stringify(config));
    const rebuilt = buildResNet(stored as ResNetOptions);
    expect(rebuilt.config).toEqual(config);
    expect(await weightValues(rebuilt.model)).toEqual(await weightValues(model));

    const restored = await tfl.models.modelFromJSON({ modelTopology: model.toJSON(undefined, false) });
    restored.setWeights(model.getWeights());
    expect(layersOf(restored, StochasticDepth).map((layer) => layer.getConfig())).toEqual(
      layersOf(model, StochasticDepth).map((layer) => layer.getConfig()),
    );
    const images = tf.tensor4d(seededValues(4 * 8 * 8, 8), [4, 8, 8, 1]);
    const outputs = async (candidate: tfl.LayersModel, training: boolean): Promise<Float32Array> => {
      setNoiseStep(9, 2);
      const output = candidate.apply(images, { training }) as tf.Tensor;
      const values = (await output.data()) as Float32Array;
      output.dispose();
      return values;
    };
    expect(await outputs(restored, false)).toEqual(await outputs(model, false));
    expect(await outputs(restored, true)).toEqual(await outputs(model, true));
    images.dispose();
    [model, rebuilt.model, restored].forEach((candidate) => candidate.dispose());
  });

  it('trains with stochastic depth on wasm: finite losses that go down, no tensor leaked', async () => {
    expect(tf.getBackend()).toBe('wasm');
    const { model } = buildResNet({ ...tiny, finalSurvivalProbability: 0.5 });
    const batch = 8;
    const images = tf.tensor4d(seededValues(batch * 8 * 8, 31), [batch, 8, 8, 1]);
    const targets = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1], 'int32'), 3);
    const optimizer = tf.train.adam(0.01);
    const evaluate = async (): Promise<number> => {
      const loss = tf.tidy(() => crossEntropy(model, images, targets, false));
      const value = (await loss.data())[0] ?? Number.NaN;
      loss.dispose();
      return value;
    };
    const before = await evaluate();
    // The first step creates the optimizer's slots: count tensors from the second on.
    let tensorsAfterFirstStep = 0;
    const losses: number[] = [];
    for (let step = 0; step < 12; step++) {
      setNoiseStep(17, step);
      const loss = tf.tidy(() => {
        const value = optimizer.minimize(() => crossEntropy(model, images, targets, true), true);
        if (value === null) throw new Error('optimizer.minimize returned no loss');
        return value;
      });
      losses.push((await loss.data())[0] ?? Number.NaN);
      loss.dispose();
      if (step === 0) tensorsAfterFirstStep = tf.memory().numTensors;
      else expect(tf.memory().numTensors).toBe(tensorsAfterFirstStep);
    }
    const after = await evaluate();
    expect(losses.every(Number.isFinite)).toBe(true);
    const mean = (values: number[]): number => values.reduce((total, value) => total + value, 0) / values.length;
    expect(mean(losses.slice(-4))).toBeLessThan(mean(losses.slice(0, 4)));
    expect(after).toBeLessThan(before);
    optimizer.dispose();
    tf.dispose([images, targets]);
    model.dispose();
  });

  it('leaks no tensors across training and inference calls', async () => {
    const { model } = buildResNet(tiny);
    const images = tf.tensor4d(seededValues(2 * 8 * 8, 4), [2, 8, 8, 1]);
    const call = async (training: boolean): Promise<void> => {
      const output = model.apply(images, { training }) as tf.Tensor;
      await output.data();
      output.dispose();
    };
    await call(true);
    const before = tf.memory().numTensors;
    for (let round = 0; round < 3; round++) {
      await call(true);
      await call(false);
    }
    expect(tf.memory().numTensors).toBe(before);
    images.dispose();
    model.dispose();
  });
});
