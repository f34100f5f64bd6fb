import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { isSha256Hex, sha256Hex } from '@noisystudent/core';
import { ModelArtifact, type ModelMetadata } from '@noisystudent/proto';

import { ModelArtifactError } from './artifact-error.js';
import { assertFiniteWeights } from './finite-weights.js';
import type { ImageDataDescription } from '../preprocess/training-input.js';
import { checkModelMetadata, completeModelMetadata, type ModelMetadataInput } from './model-metadata.js';
import { fromWeightSpecs, toWeightSpecs } from './weight-layout.js';

/** An encoded `ModelArtifact` and the sha256 (lower-case hex) of exactly these bytes, which names it. */
export interface EncodedArtifact {
  bytes: Uint8Array;
  sha256: string;
}

/**
 * One blob holding everything needed to serve or continue a model (docs/architecture.md §3): the
 * `ModelArtifact` protobuf with the metadata, the tfjs topology JSON, the weight specs and the
 * weight bytes. Topology and weights come from tfjs' own IO (`model.save`), every weight included
 * (batch-norm moving statistics too), so custom layers registered with `serialization.registerClass`
 * (StochasticDepth, NoiseDropout) load like built-ins. Deterministic: the same model and metadata
 * give the same bytes; nothing depends on the clock. The optimizer state is not stored.
 * `trainedOn` describes the training images (a `LabeledImages` will do): the input shape,
 * preprocessing and class names recorded come from it.
 */
export async function encodeModelArtifact(
  model: tfl.LayersModel,
  metadata: ModelMetadataInput,
  trainedOn: ImageDataDescription,
): Promise<EncodedArtifact> {
  const completeMetadata = completeModelMetadata(metadata, trainedOn, model);
  const saved = await saveThroughTfjs(model);
  const modelTopology = saved.modelTopology;
  if (modelTopology === undefined || modelTopology instanceof ArrayBuffer) {
    throw new ModelArtifactError('missing-field', 'model', 'expected tfjs to save a JSON topology, got none');
  }
  const weightData = new Uint8Array(
    saved.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(saved.weightData),
  );
  const weightSpecs = toWeightSpecs(saved.weightSpecs ?? [], weightData.byteLength);
  const bytes = ModelArtifact.encode({
    metadata: completeMetadata,
    modelTopologyJson: JSON.stringify(modelTopology),
    weightSpecs,
    weightData: Buffer.from(weightData.buffer, weightData.byteOffset, weightData.byteLength),
  }).finish();
  return { bytes, sha256: sha256Hex(bytes) };
}

export interface DecodeModelArtifactOptions {
  /**
   * Refuse float32 weights that are NaN or ±Infinity: one pass over the weight bytes, made before
   * any tensor is created. @default true
   */
  checkFinite?: boolean;
}

/** A loaded artifact. The caller owns `model` and frees it with `model.dispose()`. */
export interface DecodedArtifact {
  metadata: ModelMetadata;
  model: tfl.LayersModel;
  /** sha256 (lower-case hex) of the bytes decoded. */
  sha256: string;
}

/**
 * Loads a blob written by `encodeModelArtifact`. With `expectedSha256` the hash is checked before
 * anything else. A corrupt or inconsistent blob is refused with a `ModelArtifactError` naming the
 * field at fault (protobuf that does not decode, missing metadata or topology, weight specs that
 * do not tile the weight bytes, an unsupported dtype, non-finite weights, metadata that does not
 * describe the model); nothing half-loaded is returned. The model is built by tfjs-layers from its
 * topology, so custom layers load once their class is registered (import the module defining
 * them, e.g. models/stochastic-depth.ts, before decoding).
 */
export async function decodeModelArtifact(
  bytes: Uint8Array,
  expectedSha256?: string,
  options: DecodeModelArtifactOptions = {},
): Promise<DecodedArtifact> {
  if (expectedSha256 !== undefined && !isSha256Hex(expectedSha256)) {
    throw new Error(`expectedSha256: expected 64 hex digits, got ${JSON.stringify(expectedSha256)}`);
  }
  const sha256 = sha256Hex(bytes);
  if (expectedSha256 !== undefined && sha256 !== expectedSha256.toLowerCase()) {
    throw new ModelArtifactError(
      'sha256-mismatch',
      'sha256',
      `expected ${expectedSha256.toLowerCase()}, got ${sha256}: the blob is corrupt or belongs to another model`,
    );
  }
  let artifact: ModelArtifact;
  try {
    artifact = ModelArtifact.decode(bytes);
  } catch (error) {
    throw new ModelArtifactError(
      'undecodable',
      'artifact',
      `expected a ModelArtifact protobuf (${bytes.byteLength} bytes did not decode: ${messageOf(error)})`,
      { cause: error },
    );
  }
  const { metadata, modelTopologyJson, weightSpecs, weightData } = artifact;
  if (metadata === undefined)
    throw new ModelArtifactError('missing-field', 'metadata', 'expected ModelMetadata, got none');
  if (modelTopologyJson === '') {
    throw new ModelArtifactError('missing-field', 'modelTopologyJson', 'expected the tfjs model topology JSON, got ""');
  }
  const modelTopology = parseTopology(modelTopologyJson);
  const entries = fromWeightSpecs(weightSpecs, weightData.byteLength);
  // A copy that starts at offset 0 of its own ArrayBuffer: Float32Array views need the alignment,
  // and tfjs takes an ArrayBuffer.
  const weightBuffer = new Uint8Array(weightData).buffer;
  if (options.checkFinite ?? true) assertFiniteWeights(entries, weightBuffer);
  let model: tfl.LayersModel;
  try {
    model = await tfl.loadLayersModel(
      tf.io.fromMemory({ modelTopology, weightSpecs: entries, weightData: weightBuffer }),
    );
  } catch (error) {
    const message = messageOf(error);
    const hint = /unknown layer/i.test(message)
      ? ' (a custom layer must be registered with serialization.registerClass before decoding: import its module)'
      : '';
    throw new ModelArtifactError(
      'unloadable',
      'modelTopologyJson',
      `tfjs-layers could not build the model from the topology and weights: ${message}${hint}`,
      { cause: error },
    );
  }
  try {
    checkModelMetadata(metadata, model);
  } catch (error) {
    model.dispose();
    throw error;
  }
  return { metadata, model, sha256 };
}

/** What `model.save` hands to an IO handler: topology, weight manifest and weight data. */
async function saveThroughTfjs(model: tfl.LayersModel): Promise<tf.io.ModelArtifacts> {
  const captured: tf.io.ModelArtifacts[] = [];
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      captured.push(artifacts);
      return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON' } };
    }),
  );
  const [saved] = captured;
  if (saved === undefined) throw new ModelArtifactError('missing-field', 'model', 'tfjs saved nothing');
  return saved;
}

function parseTopology(json: string): object {
  let topology: unknown;
  try {
    topology = JSON.parse(json);
  } catch (error) {
    throw new ModelArtifactError('invalid-topology', 'modelTopologyJson', `expected JSON, got: ${messageOf(error)}`, {
      cause: error,
    });
  }
  if (typeof topology !== 'object' || topology === null || Array.isArray(topology)) {
    throw new ModelArtifactError(
      'invalid-topology',
      'modelTopologyJson',
      'expected a JSON object (a Keras model config)',
    );
  }
  return topology;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
