import { Mean, Sum, util, type KernelConfig, type TensorInfo } from '@tensorflow/tfjs-core';

import type { NativeAddon } from './addon.js';
import { heapOf, nativeWithFallback, offsetOf } from './heap.js';

const NATIVE_MINIMUM = 1 << 12;

interface ReduceAttrs {
  axis: number | number[];
  keepDims: boolean;
}

/**
 * Sum and Mean over any contiguous block of axes: leading (batch-norm moments over N, H, W),
 * middle (global average pooling over H, W of NHWC) or trailing, which wasm does by transposing first.
 */
function reduce(kernelName: string, addon: NativeAddon, isMean: boolean): KernelConfig {
  return nativeWithFallback<{ x: TensorInfo }, ReduceAttrs>(kernelName, ({ inputs, backend, attrs }) => {
    const { x } = inputs;
    const size = util.sizeFromShape(x.shape);
    if (x.dtype !== 'float32' || size < NATIVE_MINIMUM) return undefined;
    const axes = util.parseAxisParam(attrs.axis, x.shape).sort((a, b) => a - b);
    const contiguous = axes.every((axis, index) => index === 0 || axis === (axes[index - 1] ?? 0) + 1);
    if (axes.length === 0 || !contiguous) return undefined;
    const first = axes[0] ?? 0;
    const last = axes[axes.length - 1] ?? 0;
    const reducedSize = util.sizeFromShape(x.shape.slice(first, last + 1));
    const outerSize = util.sizeFromShape(x.shape.slice(0, first));
    const keptShape = x.shape.filter((_, axis) => !axes.includes(axis));
    const outShape = attrs.keepDims ? x.shape.map((dim, axis) => (axes.includes(axis) ? 1 : dim)) : keptShape;
    const out = backend.makeOutput(outShape, 'float32');
    const scale = isMean ? 1 / reducedSize : 1;
    const innerSize = size / reducedSize / outerSize;
    addon.sumAxes(
      heapOf(backend),
      offsetOf(backend, x),
      offsetOf(backend, out),
      outerSize,
      reducedSize,
      innerSize,
      scale,
    );
    return out;
  });
}

export function reduceKernels(addon: NativeAddon): KernelConfig[] {
  return [reduce(Sum, addon, false), reduce(Mean, addon, true)];
}
