import { Mean, Sum, util, type KernelConfig, type TensorInfo } from '@tensorflow/tfjs-core';

import type { NativeAddon } from './addon.js';
import { heapOf, nativeWithFallback, offsetOf } from './heap.js';

const NATIVE_MINIMUM = 1 << 12;

interface ReduceAttrs {
  axis: number | number[];
  keepDims: boolean;
}

/**
 * Sum and Mean over a contiguous block of leading axes (a column sum, e.g. batch-norm moments
 * over N, H, W) or trailing axes (a row sum, e.g. global pooling), which wasm does by transposing first.
 */
function reduce(kernelName: string, addon: NativeAddon, isMean: boolean): KernelConfig {
  return nativeWithFallback<{ x: TensorInfo }, ReduceAttrs>(kernelName, ({ inputs, backend, attrs }) => {
    const { x } = inputs;
    const size = util.sizeFromShape(x.shape);
    if (x.dtype !== 'float32' || size < NATIVE_MINIMUM) return undefined;
    const axes = util.parseAxisParam(attrs.axis, x.shape).sort((a, b) => a - b);
    const contiguous = axes.every((axis, index) => index === 0 || axis === (axes[index - 1] ?? 0) + 1);
    if (axes.length === 0 || !contiguous) return undefined;
    const leading = axes[0] === 0;
    const trailing = axes[axes.length - 1] === x.shape.length - 1;
    if (!leading && !trailing) return undefined;
    const reducedSize = util.sizeFromShape(axes.map((axis) => x.shape[axis] ?? 1));
    const keptShape = x.shape.filter((_, axis) => !axes.includes(axis));
    const outShape = attrs.keepDims ? x.shape.map((dim, axis) => (axes.includes(axis) ? 1 : dim)) : keptShape;
    const out = backend.makeOutput(outShape, 'float32');
    const scale = isMean ? 1 / reducedSize : 1;
    const kept = size / reducedSize;
    const heap = heapOf(backend);
    if (trailing) addon.sumCols(heap, offsetOf(backend, x), offsetOf(backend, out), kept, reducedSize, scale);
    else addon.sumRows(heap, offsetOf(backend, x), offsetOf(backend, out), reducedSize, kept, scale);
    return out;
  });
}

export function reduceKernels(addon: NativeAddon): KernelConfig[] {
  return [reduce(Sum, addon, false), reduce(Mean, addon, true)];
}
