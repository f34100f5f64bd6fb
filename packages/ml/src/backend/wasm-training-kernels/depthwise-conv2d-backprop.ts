import {
  backend_util,
  DepthwiseConv2dNativeBackpropFilter,
  DepthwiseConv2dNativeBackpropInput,
  type DepthwiseConv2dNativeBackpropFilterAttrs,
  type DepthwiseConv2dNativeBackpropFilterInputs,
  type DepthwiseConv2dNativeBackpropInputAttrs,
  type DepthwiseConv2dNativeBackpropInputInputs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

import { dilateSpatially } from './conv2d-backprop.js';
import { KernelScope } from './kernel-scope.js';

type Shape4 = [number, number, number, number];

/**
 * dW[kh,kw,c,m] = Σ_{n,oy,ox} xPadded[n, oy·s + kh·d, ox·s + kw·d, c] · dy[n,oy,ox,c·M + m]:
 * one strided view of the input per filter tap, multiplied by dy and reduced over n, oy, ox.
 */
function depthwiseBackpropFilter(args: {
  inputs: DepthwiseConv2dNativeBackpropFilterInputs;
  backend: BackendWasm;
  attrs: DepthwiseConv2dNativeBackpropFilterAttrs;
}): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x as TensorInfo;
  const dy = inputs.dy as TensorInfo;
  const { strides, dilations, pad, dimRoundingMode, filterShape } = attrs;
  const info = backend_util.computeConv2DInfo(
    x.shape as Shape4,
    filterShape,
    strides,
    dilations,
    pad,
    dimRoundingMode,
    true,
  );
  const [filterHeight, filterWidth, inChannels, multiplier] = filterShape;
  const { top, bottom, left, right } = info.padInfo;
  const scope = new KernelScope(backend);
  const xPadded = scope.pad(x, [
    [0, 0],
    [top, Math.max(bottom, 0)],
    [left, Math.max(right, 0)],
    [0, 0],
  ]);
  const batch = info.batchSize;
  const dyPerMultiplier = scope.reshape(dy, [batch, info.outHeight, info.outWidth, inChannels, multiplier]);
  const taps: TensorInfo[] = [];
  for (let kh = 0; kh < filterHeight; kh++) {
    for (let kw = 0; kw < filterWidth; kw++) {
      const rowStart = kh * info.dilationHeight;
      const colStart = kw * info.dilationWidth;
      const window = scope.run(
        'StridedSlice',
        { x: xPadded },
        {
          begin: [0, rowStart, colStart, 0],
          end: [
            batch,
            rowStart + (info.outHeight - 1) * info.strideHeight + 1,
            colStart + (info.outWidth - 1) * info.strideWidth + 1,
            inChannels,
          ],
          strides: [1, info.strideHeight, info.strideWidth, 1],
          beginMask: 0,
          endMask: 0,
          ellipsisMask: 0,
          newAxisMask: 0,
          shrinkAxisMask: 0,
        },
      );
      const products = scope.run('Multiply', {
        a: scope.reshape(window, [batch, info.outHeight, info.outWidth, inChannels, 1]),
        b: dyPerMultiplier,
      });
      const tap = scope.run('Sum', { x: products }, { axis: [0, 1, 2], keepDims: false });
      taps.push(scope.reshape(tap, [1, inChannels, multiplier]));
    }
  }
  const stacked = taps.length === 1 ? (taps[0] as TensorInfo) : scope.run('Concat', taps, { axis: 0 });
  return scope.finish(scope.reshape(stacked, [filterHeight, filterWidth, inChannels, multiplier]));
}

/**
 * dx is the full depthwise convolution of dy (zeros inserted for a stride > 1) with the
 * filter rotated by 180°, one output channel per (c, m) pair, then summed over m.
 */
function depthwiseBackpropInput(args: {
  inputs: DepthwiseConv2dNativeBackpropInputInputs;
  backend: BackendWasm;
  attrs: DepthwiseConv2dNativeBackpropInputAttrs;
}): TensorInfo {
  const { inputs, backend, attrs } = args;
  const dy = inputs.dy as TensorInfo;
  const filter = inputs.filter as TensorInfo;
  const { strides, dilations, pad, dimRoundingMode, inputShape } = attrs;
  const filterShape = filter.shape as Shape4;
  const info = backend_util.computeConv2DInfo(inputShape, filterShape, strides, dilations, pad, dimRoundingMode, true);
  const [filterHeight, filterWidth, inChannels, multiplier] = filterShape;
  const scope = new KernelScope(backend);
  const rotated = scope.reshape(scope.run('Reverse', { x: filter }, { dims: [0, 1] }), [
    filterHeight,
    filterWidth,
    inChannels * multiplier,
    1,
  ]);
  const dilated = dilateSpatially(scope, dy, info.strideHeight, info.strideWidth);
  const [batch, dilatedHeight, dilatedWidth] = dilated.shape as Shape4;
  const top = info.effectiveFilterHeight - 1 - info.padInfo.top;
  const left = info.effectiveFilterWidth - 1 - info.padInfo.left;
  const bottom = info.inHeight + info.effectiveFilterHeight - 1 - dilatedHeight - top;
  const right = info.inWidth + info.effectiveFilterWidth - 1 - dilatedWidth - left;
  // Explicit padding for the wasm depthwise kernel goes through PadV2; bands that reach no input pixel are cut.
  const cutTop = Math.max(-top, 0);
  const cutLeft = Math.max(-left, 0);
  const cropped = scope.slice(
    dilated,
    [0, cutTop, cutLeft, 0],
    [
      batch,
      dilatedHeight - cutTop + Math.min(bottom, 0),
      dilatedWidth - cutLeft + Math.min(right, 0),
      inChannels * multiplier,
    ],
  );
  const padded = scope.pad(cropped, [
    [0, 0],
    [Math.max(top, 0), Math.max(bottom, 0)],
    [Math.max(left, 0), Math.max(right, 0)],
    [0, 0],
  ]);
  const perPair = scope.run(
    'DepthwiseConv2dNative',
    { x: padded, filter: rotated },
    { strides: [1, 1], pad: 'valid', dilations: [info.dilationHeight, info.dilationWidth] },
  );
  if (multiplier === 1) return scope.finish(perPair);
  const [, height, width] = perPair.shape as Shape4;
  const split = scope.reshape(perPair, [batch, height, width, inChannels, multiplier]);
  return scope.finish(scope.run('Sum', { x: split }, { axis: [4], keepDims: false }));
}

export const depthwiseBackpropFilterConfig: KernelConfig = {
  kernelName: DepthwiseConv2dNativeBackpropFilter,
  backendName: 'wasm',
  kernelFunc: depthwiseBackpropFilter as unknown as KernelFunc,
};

export const depthwiseBackpropInputConfig: KernelConfig = {
  kernelName: DepthwiseConv2dNativeBackpropInput,
  backendName: 'wasm',
  kernelFunc: depthwiseBackpropInput as unknown as KernelFunc,
};
