// The native kernels (packages/kernels) against tfjs' cpu backend: each kernel over several
// shapes, strides and paddings, the fused batch-norm and Adam patches, whole-model gradients,
// a training-equivalence run and a leak check. Runs where the addon built; NS_NATIVE_KERNELS=0
// states on purpose that it did not.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';

import { buildReferenceResNet, clearNoiseStep, initBackend, setNoiseStep } from '@noisystudent/ml';
import {
  lossAndWeightGradients,
  outputsOverTolerance,
  runOn,
  scaledMaxError,
  seededValues,
} from '@noisystudent/ml/testing';

const TOLERANCE = 1e-4;
const nativeExpected = process.env['NS_NATIVE_KERNELS'] !== '0';

beforeAll(async () => {
  const choice = await initBackend({ request: 'wasm', log: () => undefined });
  if (nativeExpected && !choice.native) throw new Error(`native kernels did not load: ${choice.reason}`);
});

function tensor(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(seededValues(tf.util.sizeFromShape(shape), seed), shape);
}

async function expectSameOnCpu(compute: () => tf.Tensor | tf.Tensor[]): Promise<void> {
  const reference = await runOn('cpu', compute);
  const actual = await runOn('wasm', compute);
  expect(outputsOverTolerance(actual, reference, TOLERANCE)).toEqual([]);
}

type Pad = 'same' | 'valid';
const convCases: Array<[string, number[], number[], number, Pad, number]> = [
  ['3×3 same', [2, 8, 8, 3], [3, 3, 3, 4], 1, 'same', 1],
  ['3×3 valid', [2, 9, 7, 2], [3, 3, 2, 5], 1, 'valid', 1],
  ['3×3 stride 2', [3, 9, 9, 4], [3, 3, 4, 6], 2, 'same', 1],
  ['1×1 stride 1 (no im2col)', [2, 5, 5, 8], [1, 1, 8, 3], 1, 'same', 1],
  ['1×1 stride 2 projection', [2, 8, 8, 4], [1, 1, 4, 8], 2, 'same', 1],
  ['5×3 stride 2 valid', [1, 11, 9, 3], [5, 3, 3, 2], 2, 'valid', 1],
  ['1-channel stem', [4, 28, 28, 1], [3, 3, 1, 32], 1, 'same', 1],
  ['dilated 3×3', [2, 10, 10, 2], [3, 3, 2, 3], 1, 'same', 2],
  ['block-sized, odd batch', [5, 14, 14, 32], [3, 3, 32, 16], 1, 'same', 1],
  // Winograd F(2×2, 3×3) where the CPU takes it: odd sizes (a last tile half outside), 24
  // output channels (a 16- and an 8-wide pass), 64 channels at 28×28 (several tile blocks).
  ['3×3 same, odd sizes, 8 → 24 channels', [3, 7, 9, 8], [3, 3, 8, 24], 1, 'same', 1],
  ['3×3 same, 64 channels', [1, 16, 16, 64], [3, 3, 64, 64], 1, 'same', 1],
];

describe('native convolution kernels match cpu', () => {
  it.each(convCases)(
    '%s: forward, fused bias + relu, and both gradients',
    async (_name, xShape, filterShape, stride, pad, dilation) => {
      await expectSameOnCpu(() => {
        const x = tensor(xShape, 1) as tf.Tensor4D;
        const filter = tensor(filterShape, 2) as tf.Tensor4D;
        const bias = tensor([filterShape[3] ?? 1], 3) as tf.Tensor1D;
        const plain = tf.conv2d(x, filter, stride, pad, 'NHWC', dilation);
        const fused = tf.fused.conv2d({
          x,
          filter,
          strides: stride,
          pad,
          dilations: dilation,
          bias,
          activation: 'relu',
        });
        const outputs: tf.Tensor[] = [plain, fused];
        if (dilation === 1) {
          const dy = tensor(plain.shape, 4) as tf.Tensor4D;
          const [dx, dFilter] = tf.grads((input: tf.Tensor, weights: tf.Tensor) =>
            tf.sum(tf.mul(tf.conv2d(input as tf.Tensor4D, weights as tf.Tensor4D, stride, pad), dy)),
          )([x, filter]);
          if (dx === undefined || dFilter === undefined) throw new Error('missing gradients');
          outputs.push(dx, dFilter);
        }
        return outputs;
      });
    },
  );

  it("uses each call's filter: another filter of one shape in between, then the first again", async () => {
    // oneDNN keeps each shape's filter in its own layout and skips the reorder when the filter
    // is unchanged: a changed one (a training step, another layer) must never be served stale.
    await expectSameOnCpu(() => {
      const x = tensor([2, 12, 12, 16], 12) as tf.Tensor4D;
      const first = tensor([3, 3, 16, 16], 13) as tf.Tensor4D;
      const second = tensor([3, 3, 16, 16], 14) as tf.Tensor4D;
      const nearlyFirst = tf.add(first, tf.reshape(tf.oneHot([100], first.size), first.shape)) as tf.Tensor4D;
      return [first, second, first, nearlyFirst, first].map((filter) => tf.conv2d(x, filter, 1, 'same'));
    });
  });
});

