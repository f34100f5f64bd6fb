import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../backend/select-backend.js';
import { seededValues } from '../random.js';
import { clearNoiseStep, setNoiseStep } from '../train/noise-seed.js';
import { buildReferenceResNet } from './reference-resnet.js';
import { StochasticDepth, survivalProbabilityOf } from './stochastic-depth.js';

const batch = 400;
const shape: [number, number, number, number] = [batch, 2, 2, 3];
const perExample = 2 * 2 * 3;
const shortcutValues = seededValues(batch * perExample, 11);
// Residual values in [1, 2): never zero, so a dropped branch is told apart from a surviving one.
const residualValues = seededValues(batch * perExample, 12).map((value) => 1.5 + value / 2);

/** Per example: true when the output is shortcut + residual, false when it is the shortcut alone. */
function survivedPerExample(output: Float32Array): boolean[] {
  return Array.from({ length: batch }, (_, example) => {
    let kept = 0;
    let dropped = 0;
    for (let i = example * perExample; i < (example + 1) * perExample; i++) {
      const shortcut = shortcutValues[i] ?? Number.NaN;
      const residual = residualValues[i] ?? Number.NaN;
      if (output[i] === Math.fround(shortcut + residual)) kept++;
      else if (output[i] === shortcut) dropped++;
    }
    if (kept === perExample) return true;
    if (dropped === perExample) return false;
    throw new Error(`example ${example}: ${kept} values kept and ${dropped} dropped of ${perExample}`);
  });
}

async function run(layer: StochasticDepth, training: boolean | undefined): Promise<Float32Array> {
  const output = tf.tidy(() => {
    const inputs = [tf.tensor4d(shortcutValues, shape), tf.tensor4d(residualValues, shape)];
    return layer.apply(inputs, training === undefined ? {} : { training }) as tf.Tensor;
  });
  const values = (await output.data()) as Float32Array;
  output.dispose();
  return values;
}

beforeAll(async () => {
  await initBackend({ request: 'wasm', log: () => undefined });
});

afterEach(() => {
  clearNoiseStep();
});

