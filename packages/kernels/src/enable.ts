import { loadAddon } from './addon.js';
import { markNativeKernelsRegistered } from './active.js';
import { convKernels } from './conv-kernels.js';
import { elementwiseKernels } from './elementwise-kernels.js';
import { matmulKernels } from './matmul-kernels.js';
import { applyTfjsPatches } from './patches.js';
import { reduceKernels } from './reduce-kernels.js';
import { trainingKernels } from './training-kernels.js';
import { replaceKernel } from './heap.js';

/** What `enableNativeKernels` did, for the backend's log line. */
export interface NativeKernelsStatus {
  native: boolean;
  threads: number;
  reason: string;
}

let status: NativeKernelsStatus | undefined;

/**
 * Registers the native kernels for the wasm backend, each falling back to the kernel registered
 * before it for inputs it does not handle. Call after the wasm backend's own kernels (and our
 * composite training kernels) are registered. Idempotent; never throws: when the addon cannot
 * load, nothing is registered and the status says why.
 */
export function enableNativeKernels(): NativeKernelsStatus {
  if (status !== undefined) return status;
  const load = loadAddon();
  if (!load.ok) {
    status = { native: false, threads: 1, reason: `native kernels unavailable: ${load.reason}` };
    return status;
  }
  const { addon } = load;
  for (const config of [
    ...convKernels(addon),
    ...matmulKernels(addon),
    ...elementwiseKernels(addon),
    ...reduceKernels(addon),
    ...trainingKernels(addon),
  ]) {
    replaceKernel(config);
  }
  markNativeKernelsRegistered();
  const patches = applyTfjsPatches();
  const threads = addon.threads();
  status = {
    native: true,
    threads,
    reason: `native kernels (convolutions on ${addon.convLibrary()}, OpenMP ${threads} threads)${patches.ok ? ', fused batch norm and Adam' : `; ${patches.reason}`}`,
  };
  return status;
}
