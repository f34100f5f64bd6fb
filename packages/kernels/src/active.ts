import * as tf from '@tensorflow/tfjs-core';

let registered = false;

/** Recorded by enable.ts once the native kernels are registered for wasm. */
export function markNativeKernelsRegistered(): void {
  registered = true;
}

/** True once native kernels are registered and the wasm backend is the active one. */
export function nativeKernelsActive(): boolean {
  return registered && tf.getBackend() === 'wasm';
}
