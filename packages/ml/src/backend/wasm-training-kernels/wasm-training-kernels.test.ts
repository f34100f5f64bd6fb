import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../select-backend.js';
import { seededValues } from '../../random.js';
import { runOn, scaledMaxError } from '../../testing/compare-backends.js';

type Padding = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
type Shape4 = [number, number, number, number];

const TOLERANCE = 1e-4;

beforeAll(async () => {
  await initBackend({ request: 'wasm', log: () => undefined });
});

async function expectKernelMatchesCpu(kernelName: string, makeInputs: () => tf.NamedTensorMap, attrs: object) {
  const compute = () => tf.engine().runKernel(kernelName, makeInputs(), attrs as tf.NamedAttrMap) as tf.Tensor;
  const [reference] = await runOn('cpu', compute);
  const [actual] = await runOn('wasm', compute);
  if (reference === undefined || actual === undefined) throw new Error('no output');
  expect(actual.length).toBe(reference.length);
  expect(scaledMaxError(actual, reference)).toBeLessThanOrEqual(TOLERANCE);
  return { actual, reference };
}

function tensor(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(seededValues(tf.util.sizeFromShape(shape), seed), shape);
}

interface ConvCase {
  x: Shape4;
  filter: Shape4;
  strides: [number, number];
  pad: Padding;
}

const convCases: ConvCase[] = [
  { x: [2, 8, 8, 3], filter: [3, 3, 3, 4], strides: [1, 1], pad: 'same' },
  { x: [2, 8, 8, 3], filter: [3, 3, 3, 4], strides: [1, 1], pad: 'valid' },
  { x: [3, 9, 7, 2], filter: [3, 3, 2, 5], strides: [2, 2], pad: 'same' },
  { x: [2, 10, 10, 4], filter: [3, 3, 4, 6], strides: [2, 2], pad: 'valid' },
  { x: [2, 8, 8, 4], filter: [1, 1, 4, 8], strides: [2, 2], pad: 'same' },
  { x: [1, 11, 9, 3], filter: [5, 3, 3, 2], strides: [3, 2], pad: 'same' },
  { x: [2, 7, 7, 2], filter: [2, 2, 2, 3], strides: [1, 1], pad: 'same' },
  {
    x: [2, 6, 8, 3],
    filter: [3, 3, 3, 4],
    strides: [1, 2],
    pad: [
      [0, 0],
      [2, 1],
      [0, 2],
      [0, 0],
    ],
  },
  { x: [4, 28, 28, 1], filter: [3, 3, 1, 32], strides: [1, 1], pad: 'same' },
  { x: [2, 14, 14, 32], filter: [3, 3, 32, 64], strides: [2, 2], pad: 'same' },
];

function convOutputShape(conv: ConvCase): Shape4 {
  const info = tf.backend_util.computeConv2DInfo(conv.x, conv.filter, conv.strides, 1, conv.pad);
  return info.outShape as Shape4;
}

function describeConv(conv: ConvCase): string {
  return `x ${conv.x.join('×')} filter ${conv.filter.join('×')} strides ${conv.strides.join(',')} pad ${JSON.stringify(conv.pad)}`;
}

describe('Conv2DBackpropFilter on wasm matches cpu', () => {
  it.each(convCases.map((conv) => [describeConv(conv), conv] as const))('%s', async (_name, conv) => {
    await expectKernelMatchesCpu(
      'Conv2DBackpropFilter',
      () => ({ x: tensor(conv.x, 1), dy: tensor(convOutputShape(conv), 2) }),
      { strides: conv.strides, pad: conv.pad, dataFormat: 'NHWC', filterShape: conv.filter },
    );
  });
});

describe('Conv2DBackpropInput on wasm matches cpu', () => {
  it.each(convCases.map((conv) => [describeConv(conv), conv] as const))('%s', async (_name, conv) => {
    await expectKernelMatchesCpu(
      'Conv2DBackpropInput',
      () => ({ dy: tensor(convOutputShape(conv), 3), filter: tensor(conv.filter, 4) }),
      { strides: conv.strides, pad: conv.pad, dataFormat: 'NHWC', inputShape: conv.x },
    );
  });
});

interface DepthwiseCase {
  x: Shape4;
  filter: Shape4;
  strides: [number, number];
  pad: Padding;
}

const depthwiseCases: DepthwiseCase[] = [
  { x: [2, 8, 8, 3], filter: [3, 3, 3, 1], strides: [1, 1], pad: 'same' },
  { x: [2, 9, 9, 4], filter: [3, 3, 4, 2], strides: [2, 2], pad: 'same' },
  { x: [1, 10, 8, 2], filter: [5, 3, 2, 3], strides: [1, 1], pad: 'valid' },
  { x: [2, 11, 11, 3], filter: [3, 3, 3, 1], strides: [2, 2], pad: 'valid' },
];

function depthwiseOutputShape(conv: DepthwiseCase): Shape4 {
  const info = tf.backend_util.computeConv2DInfo(conv.x, conv.filter, conv.strides, 1, conv.pad, undefined, true);
  return info.outShape as Shape4;
}

describe('DepthwiseConv2dNativeBackpropFilter on wasm matches cpu', () => {
  it.each(depthwiseCases.map((conv) => [describeConv(conv), conv] as const))('%s', async (_name, conv) => {
    await expectKernelMatchesCpu(
      'DepthwiseConv2dNativeBackpropFilter',
      () => ({ x: tensor(conv.x, 5), dy: tensor(depthwiseOutputShape(conv), 6) }),
      { strides: conv.strides, dilations: [1, 1], pad: conv.pad, filterShape: conv.filter },
    );
  });
});