describe('StochasticDepth', () => {
  it('keeps or drops each example’s whole residual, about survivalProbability of them', async () => {
    const layer = new StochasticDepth({ survivalProbability: 0.8, seed: 3 });
    setNoiseStep(42, 0);
    const survived = survivedPerExample(await run(layer, true));
    const fraction = survived.filter(Boolean).length / batch;
    // Binomial(400, 0.8): σ = 0.02; the seed fixes the draw, ±0.06 is 3σ.
    expect(fraction).toBeGreaterThan(0.74);
    expect(fraction).toBeLessThan(0.86);
  });

  it('draws a new mask at every call, and the same masks again for the same (run seed, step)', async () => {
    const layer = new StochasticDepth({ survivalProbability: 0.5, seed: 3 });
    setNoiseStep(42, 5);
    const first = survivedPerExample(await run(layer, true));
    const second = survivedPerExample(await run(layer, true));
    expect(second).not.toEqual(first);
    setNoiseStep(42, 5);
    expect(survivedPerExample(await run(layer, true))).toEqual(first);
    expect(survivedPerExample(await run(layer, true))).toEqual(second);
    setNoiseStep(42, 6);
    expect(survivedPerExample(await run(layer, true))).not.toEqual(first);
    clearNoiseStep();
    const outsideTraining = survivedPerExample(await run(layer, true));
    expect(survivedPerExample(await run(layer, true))).not.toEqual(outsideTraining);
  });

  it('gives layers with different seeds different masks in one step', async () => {
    setNoiseStep(42, 0);
    const first = survivedPerExample(await run(new StochasticDepth({ survivalProbability: 0.5, seed: 1 }), true));
    const second = survivedPerExample(await run(new StochasticDepth({ survivalProbability: 0.5, seed: 2 }), true));
    expect(second).not.toEqual(first);
  });

  it('outputs exactly shortcut + p·residual at inference', async () => {
    const survivalProbability = 0.7;
    const layer = new StochasticDepth({ survivalProbability });
    const expected = shortcutValues.map((shortcut, i) =>
      Math.fround(shortcut + Math.fround((residualValues[i] ?? Number.NaN) * Math.fround(survivalProbability))),
    );
    expect(await run(layer, false)).toEqual(expected);
    expect(await run(layer, undefined)).toEqual(expected);
  });

  it('is a plain addition when survivalProbability is 1, in training too', async () => {
    const layer = new StochasticDepth({ survivalProbability: 1 });
    const sum = shortcutValues.map((shortcut, i) => Math.fround(shortcut + (residualValues[i] ?? Number.NaN)));
    expect(await run(layer, true)).toEqual(sum);
    expect(await run(layer, false)).toEqual(sum);
  });

  it('passes gradients to both inputs on wasm, the residual’s through the mask', async () => {
    expect(tf.getBackend()).toBe('wasm');
    const layer = new StochasticDepth({ survivalProbability: 0.6, seed: 9 });
    setNoiseStep(7, 0);
    const survived = survivedPerExample(await run(layer, true));
    setNoiseStep(7, 0);
    const [shortcutGradient, residualGradient] = tf.tidy(() => {
      const weights = tf.tensor4d(seededValues(batch * perExample, 13), shape);
      const gradients = tf.grads((shortcut: tf.Tensor, residual: tf.Tensor) =>
        tf.sum(tf.mul(layer.apply([shortcut, residual], { training: true }) as tf.Tensor, weights)),
      )([tf.tensor4d(shortcutValues, shape), tf.tensor4d(residualValues, shape)]);
      return [gradients[0], gradients[1]];
    }) as [tf.Tensor, tf.Tensor];
    const weights = seededValues(batch * perExample, 13);
    expect(await shortcutGradient.data()).toEqual(weights);
    // The gradient is weight · mask: a dropped example's is ±0 with the weight's sign.
    const expectedResidual = weights.map(
      (weight, i) => weight * (survived[Math.floor(i / perExample)] === true ? 1 : 0),
    );
    expect(Array.from(await residualGradient.data())).toEqual(Array.from(expectedResidual));
    tf.dispose([shortcutGradient, residualGradient]);
  });

  it('leaks no tensors across training and inference calls', async () => {
    const layer = new StochasticDepth({ survivalProbability: 0.8, seed: 4 });
    await run(layer, true);
    const before = tf.memory().numTensors;
    for (let call = 0; call < 3; call++) {
      await run(layer, true);
      await run(layer, false);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses bad arguments, naming the field', () => {
    expect(() => new StochasticDepth({ survivalProbability: 0 })).toThrow(
      'StochasticDepth.survivalProbability: expected a number in (0, 1], got 0',
    );
    expect(() => new StochasticDepth({ survivalProbability: 1.5 })).toThrow(/survivalProbability.*got 1.5/);
    expect(() => new StochasticDepth({ survivalProbability: 0.5, seed: -1 })).toThrow(
      'StochasticDepth.seed: expected a non-negative integer, got -1',
    );
    const layer = new StochasticDepth({ survivalProbability: 0.5, name: 'sd' });
    expect(() => layer.apply([tfl.input({ shape: [4, 4, 2] }), tfl.input({ shape: [4, 4, 3] })])).toThrow(
      'StochasticDepth(sd).inputs: expected shortcut and residual of one shape, got [null,4,4,2] and [null,4,4,3]',
    );
  });

  it('survives a model round trip through JSON with its config and outputs', async () => {
    const image = tfl.input({ shape: [4, 4, 2], name: 'image' });
    const residual = tfl.layers
      .conv2d({ filters: 2, kernelSize: 3, padding: 'same', kernelInitializer: tfl.initializers.heNormal({ seed: 1 }) })
      .apply(image) as tfl.SymbolicTensor;
    const sum = new StochasticDepth({ survivalProbability: 0.75, seed: 21, name: 'drop_path' }).apply([
      image,
      residual,
    ]) as tfl.SymbolicTensor;
    expect(sum.shape).toEqual([null, 4, 4, 2]);
    const model = tfl.model({ inputs: image, outputs: sum });
    const topology = model.toJSON(undefined, false);
    const restored = await tfl.models.modelFromJSON({ modelTopology: JSON.parse(JSON.stringify(topology)) });
    restored.setWeights(model.getWeights());
    const restoredLayer = restored.getLayer('drop_path');
    expect(restoredLayer).toBeInstanceOf(StochasticDepth);
    expect(restoredLayer.getConfig()).toEqual(model.getLayer('drop_path').getConfig());
    expect(restoredLayer.getConfig()).toMatchObject({ survivalProbability: 0.75, seed: 21 });

    const outputs = async (training: boolean): Promise<Float32Array[]> => {
      const images = tf.tensor4d(seededValues(8 * 4 * 4 * 2, 5), [8, 4, 4, 2]);
      const results: Float32Array[] = [];
      for (const candidate of [model, restored]) {
        setNoiseStep(3, 1);
        const output = candidate.apply(images, { training }) as tf.Tensor;
        results.push((await output.data()) as Float32Array);
        output.dispose();
      }
      images.dispose();
      return results;
    };
    const [inference, restoredInference] = await outputs(false);
    expect(restoredInference).toEqual(inference);
    const [training, restoredTraining] = await outputs(true);
    expect(restoredTraining).toEqual(training);
    model.dispose();
    restored.dispose();
  });
  it('serialises inside the reference model with replayable noise', async () => {
    const model = buildReferenceResNet({ finalSurvivalProbability: 0.8, widthMultiplier: 0.25 });
    const restored = await tfl.models.modelFromJSON({ modelTopology: model.toJSON(undefined, false) });
    restored.setWeights(model.getWeights());
    expect(
      restored.layers
        .filter((layer) => layer instanceof StochasticDepth)
        .map((layer) => layer.getConfig()['survivalProbability']),
    ).toEqual([1, 2, 3].map((block) => survivalProbabilityOf(block, 3, 0.8)));
    const images = tf.tensor4d(seededValues(2 * 28 * 28, 6), [2, 28, 28, 1]);
    const [expected, actual] = [model, restored].map((candidate) => candidate.predict(images) as tf.Tensor);
    expect(await actual?.data()).toEqual(await expected?.data());
    tf.dispose([images, expected, actual].filter((tensor) => tensor !== undefined));
    model.dispose();
    restored.dispose();
  });
});

describe('survivalProbabilityOf', () => {
  it('decays linearly from the first block to p_L at the last', () => {
    const probabilities = [1, 2, 3, 4].map((block) => survivalProbabilityOf(block, 4, 0.8));
    expect(probabilities).toEqual([1, 2, 3, 4].map((block) => 1 - (block / 4) * (1 - 0.8)));
    [0.95, 0.9, 0.85, 0.8].forEach((value, index) => expect(probabilities[index]).toBeCloseTo(value, 15));
    expect(survivalProbabilityOf(2, 3, 1)).toBe(1);
  });

  it('refuses blocks outside 1…L and p_L outside (0, 1]', () => {
    expect(() => survivalProbabilityOf(0, 3, 0.8)).toThrow('block: expected an integer in [1, 3], got 0');
    expect(() => survivalProbabilityOf(1, 3, 0)).toThrow(
      'finalSurvivalProbability: expected a number in (0, 1], got 0',
    );
  });
});