describe('native matmul, reductions and elementwise kernels match cpu', () => {
  it.each([
    ['plain', [37, 19], [19, 23], false, false],
    ['transpose a', [19, 37], [19, 23], true, false],
    ['transpose b', [37, 19], [23, 19], false, true],
    ['batched', [3, 17, 9], [3, 9, 11], false, false],
    ['batched, b shared', [4, 6, 5], [5, 7], false, false],
  ] as const)('matMul %s (with fused bias + relu)', async (_name, aShape, bShape, transposeA, transposeB) => {
    await expectSameOnCpu(() => {
      const a = tensor([...aShape], 5);
      const b = tensor([...bShape], 6);
      const product = tf.matMul(a, b, transposeA, transposeB);
      const n = product.shape[product.rank - 1] ?? 1;
      const fused = tf.fused.matMul({ a, b, transposeA, transposeB, bias: tensor([n], 7), activation: 'relu' });
      return [product, fused];
    });
  });

  it('sums and means over leading, middle, trailing and all axes', async () => {
    await expectSameOnCpu(() => {
      const x = tensor([8, 12, 10, 16], 8);
      return [
        tf.sum(x, [0, 1, 2]),
        tf.mean(x, [0, 1, 2], true),
        tf.reshape(tf.mean(x, [1, 2]), [-1]),
        tf.sum(x, [2, 3]),
        tf.mean(x, -1),
        tf.sum(x),
        tf.sum(x, [1]),
        tf.mean(x, [1, 2], true), // global average pooling
        tf.sum(x, [0, 2]), // not one block of axes: falls back to wasm
      ];
    });
  });

  it('adds and multiplies same-shape and channel-broadcast tensors, and applies relu', async () => {
    await expectSameOnCpu(() => {
      const x = tensor([4, 16, 16, 32], 9);
      const y = tensor([4, 16, 16, 32], 10);
      const channel = tensor([32], 11);
      return [
        tf.add(x, y),
        tf.mul(x, y),
        tf.add(channel, x),
        tf.mul(x, tf.reshape(channel, [1, 1, 1, 32])),
        tf.relu(x),
        tf.add(tensor([3], 12), tensor([3], 13)),
      ];
    });
  });

  it('hands what it does not support to the kernel registered before it', async () => {
    await expectSameOnCpu(() => {
      const x = tensor([2, 6, 6, 3], 14) as tf.Tensor4D;
      const filter = tensor([3, 3, 3, 4], 15) as tf.Tensor4D;
      // elu is not fused natively: wasm's own FusedConv2D computes it.
      return [
        tf.fused.conv2d({
          x,
          filter,
          strides: 1,
          pad: 'same',
          activation: 'elu',
          bias: tensor([4], 16) as tf.Tensor1D,
        }),
      ];
    });
  });

  it('shares buffers for identity and same-dtype casts without aliasing values', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor1d([1, 2, 3]);
    const copy = tf.clone(x);
    const cast = tf.cast(x, 'float32');
    x.dispose();
    expect(Array.from(await copy.data())).toEqual([1, 2, 3]);
    expect(Array.from(await cast.data())).toEqual([1, 2, 3]);
    tf.dispose([copy, cast]);
  });
});

