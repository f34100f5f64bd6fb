import { BatchMatMul, _FusedMatMul, util, type KernelConfig, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

import type { NativeAddon } from './addon.js';
import { heapOf, nativeWithFallback, offsetOf } from './heap.js';

const ACTIVATIONS: Record<string, number> = { linear: 0, relu: 1 };

interface MatMulInputs {
  a: TensorInfo;
  b: TensorInfo;
  bias?: TensorInfo;
  preluActivationWeights?: TensorInfo;
}

interface MatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
  activation?: string;
}

/**
 * op(a) · op(b) for rank ≥ 2 tensors whose batch dimensions match or one side has a batch of 1,
 * with an optional bias (of n values or one) and linear/relu activation fused.
 */
function matmul(
  addon: NativeAddon,
  { inputs, backend, attrs }: { inputs: MatMulInputs; backend: BackendWasm; attrs: MatMulAttrs },
) {
  const { a, b, bias, preluActivationWeights } = inputs;
  const activation = ACTIVATIONS[attrs.activation ?? 'linear'];
  if (activation === undefined || preluActivationWeights !== undefined) return undefined;
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || (bias !== undefined && bias.dtype !== 'float32'))
    return undefined;
  if (a.shape.length < 2 || b.shape.length < 2) return undefined;
  const m = (attrs.transposeA ? a.shape[a.shape.length - 1] : a.shape[a.shape.length - 2]) ?? 0;
  const k = (attrs.transposeA ? a.shape[a.shape.length - 2] : a.shape[a.shape.length - 1]) ?? 0;
  const kB = (attrs.transposeB ? b.shape[b.shape.length - 1] : b.shape[b.shape.length - 2]) ?? 0;
  const n = (attrs.transposeB ? b.shape[b.shape.length - 2] : b.shape[b.shape.length - 1]) ?? 0;
  if (k !== kB || m === 0 || n === 0 || k === 0) return undefined;
  const aBatchShape = a.shape.slice(0, -2);
  const bBatchShape = b.shape.slice(0, -2);
  const aBatch = util.sizeFromShape(aBatchShape);
  const bBatch = util.sizeFromShape(bBatchShape);
  const batchShape = aBatch >= bBatch ? aBatchShape : bBatchShape;
  const batch = Math.max(aBatch, bBatch);
  const sameBatch = util.arraysEqual(aBatchShape, bBatchShape);
  if (!sameBatch && aBatch !== 1 && bBatch !== 1) return undefined;
  const biasSize = bias === undefined ? 0 : util.sizeFromShape(bias.shape);
  if (bias !== undefined && biasSize !== n && biasSize !== 1) return undefined;
  const out = backend.makeOutput([...batchShape, m, n], 'float32');
  addon.batchMatMul(
    heapOf(backend),
    offsetOf(backend, a),
    offsetOf(backend, b),
    offsetOf(backend, out),
    batch,
    aBatch,
    bBatch,
    m,
    n,
    k,
    attrs.transposeA,
    attrs.transposeB,
    bias === undefined ? -1 : offsetOf(backend, bias),
    biasSize,
    activation,
  );
  return out;
}

export function matmulKernels(addon: NativeAddon): KernelConfig[] {
  return [
    nativeWithFallback<MatMulInputs, MatMulAttrs>(BatchMatMul, (args) => matmul(addon, args)),
    nativeWithFallback<MatMulInputs, MatMulAttrs>(_FusedMatMul, (args) => matmul(addon, args)),
  ];
}
