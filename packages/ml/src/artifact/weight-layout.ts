import type * as tf from '@tensorflow/tfjs-core';
import { Dtype, type WeightSpec } from '@noisystudent/proto';

import { ModelArtifactError } from './artifact-error.js';

/** Both weight dtypes tfjs stores take 4 bytes per element, little-endian. */
const BYTES_PER_ELEMENT = 4;

/** The dtypes an artifact can hold: what tfjs-layers keeps weights in. */
export type ArtifactWeightDtype = 'float32' | 'int32';

/** A tfjs weight manifest entry of a dtype an artifact can hold. */
export type ArtifactWeightEntry = tf.io.WeightsManifestEntry & { dtype: ArtifactWeightDtype };

function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, size) => product * size, 1);
}

/**
 * tfjs' weight manifest (in weight-data order, as `model.save` hands it over) as `WeightSpec`s with
 * their byte offsets. `weightByteLength` is the length of the weight data tfjs saved alongside; the
 * specs must cover it exactly.
 */
export function toWeightSpecs(entries: readonly tf.io.WeightsManifestEntry[], weightByteLength: number): WeightSpec[] {
  let byteOffset = 0;
  const specs = entries.map((entry) => {
    const field = `model weight ${entry.name}`;
    if (entry.quantization !== undefined) {
      throw new ModelArtifactError('unsupported-dtype', field, 'expected unquantized weights, got quantized ones');
    }
    const dtype = entry.dtype === 'float32' ? Dtype.FLOAT32 : entry.dtype === 'int32' ? Dtype.INT32 : undefined;
    if (dtype === undefined) {
      throw new ModelArtifactError('unsupported-dtype', field, `expected dtype float32 or int32, got ${entry.dtype}`);
    }
    const byteLength = elementCount(entry.shape) * BYTES_PER_ELEMENT;
    const spec: WeightSpec = { name: entry.name, shape: [...entry.shape], dtype, byteOffset, byteLength };
    byteOffset += byteLength;
    return spec;
  });
  if (byteOffset !== weightByteLength) {
    throw new ModelArtifactError(
      'weight-layout',
      'model weights',
      `the weight manifest describes ${byteOffset} bytes, tfjs saved ${weightByteLength}`,
    );
  }
  return specs;
}

/**
 * `WeightSpec`s back to tfjs' weight manifest, checking the invariants of `ModelArtifact`: every
 * weight float32 or int32, `byteLength` = product(shape) × 4, each weight right after the previous
 * one, the last ending at `weightByteLength`, names unique. The first violation is an error naming
 * the weight.
 */
export function fromWeightSpecs(specs: readonly WeightSpec[], weightByteLength: number): ArtifactWeightEntry[] {
  const names = new Set<string>();
  let expectedOffset = 0;
  const entries = specs.map((spec, index): ArtifactWeightEntry => {
    const field = `weightSpecs[${index}] (${spec.name})`;
    if (spec.name === '') throw new ModelArtifactError('weight-layout', field, 'expected a weight name, got ""');
    if (names.has(spec.name)) {
      throw new ModelArtifactError('weight-layout', field, 'expected a unique weight name, got a duplicate');
    }
    names.add(spec.name);
    const dtype = spec.dtype === Dtype.FLOAT32 ? 'float32' : spec.dtype === Dtype.INT32 ? 'int32' : undefined;
    if (dtype === undefined) {
      throw new ModelArtifactError(
        'unsupported-dtype',
        field,
        `expected dtype DTYPE_FLOAT32 or DTYPE_INT32, got ${spec.dtype} (${dtypeName(spec.dtype)})`,
      );
    }
    const byteLength = elementCount(spec.shape) * BYTES_PER_ELEMENT;
    if (spec.byteLength !== byteLength) {
      throw new ModelArtifactError(
        'weight-layout',
        field,
        `expected byteLength ${byteLength} (shape [${spec.shape.join(', ')}] × 4 bytes), got ${spec.byteLength}`,
      );
    }
    if (spec.byteOffset !== expectedOffset) {
      throw new ModelArtifactError(
        'weight-layout',
        field,
        `expected byteOffset ${expectedOffset} (right after the previous weight), got ${spec.byteOffset}`,
      );
    }
    if (spec.byteOffset + spec.byteLength > weightByteLength) {
      throw new ModelArtifactError(
        'weight-layout',
        field,
        `expected bytes ${spec.byteOffset}–${spec.byteOffset + spec.byteLength} in weightData, which holds only ${weightByteLength}`,
      );
    }
    expectedOffset += byteLength;
    return { name: spec.name, shape: [...spec.shape], dtype };
  });
  if (expectedOffset !== weightByteLength) {
    const last = specs[specs.length - 1];
    throw new ModelArtifactError(
      'weight-layout',
      'weightData',
      `expected ${expectedOffset} bytes (the end of ${last === undefined ? 'no weight spec' : `the last weight, ${last.name}`}), got ${weightByteLength}`,
    );
  }
  return entries;
}

function dtypeName(dtype: Dtype): string {
  return Dtype[dtype] ?? 'unknown';
}
