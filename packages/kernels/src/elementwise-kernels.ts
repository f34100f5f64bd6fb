import { Add, Cast, Identity, Multiply, Relu, util, type KernelConfig, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

import type { NativeAddon } from './addon.js';
import { heapOf, nativeWithFallback, offsetOf } from './heap.js';

/** Below this many values wasm's own kernel is as fast as a call into the addon. */
const NATIVE_MINIMUM = 1 << 14;

/**
 * How b broadcasts against a, when it is one the addon handles: same shape, or b equal to a's
 * trailing dimensions (leading 1s ignored), so b repeats every b.size values.
 */
function repeatingOperand(a: TensorInfo, b: TensorInfo): number | undefined {
  const aSize = util.sizeFromShape(a.shape);
  const bSize = util.sizeFromShape(b.shape);
  if (aSize < NATIVE_MINIMUM || a.dtype !== 'float32' || b.dtype !== 'float32') return undefined;
  if (util.arraysEqual(a.shape, b.shape)) return bSize;
  const bDims = b.shape.slice(b.shape.findIndex((dim) => dim !== 1));
  if (bDims.length === 0 || bDims.length > a.shape.length || b.shape.length > a.shape.length) return undefined;
  return util.arraysEqual(a.shape.slice(a.shape.length - bDims.length), bDims) ? bSize : undefined;
}

function binary(kernelName: string, run: NativeAddon['add']): KernelConfig {
  return nativeWithFallback<{ a: TensorInfo; b: TensorInfo }, object>(kernelName, ({ inputs, backend }) => {
    // Both kernels commute: put the full-size operand first.
    for (const [full, repeating] of [
      [inputs.a, inputs.b],
      [inputs.b, inputs.a],
    ] as const) {
      const repeatSize = repeatingOperand(full, repeating);
      if (repeatSize === undefined) continue;
      const out = backend.makeOutput(full.shape, 'float32');
      const size = util.sizeFromShape(full.shape);
      run(
        heapOf(backend),
        offsetOf(backend, full),
        offsetOf(backend, repeating),
        offsetOf(backend, out),
        size,
        repeatSize,
      );
      return out;
    }
    return undefined;
  });
}

/** A tensor that shares `x`'s buffer, as tfjs' cpu backend does for Identity, instead of a copy. */
function shareBuffer(backend: BackendWasm, x: TensorInfo): TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** Large Add, Multiply and Relu on the addon; Identity and same-dtype Cast without copying. */
export function elementwiseKernels(addon: NativeAddon): KernelConfig[] {
  return [
    binary(Add, addon.add),
    binary(Multiply, addon.multiply),
    nativeWithFallback<{ x: TensorInfo }, object>(Relu, ({ inputs, backend }) => {
      const { x } = inputs;
      const size = util.sizeFromShape(x.shape);
      if (x.dtype !== 'float32' || size < NATIVE_MINIMUM) return undefined;
      const out = backend.makeOutput(x.shape, 'float32');
      addon.relu(heapOf(backend), offsetOf(backend, x), offsetOf(backend, out), size);
      return out;
    }),
    nativeWithFallback<{ x: TensorInfo }, object>(Identity, ({ inputs, backend }) => shareBuffer(backend, inputs.x)),
    nativeWithFallback<{ x: TensorInfo }, { dtype: string }>(Cast, ({ inputs, backend, attrs }) =>
      inputs.x.dtype === attrs.dtype ? shareBuffer(backend, inputs.x) : undefined,
    ),
  ];
}