describe('fused batch norm and Adam', () => {
  const buildSmall = () => {
    const input = tfl.input({ shape: [6, 6, 3] });
    let x = tfl.layers
      .conv2d({
        filters: 8,
        kernelSize: 3,
        padding: 'same',
        useBias: false,
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }),
      })
      .apply(input);
    x = tfl.layers.batchNormalization({ momentum: 0.9 }).apply(x);
    x = tfl.layers.reLU().apply(x);
    x = tfl.layers.globalAveragePooling2d({}).apply(x);
    const output = tfl.layers
      .dense({ units: 3, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) })
      .apply(x);
    return tfl.model({ inputs: input, outputs: output as tfl.SymbolicTensor });
  };

  it.each([
    ['SGD', () => tf.train.sgd(0.1)],
    ['Adam', () => tf.train.adam(0.01)],
  ] as const)(
    'trains to the same weights, losses and moving statistics as cpu over several %s steps',
    async (_name, makeOptimizer) => {
      const run = (): tf.Tensor[] => {
        const model = buildSmall();
        const optimizer = makeOptimizer();
        const x = tensor([8, 6, 6, 3], 20);
        const y = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1], 'int32'), 3);
        const losses: tf.Tensor[] = [];
        for (let step = 0; step < 5; step++) {
          const loss = optimizer.minimize(
            () =>
              tf.mean(
                tfl.metrics.categoricalCrossentropy(y, model.apply(x, { training: true }) as tf.Tensor),
              ) as tf.Scalar,
            true,
          );
          if (loss === null) throw new Error('minimize returned no loss');
          losses.push(loss);
        }
        const weights = model.weights.map((weight) => tf.clone(weight.read()));
        model.dispose();
        optimizer.dispose();
        return [...losses, ...weights];
      };
      const reference = await runOn('cpu', run);
      const actual = await runOn('wasm', run);
      expect(reference.length).toBe(5 + 1 + 4 + 2); // 5 losses, conv kernel, γ β moving mean/var, dense
      expect(outputsOverTolerance(actual, reference, TOLERANCE)).toEqual([]);
    },
  );

  it('differentiates through the batch statistics when a loss uses them', async () => {
    await expectSameOnCpu(() => {
      const x = tensor([4, 3, 3, 5], 30);
      const gamma = tensor([5], 31);
      const beta = tensor([5], 32);
      const grads = tf.grads((input: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor) => {
        const { mean, variance } = tf.moments(input, [0, 1, 2]);
        const normalized = tf.batchNorm(input, mean, variance, offset, scale, 1e-3);
        return tf.add(tf.sum(tf.square(normalized)), tf.sum(tf.mul(mean, 3)));
      });
      return grads([x, gamma, beta]);
    });
  });
});

describe('the reference ResNet', () => {
  // 16×16 inputs: every layer and both stride-2 stages, while the cpu reference (plain-loop
  // convolution gradients) stays a few seconds long, so a loaded CI machine does not time out.
  it('gives every weight the same gradient with native kernels as on cpu, batch 3', async () => {
    const compute = (): tf.Tensor[] => {
      // One noise step on both backends: the same dropout mask.
      setNoiseStep(5, 0);
      const model = buildReferenceResNet({ seed: 11, inputShape: [16, 16, 1] });
      const images = tf.tensor4d(seededValues(3 * 16 * 16, 40), [3, 16, 16, 1]);
      const labels = tf.oneHot(tf.tensor1d([1, 5, 9], 'int32'), 10);
      const outputs = lossAndWeightGradients(
        model,
        () =>
          tf.mean(
            tfl.metrics.categoricalCrossentropy(labels, model.apply(images, { training: true }) as tf.Tensor),
          ) as tf.Scalar,
      );
      model.dispose();
      clearNoiseStep();
      return outputs;
    };
    const reference = await runOn('cpu', compute);
    const actual = await runOn('wasm', compute);
    expect(reference.length).toBe(27);
    expect(outputsOverTolerance(actual, reference, TOLERANCE)).toEqual([]);
    expect(scaledMaxError(actual[0] ?? new Float32Array(), reference[0] ?? new Float32Array())).toBeLessThan(1e-5);
  });

  it('leaks no tensor and no wasm buffer over many train and predict steps', async () => {
    await tf.setBackend('wasm');
    const model = buildReferenceResNet();
    model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
    const x = tf.tensor4d(seededValues(8 * 28 * 28, 50), [8, 28, 28, 1]);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32'), 10);
    const step = async () => {
      await model.trainOnBatch(x, y);
      const probabilities = model.predict(x) as tf.Tensor;
      await probabilities.data();
      probabilities.dispose();
    };
    await step();
    const tensorsBefore = tf.memory().numTensors;
    const buffersBefore = tf.engine().backend.numDataIds();
    for (let i = 0; i < 8; i++) await step();
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(tf.engine().backend.numDataIds()).toBe(buffersBefore);
    tf.dispose([x, y]);
    model.dispose();
  });
});