describe('DepthwiseConv2dNativeBackpropInput on wasm matches cpu', () => {
  it.each(depthwiseCases.map((conv) => [describeConv(conv), conv] as const))('%s', async (_name, conv) => {
    await expectKernelMatchesCpu(
      'DepthwiseConv2dNativeBackpropInput',
      () => ({ dy: tensor(depthwiseOutputShape(conv), 7), filter: tensor(conv.filter, 8) }),
      { strides: conv.strides, dilations: [1, 1], pad: conv.pad, inputShape: conv.x },
    );
  });
});

describe('UnsortedSegmentSum on wasm matches cpu', () => {
  it.each([
    ['1-d ids, repeated', [0, 2, 2, 1, 0, 4], [6, 3], 5],
    ['rows of a 3-d input', [1, 1, 0, 3, 2, 1], [6, 3, 2], 4],
    ['negative ids are dropped', [0, -1, 2, -1, 2], [5, 2], 3],
    ['empty segments stay zero', [3, 3], [2, 4], 6],
  ] as const)('%s', async (_name, ids, xShape, numSegments) => {
    const { actual } = await expectKernelMatchesCpu(
      'UnsortedSegmentSum',
      () => ({ x: tensor([...xShape], 9), segmentIds: tf.tensor1d([...ids], 'int32') }),
      { numSegments },
    );
    expect(actual.length).toBe((numSegments * tf.util.sizeFromShape([...xShape])) / ids.length);
  });
});

describe("MaxPoolGrad on wasm matches cpu (wasm's own misroutes all-negative windows)", () => {
  it.each([
    ['2×2 valid', [2, 6, 6, 16], 2, 2, 'valid'],
    ['3×3 stride 2 same', [2, 7, 7, 4], 3, 2, 'same'],
    ['3×3 stride 1 same (overlapping windows)', [2, 6, 6, 5], 3, 1, 'same'],
    ['2×2 stride 2 same, odd size', [1, 5, 7, 3], 2, 2, 'same'],
  ] as const)('%s', async (_name, shape, filterSize, stride, pad) => {
    await expectKernelMatchesCpu(
      'MaxPoolGrad',
      () => {
        const input = tensor([...shape], 16);
        const output = tf.maxPool(input as tf.Tensor4D, filterSize, stride, pad);
        return { dy: tensor(output.shape, 17), input, output };
      },
      { filterSize, strides: stride, pad },
    );
  });

  it('routes a window of equal values to its first pixel, as cpu does', async () => {
    const { actual } = await expectKernelMatchesCpu(
      'MaxPoolGrad',
      () => {
        const input = tf.fill([1, 2, 2, 1], -3);
        return { dy: tf.ones([1, 1, 1, 1]), input, output: tf.maxPool(input as tf.Tensor4D, 2, 2, 'valid') };
      },
      { filterSize: 2, strides: 2, pad: 'valid' },
    );
    expect(Array.from(actual)).toEqual([1, 0, 0, 0]);
  });
});

describe('batch-norm gradient', () => {
  it('matches tfjs-core composite maths for every input', async () => {
    const shape: Shape4 = [3, 5, 4, 6];
    const compute = () => {
      const x = tensor(shape, 10);
      const mean = tensor([6], 11);
      const variance = tf.add(tf.abs(tensor([6], 12)), 0.1);
      const scale = tensor([6], 13);
      const offset = tensor([6], 14);
      const dy = tensor(shape, 15);
      const viaKernel = tf.grads((a, m, v, s, o) => tf.sum(tf.mul(tf.batchNorm(a, m, v, o, s, 1e-3), dy)));
      // The same function from elementary ops only, differentiated by their own gradients.
      const viaOps = tf.grads((a, m, v, s, o) =>
        tf.sum(tf.mul(tf.add(tf.mul(tf.div(tf.sub(a, m), tf.sqrt(tf.add(v, 1e-3))), s), o), dy)),
      );
      return [...viaKernel([x, mean, variance, scale, offset]), ...viaOps([x, mean, variance, scale, offset])];
    };
    for (const backendName of ['wasm', 'cpu']) {
      const outputs = await runOn(backendName, compute);
      for (let input = 0; input < 5; input++) {
        const fused = outputs[input];
        const elementary = outputs[input + 5];
        if (fused === undefined || elementary === undefined) throw new Error('missing gradient');
        expect(scaledMaxError(fused, elementary)).toBeLessThanOrEqual(TOLERANCE);
      }
    }
  });
});

describe('a kernel that cannot run', () => {
  it('names the field and the expected value', () => {
    return runOn(
      'wasm',
      () =>
        tf.engine().runKernel('Conv2DBackpropFilter', { x: tf.zeros([1, 3, 4, 4]), dy: tf.zeros([1, 3, 4, 4]) }, {
          strides: 1,
          pad: 'same',
          dataFormat: 'NCHW',
          filterShape: [1, 1, 3, 3],
        } as unknown as tf.NamedAttrMap) as tf.Tensor,
    ).then(
      () => expect.fail('NCHW should be refused'),
      (error: unknown) => expect(String(error)).toMatch(/dataFormat expected NHWC, got NCHW/),
    );
  });
});
