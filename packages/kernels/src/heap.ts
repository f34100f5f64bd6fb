import {
  getKernel,
  registerKernel,
  unregisterKernel,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** The wasm heap as it is now: take it after every allocation, since growing the heap replaces it. */
export function heapOf(backend: BackendWasm): ArrayBuffer {
  return (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer as ArrayBuffer;
}

/** Byte offset of a tensor's data in the wasm heap. */
export function offsetOf(backend: BackendWasm, tensor: TensorInfo): number {
  return backend.getMemoryOffset(tensor.dataId);
}

export interface KernelArgs<Inputs, Attrs> {
  inputs: Inputs;
  backend: BackendWasm;
  attrs: Attrs;
}

/**
 * A native kernel for wasm that hands anything it does not support (return `undefined`) to
 * the kernel that was registered before it — wasm's own, or our composite training kernel.
 */
export function nativeWithFallback<Inputs, Attrs>(
  kernelName: string,
  native: (args: KernelArgs<Inputs, Attrs>) => TensorInfo | TensorInfo[] | undefined,
): KernelConfig {
  const previous = getKernel(kernelName, 'wasm');
  const kernelFunc = (args: KernelArgs<Inputs, Attrs>): TensorInfo | TensorInfo[] => {
    const result = native(args);
    if (result !== undefined) return result;
    if (previous === undefined) throw new Error(`${kernelName} (wasm): unsupported input and no fallback kernel`);
    return previous.kernelFunc(args as unknown as Parameters<KernelFunc>[0]);
  };
  // The fallback's setup (it binds its wasm function when the backend starts) must still run.
  return {
    kernelName,
    backendName: 'wasm',
    kernelFunc: kernelFunc as unknown as KernelFunc,
    ...(previous?.setupFunc !== undefined ? { setupFunc: previous.setupFunc } : {}),
    ...(previous?.disposeFunc !== undefined ? { disposeFunc: previous.disposeFunc } : {}),
  };
}

/** Registers `config` for wasm, replacing any kernel of that name. */
export function replaceKernel(config: KernelConfig): void {
  if (getKernel(config.kernelName, config.backendName) !== undefined)
    unregisterKernel(config.kernelName, config.backendName);
  registerKernel(config);
}
