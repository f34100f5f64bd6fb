import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';

import { initBackend, type BackendChoice } from '../backend/select-backend.js';
import { seededValues } from '../random.js';
import { randomizeBatchNorms } from '../testing/batch-norms.js';
import { foldBatchNorm } from './fold-batch-norm.js';
import { resnetPreset } from './model-presets.js';
import { compileInferenceGraph, nativeInferenceGraph } from './native-graph.js';
import { buildReferenceResNet } from './reference-resnet.js';
import { buildResNet } from './resnet.js';

let backend: BackendChoice;

beforeAll(async () => {
  backend = await initBackend({ request: 'wasm', log: () => undefined });
  // Where the kernels are not turned off they must have loaded: otherwise these tests would pass without them.
  if (process.env['NS_NATIVE_KERNELS'] !== '0' && !backend.native) throw new Error(backend.reason);
});

/** The folded inference copy of `model` with its batch normalisations given trained-looking statistics. */
async function folded(model: tfl.LayersModel, seed: number): Promise<tfl.LayersModel> {
  randomizeBatchNorms(model, seed);
  const result = await foldBatchNorm(model);
  model.dispose();
  return result.model;
}

function largestDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((largest, value, index) => Math.max(largest, Math.abs(value - (b[index] ?? Number.NaN))), 0);
}

describe('compileInferenceGraph', () => {
  it('compiles the folded reference ResNet: residual adds and ReLUs fused into their convolutions', async () => {
    const model = await folded(buildReferenceResNet({ seed: 3, finalSurvivalProbability: 0.8 }), 5);
    const compiled = compileInferenceGraph(model);
    if (!compiled.ok) throw new Error(compiled.reason);
    const summary = compiled.spec.layers.map((layer) =>
      layer.op === 'conv'
        ? `conv ${layer.kernel.join('x')}/${layer.strides[0]} ${layer.input}${layer.skip === undefined ? '' : `+${layer.skip}`}${layer.relu ? ' relu' : ''}`
        : layer.op === 'dense'
          ? `dense ${layer.activation}`
          : layer.op,
    );
    expect(summary).toEqual([
      'conv 3x3/1 0 relu', // stem
      'conv 3x3/1 1 relu', // block 1
      'conv 3x3/1 2+1 relu',
      'conv 3x3/2 3 relu', // block 2
      'conv 1x1/2 3', // its projection
      'conv 3x3/1 4+5 relu',
      'conv 3x3/1 6 relu', // block 3
      'conv 3x3/1 7+6 relu',
      'pool',
      'dense softmax',
    ]);
    expect(compiled.spec.input).toEqual([28, 28, 1]);
    model.dispose();
  });

  it('names the layer it has no native form for', () => {
    const input = tfl.input({ shape: [8, 8, 1] });
    const pooled = tfl.layers.maxPooling2d({ poolSize: 2, name: 'the_max_pool' }).apply(input) as tfl.SymbolicTensor;
    const flat = tfl.layers.flatten().apply(pooled) as tfl.SymbolicTensor;
    const output = tfl.layers.dense({ units: 3 }).apply(flat) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: output });
    const compiled = compileInferenceGraph(model);
    expect(compiled).toEqual({ ok: false, reason: 'layer the_max_pool (MaxPooling2D) has no native graph layer' });
    model.dispose();
  });
});

describe('nativeInferenceGraph', () => {
  it('gives the tfjs model’s probabilities at every batch size (or says why it is not there)', async () => {
    const model = await folded(buildReferenceResNet({ seed: 3, finalSurvivalProbability: 0.8 }), 5);
    const native = nativeInferenceGraph(model);
    if (!backend.native) {
      // NS_NATIVE_KERNELS=0 (the plain-wasm project) or no addon: tfjs serves, and the reason says so.
      expect(native.ok).toBe(false);
      if (!native.ok) expect(native.reason).toMatch(/NS_NATIVE_KERNELS=0|addon|oneDNN/);
      model.dispose();
      return;
    }
    if (!native.ok) throw new Error(native.reason);
    for (const batch of [1, 2, 7, 32]) {
      const input = Float32Array.from(seededValues(batch * 28 * 28, batch));
      const expected = tf.tidy(
        () => (model.predict(tf.tensor4d(input, [batch, 28, 28, 1])) as tf.Tensor).dataSync() as Float32Array,
      );
      const actual = native.graph.run(input, batch);
      expect(largestDifference(actual, expected), `batch ${batch}`).toBeLessThan(2e-6);
      // The same batch again: plans are reused, answers identical.
      expect(native.graph.run(input, batch)).toEqual(actual);
    }
    expect(() => native.graph.run(new Float32Array(10), 1)).toThrow(/input: expected 784 values, got 10/);
    model.dispose();
  });

  it('keeps every batch size right as the shared scratch arena grows and plans alternate', async () => {
    if (!backend.native) return;
    const model = await folded(buildReferenceResNet({ seed: 5 }), 7);
    const native = nativeInferenceGraph(model);
    if (!native.ok) throw new Error(native.reason);
    const expectedFor = new Map<number, Float32Array>();
    const inputFor = (batch: number): Float32Array => Float32Array.from(seededValues(batch * 28 * 28, 100 + batch));
    // Growing sizes (each plan needs more scratch than the last), then back down and across.
    for (const batch of [1, 3, 8, 33, 2, 17, 1, 33, 3]) {
      const input = inputFor(batch);
      const expected =
        expectedFor.get(batch) ??
        tf.tidy(() => (model.predict(tf.tensor4d(input, [batch, 28, 28, 1])) as tf.Tensor).dataSync() as Float32Array);
      expectedFor.set(batch, expected);
      expect(largestDifference(native.graph.run(input, batch), expected), `batch ${batch}`).toBeLessThan(2e-6);
    }
    model.dispose();
  });

  it('runs a 32×32×3 CIFAR ResNet with bottleneck blocks and a wider stem like tfjs', async () => {
    if (!backend.native) return;
    const model = await folded(
      buildResNet(
        resnetPreset('resnet50-cifar', {
          stages: [
            { filters: 8, blocks: 1, strides: 1 },
            { filters: 16, blocks: 2, strides: 2 },
          ],
          stem: { filters: 8, kernelSize: 3, strides: 1, maxPool: false },
          seed: 4,
        }),
      ).model,
      6,
    );
    const native = nativeInferenceGraph(model);
    if (!native.ok) throw new Error(native.reason);
    const batch = 3;
    const input = Float32Array.from(seededValues(batch * 32 * 32 * 3, 11));
    const expected = tf.tidy(
      () => (model.predict(tf.tensor4d(input, [batch, 32, 32, 3])) as tf.Tensor).dataSync() as Float32Array,
    );
    expect(largestDifference(native.graph.run(input, batch), expected)).toBeLessThan(2e-6);
    model.dispose();
  });
});
