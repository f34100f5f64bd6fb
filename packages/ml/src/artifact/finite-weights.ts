import type * as tf from '@tensorflow/tfjs-core';

import { ModelArtifactError } from './artifact-error.js';

/**
 * Refuses weights holding NaN or ±Infinity, naming the first such weight and element. A bit flip
 * in a stored blob often lands in an exponent; a model trained into divergence does too. Only
 * float32 weights are scanned (int32 has no such values). `entries` must describe `weightData`
 * contiguously from offset 0 (`fromWeightSpecs` checks that).
 */
export function assertFiniteWeights(entries: readonly tf.io.WeightsManifestEntry[], weightData: ArrayBuffer): void {
  let byteOffset = 0;
  entries.forEach((entry, index) => {
    const length = entry.shape.reduce((product, size) => product * size, 1);
    if (entry.dtype === 'float32') {
      const values = new Float32Array(weightData, byteOffset, length);
      for (let i = 0; i < length; i++) {
        const value = values[i] ?? 0;
        if (!Number.isFinite(value)) {
          throw new ModelArtifactError(
            'non-finite-weight',
            `weightSpecs[${index}] (${entry.name})`,
            `expected finite float32 values, got ${value} at element ${i}`,
          );
        }
      }
    }
    byteOffset += length * 4;
  });
}
