import { createHash } from 'node:crypto';

import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Dtype, ModelArtifact, type ModelMetadata, type WeightSpec } from '@noisystudent/proto';

/** Lower-case hex sha256 of `bytes`: the name of an artifact in the registry. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface EncodedArtifact {
  bytes: Uint8Array;
  sha256: string;
}

export interface DecodedArtifact {
  metadata: ModelMetadata;
  model: tfl.LayersModel;
  sha256: string;
}

/**
 * One blob holding everything needed to serve or continue a model: the `ModelArtifact`
 * protobuf (metadata, tfjs topology, weight specs, weight bytes). The topology and weights go
 * through tfjs' own IO, so custom layers (StochasticDepth, NoiseDropout) load like built-ins.
 * `metadata.createdAt` is taken as given: the same model and metadata give the same bytes.
 */
export async function encodeModelArtifact(model: tfl.LayersModel, metadata: ModelMetadata): Promise<EncodedArtifact> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON' } };
    }),
  );
  if (saved === undefined || saved.modelTopology === undefined) throw new Error('model: tfjs saved no topology');
  const specs = saved.weightSpecs ?? [];
  const weightData = saved.weightData === undefined ? new Uint8Array(0) : concatWeightData(saved.weightData);
  let offset = 0;
  const weightSpecs: WeightSpec[] = specs.map((spec) => {
    const dtype = spec.dtype === 'float32' ? Dtype.FLOAT32 : spec.dtype === 'int32' ? Dtype.INT32 : undefined;
    if (dtype === undefined)
      throw new Error(`weight ${spec.name}: dtype ${spec.dtype} is not supported (float32 or int32)`);
    const byteLength = spec.shape.reduce((product, dim) => product * dim, 1) * 4;
    const entry = { name: spec.name, shape: spec.shape, dtype, byteOffset: offset, byteLength };
    offset += byteLength;
    return entry;
  });
  if (offset !== weightData.byteLength)
    throw new Error(`weights: specs cover ${offset} bytes, tfjs saved ${weightData.byteLength}`);
  const bytes = ModelArtifact.encode({
    metadata,
    modelTopologyJson: JSON.stringify(saved.modelTopology),
    weightSpecs,
    weightData: Buffer.from(weightData.buffer, weightData.byteOffset, weightData.byteLength),
  }).finish();
  return { bytes, sha256: sha256Hex(bytes) };
}

/**
 * Loads an artifact, verifying its sha256 first when `expectedSha256` is given. A corrupt blob
 * is refused with an error saying what is wrong; nothing half-loaded is returned.
 */
export async function decodeModelArtifact(bytes: Uint8Array, expectedSha256?: string): Promise<DecodedArtifact> {
  const sha256 = sha256Hex(bytes);
  if (expectedSha256 !== undefined && sha256 !== expectedSha256.toLowerCase()) {
    throw new Error(
      `artifact: sha256 ${sha256} does not match the expected ${expectedSha256}: corrupt or a different model`,
    );
  }
  let artifact: ModelArtifact;
  try {
    artifact = ModelArtifact.decode(bytes);
  } catch (error) {
    throw new Error(
      `artifact: not a ModelArtifact protobuf (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  if (artifact.metadata === undefined) throw new Error('artifact.metadata: missing');
  if (artifact.modelTopologyJson === '') throw new Error('artifact.modelTopologyJson: missing');
  let modelTopology: object;
  try {
    modelTopology = JSON.parse(artifact.modelTopologyJson) as object;
  } catch {
    throw new Error('artifact.modelTopologyJson: not valid JSON');
  }
  const weightData = artifact.weightData;
  let expectedOffset = 0;
  const weightSpecs: tf.io.WeightsManifestEntry[] = artifact.weightSpecs.map((spec, index) => {
    const dtype = spec.dtype === Dtype.FLOAT32 ? 'float32' : spec.dtype === Dtype.INT32 ? 'int32' : undefined;
    if (dtype === undefined)
      throw new Error(`artifact.weightSpecs[${index}] (${spec.name}): unsupported dtype ${spec.dtype}`);
    const byteLength = spec.shape.reduce((product, dim) => product * dim, 1) * 4;
    if (spec.byteLength !== byteLength || spec.byteOffset !== expectedOffset) {
      throw new Error(
        `artifact.weightSpecs[${index}] (${spec.name}): expected ${byteLength} bytes at offset ${expectedOffset}, got ${spec.byteLength} at ${spec.byteOffset}`,
      );
    }
    if (spec.byteOffset + spec.byteLength > weightData.byteLength) {
      throw new Error(
        `artifact.weightSpecs[${index}] (${spec.name}): runs past the ${weightData.byteLength} weight bytes`,
      );
    }
    expectedOffset += byteLength;
    return { name: spec.name, shape: spec.shape, dtype };
  });
  if (expectedOffset !== weightData.byteLength) {
    throw new Error(`artifact.weightData: ${weightData.byteLength} bytes, the specs describe ${expectedOffset}`);
  }
  const buffer = weightData.buffer.slice(
    weightData.byteOffset,
    weightData.byteOffset + weightData.byteLength,
  ) as ArrayBuffer;
  const model = await tfl.loadLayersModel(tf.io.fromMemory({ modelTopology, weightSpecs, weightData: buffer }));
  return { metadata: artifact.metadata, model, sha256 };
}

function concatWeightData(data: tf.io.WeightData): Uint8Array {
  if (!Array.isArray(data)) return new Uint8Array(data as ArrayBuffer);
  const total = data.reduce((sum, part) => sum + part.byteLength, 0);
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const part of data) {
    joined.set(new Uint8Array(part), offset);
    offset += part.byteLength;
  }
  return joined;
}
