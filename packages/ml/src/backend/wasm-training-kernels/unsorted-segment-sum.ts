import {
  UnsortedSegmentSum,
  util,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
  type UnsortedSegmentSumAttrs,
  type UnsortedSegmentSumInputs,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

import { KernelScope } from './kernel-scope.js';

/**
 * out[s, …] = Σ_{i : segmentIds[i] = s} x[i, …], through wasm's ScatterNd, which adds
 * duplicate indices. Ids outside [0, numSegments) are dropped, as TensorFlow drops negative
 * ones; ScatterNd itself does no bounds check, so they never reach it.
 */
function unsortedSegmentSum(args: {
  inputs: UnsortedSegmentSumInputs;
  backend: BackendWasm;
  attrs: UnsortedSegmentSumAttrs;
}): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x as TensorInfo;
  const segmentIds = inputs.segmentIds as TensorInfo;
  const { numSegments } = attrs;
  const idCount = util.sizeFromShape(segmentIds.shape);
  const sliceShape = x.shape.slice(segmentIds.shape.length);
  const sliceSize = util.sizeFromShape(sliceShape);
  const scope = new KernelScope(backend);
  const ids = backend.readSync(segmentIds.dataId) as Int32Array;
  const kept: number[] = [];
  for (let i = 0; i < idCount; i++) {
    const id = ids[i] ?? -1;
    if (id >= 0 && id < numSegments) kept.push(i);
  }
  let rows = scope.reshape(x, [idCount, sliceSize]);
  let indices = scope.reshape(segmentIds, [idCount, 1]);
  if (kept.length < idCount) {
    const keptPositions = scope.constant([kept.length], 'int32', kept);
    rows = scope.run('GatherV2', { x: rows, indices: keptPositions }, { axis: 0, batchDims: 0 });
    indices = scope.constant(
      [kept.length, 1],
      'int32',
      kept.map((position) => ids[position] ?? 0),
    );
  }
  const summed = scope.run('ScatterNd', { indices, updates: rows }, { shape: [numSegments, sliceSize] });
  return scope.finish(scope.reshape(summed, [numSegments, ...sliceShape]));
}

export const unsortedSegmentSumConfig: KernelConfig = {
  kernelName: UnsortedSegmentSum,
  backendName: 'wasm',
  kernelFunc: unsortedSegmentSum as unknown as KernelFunc,
};
