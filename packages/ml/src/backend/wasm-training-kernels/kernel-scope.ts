import { getKernel, type NamedAttrMap, type NamedTensorInfoMap, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * Runs wasm kernels from inside another wasm kernel, the way tfjs' own composite kernels do:
 * straight through the registry, so nothing is recorded on the gradient tape. Every tensor
 * the scope makes is released by `finish`, except the one it returns.
 */
export class KernelScope {
  private readonly made: TensorInfo[] = [];

  constructor(readonly backend: BackendWasm) {}

  run(kernelName: string, inputs: NamedTensorInfoMap | TensorInfo[], attrs: object = {}): TensorInfo {
    const kernel = getKernel(kernelName, 'wasm');
    if (kernel === undefined) throw new Error(`wasm training kernels: kernel ${kernelName} is not registered for wasm`);
    // Concat and Pack take their inputs as an array, as the engine passes them.
    const out = kernel.kernelFunc({
      inputs: inputs as NamedTensorInfoMap,
      backend: this.backend,
      attrs: attrs as NamedAttrMap,
    });
    if (Array.isArray(out)) throw new Error(`wasm training kernels: ${kernelName} returned several tensors`);
    this.made.push(out);
    return out;
  }

  /** A new tensor holding `values`, owned by the scope like any intermediate. */
  constant(shape: number[], dtype: 'int32' | 'float32', values: ArrayLike<number>): TensorInfo {
    const out = this.backend.makeOutput(shape, dtype);
    this.backend.typedArrayFromHeap(out).set(values);
    this.made.push(out);
    return out;
  }

  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.run('Reshape', { x }, { shape });
  }

  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    return this.run('Transpose', { x }, { perm });
  }

  pad(x: TensorInfo, paddings: Array<[number, number]>): TensorInfo {
    if (paddings.every(([before, after]) => before === 0 && after === 0)) return x;
    return this.run('PadV2', { x }, { paddings, constantValue: 0 });
  }

  slice(x: TensorInfo, begin: number[], size: number[]): TensorInfo {
    if (size.every((extent, axis) => begin[axis] === 0 && extent === x.shape[axis])) return x;
    return this.run('Slice', { x }, { begin, size });
  }

  /**
   * Releases every intermediate and hands `result` to the caller holding one reference of
   * its own, as wasm's Identity and Reshape do, even when it aliases an input or an intermediate.
   */
  finish(result: TensorInfo): TensorInfo {
    this.backend.incRef(result.dataId);
    for (const info of this.made) this.backend.disposeData(info.dataId);
    this.made.length = 0;
    return result;
  }
}
