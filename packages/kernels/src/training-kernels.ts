import {
  FusedBatchNorm,
  util,
  type FusedBatchNormAttrs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

import type { NativeAddon } from './addon.js';
import { heapOf, nativeWithFallback, offsetOf } from './heap.js';

/** Kernels of our own, for wasm only, used by the patches in patches.ts when native kernels are active. */
export const BATCH_NORM_TRAINING = 'NsBatchNormTraining';
export const BATCH_NORM_TRAINING_GRAD = 'NsBatchNormTrainingGrad';
export const ADAM_UPDATE = 'NsAdamUpdate';
export const RELU_GRAD = 'NsReluGrad';

export interface BatchNormTrainingAttrs {
  epsilon: number;
}

export interface AdamUpdateAttrs {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  oneMinusAccBeta1: number;
  oneMinusAccBeta2: number;
}

interface Args<Inputs, Attrs> {
  inputs: Inputs;
  backend: BackendWasm;
  attrs: Attrs;
}

function config<Inputs, Attrs>(
  kernelName: string,
  run: (args: Args<Inputs, Attrs>) => TensorInfo | TensorInfo[],
): KernelConfig {
  return { kernelName, backendName: 'wasm', kernelFunc: run as unknown as KernelFunc };
}

function channelsOf(x: TensorInfo): { rows: number; channels: number } {
  const channels = x.shape[x.shape.length - 1] ?? 1;
  return { rows: util.sizeFromShape(x.shape) / channels, channels };
}

interface FusedBatchNormInputs {
  x: TensorInfo;
  mean: TensorInfo;
  variance: TensorInfo;
  offset?: TensorInfo;
  scale?: TensorInfo;
}

/** FusedBatchNorm (inference and tfjs' own training path) with statistics per last-axis channel. */
function fusedBatchNorm(addon: NativeAddon): KernelConfig {
  return nativeWithFallback<FusedBatchNormInputs, FusedBatchNormAttrs>(FusedBatchNorm, ({ inputs, backend, attrs }) => {
    const { x, mean, variance, offset, scale } = inputs;
    const { rows, channels } = channelsOf(x);
    const perChannel = [mean, variance, offset, scale].every(
      (tensor) => tensor === undefined || (tensor.dtype === 'float32' && util.sizeFromShape(tensor.shape) === channels),
    );
    if (x.dtype !== 'float32' || !perChannel || rows * channels < 1024) return undefined;
    const y = backend.makeOutput(x.shape, 'float32');
    addon.batchNormInference(
      heapOf(backend),
      offsetOf(backend, x),
      offsetOf(backend, mean),
      offsetOf(backend, variance),
      scale === undefined ? -1 : offsetOf(backend, scale),
      offset === undefined ? -1 : offsetOf(backend, offset),
      attrs.varianceEpsilon,
      rows,
      channels,
      offsetOf(backend, y),
    );
    return y;
  });
}

export function trainingKernels(addon: NativeAddon): KernelConfig[] {
  return [
    fusedBatchNorm(addon),
    // x [..., C], gamma [C], beta [C] → y (same shape as x), batch mean [C], biased batch variance [C]
    config<{ x: TensorInfo; gamma: TensorInfo; beta: TensorInfo }, BatchNormTrainingAttrs>(
      BATCH_NORM_TRAINING,
      ({ inputs, backend, attrs }) => {
        const { x, gamma, beta } = inputs;
        const { rows, channels } = channelsOf(x);
        const y = backend.makeOutput(x.shape, 'float32');
        const mean = backend.makeOutput([channels], 'float32');
        const variance = backend.makeOutput([channels], 'float32');
        addon.batchNormForward(
          heapOf(backend),
          offsetOf(backend, x),
          offsetOf(backend, gamma),
          offsetOf(backend, beta),
          attrs.epsilon,
          rows,
          channels,
          offsetOf(backend, y),
          offsetOf(backend, mean),
          offsetOf(backend, variance),
        );
        return [y, mean, variance];
      },
    ),
    // dy, x, mean, variance, gamma → dx, dgamma, dbeta (through the batch statistics, as in training)
    config<
      { dy: TensorInfo; x: TensorInfo; mean: TensorInfo; variance: TensorInfo; gamma: TensorInfo },
      BatchNormTrainingAttrs
    >(BATCH_NORM_TRAINING_GRAD, ({ inputs, backend, attrs }) => {
      const { dy, x, mean, variance, gamma } = inputs;
      const { rows, channels } = channelsOf(x);
      const dx = backend.makeOutput(x.shape, 'float32');
      const dgamma = backend.makeOutput([channels], 'float32');
      const dbeta = backend.makeOutput([channels], 'float32');
      addon.batchNormBackward(
        heapOf(backend),
        offsetOf(backend, dy),
        offsetOf(backend, x),
        offsetOf(backend, mean),
        offsetOf(backend, variance),
        offsetOf(backend, gamma),
        attrs.epsilon,
        rows,
        channels,
        offsetOf(backend, dx),
        offsetOf(backend, dgamma),
        offsetOf(backend, dbeta),
      );
      return [dx, dgamma, dbeta];
    }),
    // value, gradient, m, v → new value, new m, new v
    config<
      { value: TensorInfo; gradient: TensorInfo; firstMoment: TensorInfo; secondMoment: TensorInfo },
      AdamUpdateAttrs
    >(ADAM_UPDATE, ({ inputs, backend, attrs }) => {
      const { value, gradient, firstMoment, secondMoment } = inputs;
      const size = util.sizeFromShape(value.shape);
      const newValue = backend.makeOutput(value.shape, 'float32');
      const newFirstMoment = backend.makeOutput(value.shape, 'float32');
      const newSecondMoment = backend.makeOutput(value.shape, 'float32');
      addon.adamUpdate(
        heapOf(backend),
        offsetOf(backend, value),
        offsetOf(backend, gradient),
        offsetOf(backend, firstMoment),
        offsetOf(backend, secondMoment),
        size,
        attrs.learningRate,
        attrs.beta1,
        attrs.beta2,
        attrs.epsilon,
        attrs.oneMinusAccBeta1,
        attrs.oneMinusAccBeta2,
        offsetOf(backend, newValue),
        offsetOf(backend, newFirstMoment),
        offsetOf(backend, newSecondMoment),
      );
      return [newValue, newFirstMoment, newSecondMoment];
    }),
    // dy, x → dy where x > 0, else 0
    config<{ dy: TensorInfo; x: TensorInfo }, object>(RELU_GRAD, ({ inputs, backend }) => {
      const { dy, x } = inputs;
      const dx = backend.makeOutput(x.shape, 'float32');
      addon.reluGrad(
        heapOf(backend),
        offsetOf(backend, dy),
        offsetOf(backend, x),
        offsetOf(backend, dx),
        util.sizeFromShape(x.shape),
      );
      return dx;
    }),
  ];
}
