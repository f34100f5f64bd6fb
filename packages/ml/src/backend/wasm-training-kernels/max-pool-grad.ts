import {
  backend_util,
  MaxPoolGrad,
  type KernelConfig,
  type KernelFunc,
  type MaxPoolGradAttrs,
  type MaxPoolGradInputs,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type Shape4 = [number, number, number, number];

/**
 * Routes each dy value to the first maximum of its pooling window, reading and writing the
 * wasm heap in place. Replaces wasm's MaxPoolGrad, which starts each window's search from
 * `numeric_limits<float>::min()` (the smallest *positive* float), so a window whose values
 * are all negative sends its gradient to the wrong pixel.
 */
function maxPoolGrad(args: { inputs: MaxPoolGradInputs; backend: BackendWasm; attrs: MaxPoolGradAttrs }): TensorInfo {
  const { inputs, backend, attrs } = args;
  const dy = inputs.dy as TensorInfo;
  const input = inputs.input as TensorInfo;
  const { filterSize, strides, pad, dimRoundingMode } = attrs;
  const info = backend_util.computePool2DInfo(input.shape as Shape4, filterSize, strides, 1, pad, dimRoundingMode);
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
  const out = backend.makeOutput(input.shape, 'float32');
  // Views are taken after makeOutput: growing the heap detaches older ones.
  const x = backend.typedArrayFromHeap(input) as Float32Array;
  const gradient = backend.typedArrayFromHeap(dy) as Float32Array;
  const dx = backend.typedArrayFromHeap(out) as Float32Array;
  dx.fill(0);
  const bestValue = new Float32Array(channels);
  const bestIndex = new Int32Array(channels);
  for (let n = 0; n < batchSize; n++) {
    for (let oy = 0; oy < outHeight; oy++) {
      const rowStart = oy * info.strideHeight - info.padInfo.top;
      for (let ox = 0; ox < outWidth; ox++) {
        const colStart = ox * info.strideWidth - info.padInfo.left;
        bestValue.fill(Number.NEGATIVE_INFINITY);
        bestIndex.fill(-1);
        for (let kh = 0; kh < info.filterHeight; kh++) {
          const row = rowStart + kh * info.dilationHeight;
          if (row < 0 || row >= inHeight) continue;
          for (let kw = 0; kw < info.filterWidth; kw++) {
            const col = colStart + kw * info.dilationWidth;
            if (col < 0 || col >= inWidth) continue;
            const base = ((n * inHeight + row) * inWidth + col) * channels;
            for (let c = 0; c < channels; c++) {
              const value = x[base + c] as number;
              if (value > (bestValue[c] as number)) {
                bestValue[c] = value;
                bestIndex[c] = base + c;
              }
            }
          }
        }
        const dyBase = ((n * outHeight + oy) * outWidth + ox) * channels;
        for (let c = 0; c < channels; c++) {
          const target = bestIndex[c] as number;
          if (target >= 0) dx[target] = (dx[target] as number) + (gradient[dyBase + c] as number);
        }
      }
    }
  }
  return out;
}

export const maxPoolGradConfig: KernelConfig = {
  kernelName: MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: maxPoolGrad as unknown as KernelFunc,
};
