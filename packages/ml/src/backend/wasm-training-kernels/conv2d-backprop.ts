import {
  backend_util,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropFilterInputs,
  type Conv2DBackpropInputAttrs,
  type Conv2DBackpropInputInputs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

import { KernelScope } from './kernel-scope.js';

type Shape4 = [number, number, number, number];

/**
 * dW[kh,kw,ci,co] = Σ_{n,oy,ox} xPadded[n, oy·s+kh, ox·s+kw, ci] · dy[n,oy,ox,co].
 * That sum is itself a convolution once the batch becomes the channel axis: input
 * xPaddedᵀ [ci, h, w, n], filter dyᵀ [oy, ox, n, co], dilation = the forward stride.
 * So the whole gradient runs in wasm's XNNPACK convolution instead of a scalar loop.
 */
function conv2dBackpropFilter(args: {
  inputs: Conv2DBackpropFilterInputs;
  backend: BackendWasm;
  attrs: Conv2DBackpropFilterAttrs;
}): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x as TensorInfo;
  const dy = inputs.dy as TensorInfo;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs;
  requireChannelsLast('Conv2DBackpropFilter', dataFormat);
  const info = backend_util.computeConv2DInfo(
    x.shape as Shape4,
    filterShape as Shape4,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  const scope = new KernelScope(backend);
  const { top, bottom, left, right } = info.padInfo;
  const xPadded = scope.pad(x, [
    [0, 0],
    [top, Math.max(bottom, 0)],
    [left, Math.max(right, 0)],
    [0, 0],
  ]);
  const xChannelsAsBatch = scope.transpose(xPadded, [3, 1, 2, 0]);
  const dyAsFilter = scope.transpose(dy, [1, 2, 0, 3]);
  const gradient = scope.run(
    'Conv2D',
    { x: xChannelsAsBatch, filter: dyAsFilter },
    { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [info.strideHeight, info.strideWidth] },
  );
  // Padding that no window reaches makes the result larger than the filter: cut it off.
  const [inChannels, , , outChannels] = gradient.shape as Shape4;
  const cropped = scope.slice(gradient, [0, 0, 0, 0], [inChannels, info.filterHeight, info.filterWidth, outChannels]);
  return scope.finish(scope.transpose(cropped, [1, 2, 0, 3]));
}

/**
 * dx is the "full" convolution of dy (zeros inserted between rows and columns for a
 * stride > 1) with the filter rotated by 180° and its channel axes swapped.
 * Runs in XNNPACK like the forward pass; wasm's own kernel is a scalar loop.
 */
function conv2dBackpropInput(args: {
  inputs: Conv2DBackpropInputInputs;
  backend: BackendWasm;
  attrs: Conv2DBackpropInputAttrs;
}): TensorInfo {
  const { inputs, backend, attrs } = args;
  const dy = inputs.dy as TensorInfo;
  const filter = inputs.filter as TensorInfo;
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs;
  requireChannelsLast('Conv2DBackpropInput', dataFormat);
  const info = backend_util.computeConv2DInfo(
    inputShape as Shape4,
    filter.shape as Shape4,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  const scope = new KernelScope(backend);
  const rotated = scope.transpose(scope.run('Reverse', { x: filter }, { dims: [0, 1] }), [0, 1, 3, 2]);
  const dilated = dilateSpatially(scope, dy, info.strideHeight, info.strideWidth);
  const full = fullPadding(dilated.shape as Shape4, info);
  const gradient = scope.run(
    'Conv2D',
    { x: full.input, filter: rotated },
    { strides: [1, 1], pad: full.pad, dataFormat: 'NHWC', dilations: [1, 1] },
  );
  return scope.finish(gradient);

  function fullPadding(shape: Shape4, conv: backend_util.Conv2DInfo) {
    const top = conv.filterHeight - 1 - conv.padInfo.top;
    const left = conv.filterWidth - 1 - conv.padInfo.left;
    const bottom = conv.inHeight + conv.filterHeight - 1 - shape[1] - top;
    const right = conv.inWidth + conv.filterWidth - 1 - shape[2] - left;
    // A negative pad is a band of dy (or of inserted zeros) that reaches no input pixel: cut it.
    const cutTop = Math.max(-top, 0);
    const cutLeft = Math.max(-left, 0);
    const input = scope.slice(
      dilated,
      [0, cutTop, cutLeft, 0],
      [shape[0], shape[1] - cutTop + Math.min(bottom, 0), shape[2] - cutLeft + Math.min(right, 0), shape[3]],
    );
    const explicit: backend_util.ExplicitPadding = [
      [0, 0],
      [Math.max(top, 0), Math.max(bottom, 0)],
      [Math.max(left, 0), Math.max(right, 0)],
      [0, 0],
    ];
    return { input, pad: explicit };
  }
}

/** [n, h, w, c] → [n, h·sh, w·sw, c] with each value at (y·sh, x·sw) and zeros between. */
export function dilateSpatially(
  scope: KernelScope,
  x: TensorInfo,
  strideHeight: number,
  strideWidth: number,
): TensorInfo {
  if (strideHeight === 1 && strideWidth === 1) return x;
  const [batch, height, width, channels] = x.shape as Shape4;
  const spread = scope.pad(scope.reshape(x, [batch, height, 1, width, 1, channels]), [
    [0, 0],
    [0, 0],
    [0, strideHeight - 1],
    [0, 0],
    [0, strideWidth - 1],
    [0, 0],
  ]);
  return scope.reshape(spread, [batch, height * strideHeight, width * strideWidth, channels]);
}

export function requireChannelsLast(kernelName: string, dataFormat: string | undefined): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') {
    throw new Error(`${kernelName} (wasm): dataFormat expected NHWC, got ${dataFormat}`);
  }
}

export const conv2dBackpropFilterConfig: KernelConfig = {
  kernelName: Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2dBackpropFilter as unknown as KernelFunc,
};

export const conv2dBackpropInputConfig: KernelConfig = {
  kernelName: Conv2DBackpropInput,
  backendName: 'wasm',
  kernelFunc: conv2dBackpropInput as unknown as KernelFunc,
};
