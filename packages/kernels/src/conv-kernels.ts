import {
  backend_util,
  Conv2D,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  FusedConv2D,
  type Conv2DAttrs,
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropInputAttrs,
  type FusedConv2DAttrs,
  type KernelConfig,
  type TensorInfo,
} from '@tensorflow/tfjs-core';

import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

import type { NativeAddon } from './addon.js';
import { heapOf, nativeWithFallback, offsetOf } from './heap.js';

type Shape4 = [number, number, number, number];

const ACTIVATIONS: Record<string, number> = { linear: 0, relu: 1 };

function isNhwc(dataFormat: string | undefined): boolean {
  return dataFormat === undefined || dataFormat === 'NHWC' || dataFormat === 'channelsLast';
}

function convDims(info: backend_util.Conv2DInfo): Int32Array {
  return Int32Array.from([
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.filterHeight,
    info.filterWidth,
    info.outChannels,
    info.outHeight,
    info.outWidth,
    info.strideHeight,
    info.strideWidth,
    info.dilationHeight,
    info.dilationWidth,
    info.padInfo.top,
    info.padInfo.left,
  ]);
}

function allFloat32(...tensors: Array<TensorInfo | undefined>): boolean {
  return tensors.every((tensor) => tensor === undefined || tensor.dtype === 'float32');
}

/** Conv2D, FusedConv2D (bias + linear/relu fused), and both convolution gradients, for wasm. */
export function convKernels(addon: NativeAddon): KernelConfig[] {
  const forward = (
    inputs: { x?: TensorInfo; filter?: TensorInfo; bias?: TensorInfo; preluActivationWeights?: TensorInfo },
    backend: BackendWasm,
    attrs: Conv2DAttrs & Partial<Pick<FusedConv2DAttrs, 'activation'>>,
  ): TensorInfo | undefined => {
    const { x, filter, bias, preluActivationWeights } = inputs;
    const activation = ACTIVATIONS[attrs.activation ?? 'linear'];
    if (x === undefined || filter === undefined || preluActivationWeights !== undefined || activation === undefined) {
      return undefined;
    }
    if (!isNhwc(attrs.dataFormat) || !allFloat32(x, filter, bias)) return undefined;
    const info = backend_util.computeConv2DInfo(
      x.shape as Shape4,
      filter.shape as Shape4,
      attrs.strides,
      attrs.dilations,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    if (bias !== undefined && bias.shape.reduce((a, b) => a * b, 1) !== info.outChannels) return undefined;
    const out = backend.makeOutput(info.outShape, 'float32');
    addon.conv2dForward(
      heapOf(backend),
      convDims(info),
      offsetOf(backend, x),
      offsetOf(backend, filter),
      bias === undefined ? -1 : offsetOf(backend, bias),
      offsetOf(backend, out),
      activation,
    );
    return out;
  };
  return [
    nativeWithFallback<{ x: TensorInfo; filter: TensorInfo }, Conv2DAttrs>(Conv2D, ({ inputs, backend, attrs }) =>
      forward(inputs, backend, attrs),
    ),
    nativeWithFallback<{ x: TensorInfo; filter: TensorInfo; bias?: TensorInfo }, FusedConv2DAttrs>(
      FusedConv2D,
      ({ inputs, backend, attrs }) => forward(inputs, backend, attrs),
    ),
    nativeWithFallback<{ dy: TensorInfo; filter: TensorInfo }, Conv2DBackpropInputAttrs>(
      Conv2DBackpropInput,
      ({ inputs, backend, attrs }) => {
        const { dy, filter } = inputs;
        if (!isNhwc(attrs.dataFormat) || !allFloat32(dy, filter)) return undefined;
        const info = backend_util.computeConv2DInfo(
          attrs.inputShape,
          filter.shape as Shape4,
          attrs.strides,
          1,
          attrs.pad,
          attrs.dimRoundingMode,
        );
        const dx = backend.makeOutput(attrs.inputShape, 'float32');
        addon.conv2dBackpropInput(
          heapOf(backend),
          convDims(info),
          offsetOf(backend, dy),
          offsetOf(backend, filter),
          offsetOf(backend, dx),
        );
        return dx;
      },
    ),
    nativeWithFallback<{ x: TensorInfo; dy: TensorInfo }, Conv2DBackpropFilterAttrs>(
      Conv2DBackpropFilter,
      ({ inputs, backend, attrs }) => {
        const { x, dy } = inputs;
        if (!isNhwc(attrs.dataFormat) || !allFloat32(x, dy)) return undefined;
        const info = backend_util.computeConv2DInfo(
          x.shape as Shape4,
          attrs.filterShape,
          attrs.strides,
          1,
          attrs.pad,
          attrs.dimRoundingMode,
        );
        const dw = backend.makeOutput(attrs.filterShape, 'float32');
        addon.conv2dBackpropFilter(
          heapOf(backend),
          convDims(info),
          offsetOf(backend, x),
          offsetOf(backend, dy),
          offsetOf(backend, dw),
        );
        return dw;
      },
    ),
  ];
}
