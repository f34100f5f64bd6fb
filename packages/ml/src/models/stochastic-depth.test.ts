import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../backend/select-backend.js';
import { clearNoiseStep, setNoiseStep } from '../train/noise-seed.js';
import { buildReferenceResNet } from './reference-resnet.js';
import { StochasticDepth, survivalProbabilityOf } from './stochastic-depth.js';

beforeAll(async () => {
  await initBackend({ request: 'wasm', log: () => undefined });
});

describe('StochasticDepth', () => {
  const shortcut = () => tf.fill([400, 2, 2, 3], 1);
  const residual = () => tf.fill([400, 2, 2, 3], 10);

  it('keeps or drops each example’s whole residual in training, about p of them, replayably', () => {
    const layer = new StochasticDepth({ survivalProbability: 0.8, seed: 3 });
    setNoiseStep(5, 12);
    const first = layer.apply([shortcut(), residual()], { training: true }) as tf.Tensor;
    setNoiseStep(5, 12);
    const replay = layer.apply([shortcut(), residual()], { training: true }) as tf.Tensor;
    setNoiseStep(5, 13);
    const next = layer.apply([shortcut(), residual()], { training: true }) as tf.Tensor;
    clearNoiseStep();
    const perExample = tf.reshape(first, [400, 12]).arraySync() as number[][];
    const survived = perExample.filter((values) => values.every((v) => v === 11)).length;
    const dropped = perExample.filter((values) => values.every((v) => v === 1)).length;
    expect(survived + dropped).toBe(400);
    expect(survived / 400).toBeGreaterThan(0.72);
    expect(survived / 400).toBeLessThan(0.88);
    expect(Array.from(replay.dataSync())).toEqual(Array.from(first.dataSync()));
    expect(Array.from(next.dataSync())).not.toEqual(Array.from(first.dataSync()));
    tf.dispose([first, replay, next]);
  });

  it('scales the residual by p at inference, and is a plain sum at p = 1', () => {
    const scaled = new StochasticDepth({ survivalProbability: 0.8 }).apply([shortcut(), residual()]) as tf.Tensor;
    expect(new Set(scaled.dataSync())).toEqual(new Set([9]));
    const plain = new StochasticDepth({ survivalProbability: 1 }).apply([shortcut(), residual()], {
      training: true,
    }) as tf.Tensor;
    expect(new Set(plain.dataSync())).toEqual(new Set([11]));
    expect(() => new StochasticDepth({ survivalProbability: 0 })).toThrow(
      'survivalProbability: expected a number in (0, 1], got 0',
    );
    tf.dispose([scaled, plain]);
  });

  it('decays survival linearly over the blocks: p_l = 1 − (l/L)(1 − p_L)', () => {
    expect([1, 2, 3].map((block) => survivalProbabilityOf(block, 3, 0.7))).toEqual([0.9, 0.8, 1 - 0.3]);
  });

  it('serialises inside a model and gives the same outputs after a round trip', async () => {
    const model = buildReferenceResNet({ replayableNoise: true, finalSurvivalProbability: 0.8, widthMultiplier: 0.5 });
    const input = tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 1);
    const restored = await tfl.models.modelFromJSON(
      model.toJSON(undefined, false) as tf.io.ModelJSON['modelTopology'] as never,
    );
    restored.setWeights(model.getWeights());
    const expected = (model.predict(input) as tf.Tensor).dataSync();
    const actual = (restored.predict(input) as tf.Tensor).dataSync();
    expect(Array.from(actual)).toEqual(Array.from(expected));
    expect(
      restored.layers
        .filter((layer) => layer.getClassName() === 'StochasticDepth')
        .map((layer) => layer.getConfig()['survivalProbability']),
    ).toEqual([survivalProbabilityOf(1, 3, 0.8), survivalProbabilityOf(2, 3, 0.8), survivalProbabilityOf(3, 3, 0.8)]);
    model.dispose();
    restored.dispose();
  });
});
