import {
  getKernel,
  registerGradient,
  registerKernel,
  unregisterKernel,
  type KernelConfig,
} from '@tensorflow/tfjs-core';

import { batchNormGradientConfig } from '../gradients/batch-norm-gradient.js';

import { conv2dBackpropFilterConfig, conv2dBackpropInputConfig } from './conv2d-backprop.js';
import { depthwiseBackpropFilterConfig, depthwiseBackpropInputConfig } from './depthwise-conv2d-backprop.js';
import { maxPoolGradConfig } from './max-pool-grad.js';
import { unsortedSegmentSumConfig } from './unsorted-segment-sum.js';

/** Kernels that wasm lacks or runs as scalar loops, in the order a training step meets them. */
export const wasmTrainingKernels: readonly KernelConfig[] = [
  conv2dBackpropFilterConfig,
  conv2dBackpropInputConfig,
  depthwiseBackpropFilterConfig,
  depthwiseBackpropInputConfig,
  unsortedSegmentSumConfig,
  maxPoolGradConfig,
];

let registered = false;

/** Registers our training kernels for wasm, replacing wasm's own where it has a slow one. Idempotent. */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  for (const config of wasmTrainingKernels) {
    if (getKernel(config.kernelName, config.backendName) !== undefined)
      unregisterKernel(config.kernelName, config.backendName);
    registerKernel(config);
  }
  // Backend-agnostic and exact; replaces tfjs-core's tiling version for every backend.
  registerGradient(batchNormGradientConfig);
  registered = true;
}
