import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { ColorMode, Dtype, ModelArtifact, ModelMetadata, ResizeMethod } from '@noisystudent/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../backend/select-backend.js';
import { NoiseDropout } from '../models/noise-dropout.js';
import { buildReferenceResNet } from '../models/reference-resnet.js';
import { StochasticDepth } from '../models/stochastic-depth.js';
import { seededValues } from '../random.js';
import { ModelArtifactError, type ModelArtifactProblem } from './artifact-error.js';
import { sha256Hex } from '@noisystudent/core';

import { decodeModelArtifact, encodeModelArtifact } from './model-artifact.js';
import type { ModelMetadataInput } from './model-metadata.js';

const CLASS_NAMES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Boot',
];

const metadataInput: ModelMetadataInput = {
  version: 'v3',
  parentVersion: 'v2',
  architecture: 'reference-resnet',
  architectureConfigJson: JSON.stringify({ widthMultiplier: 0.5, finalSurvivalProbability: 0.8, seed: 4 }),
  trainingConfig: {
    steps: 1200,
    labeledBatchSize: 32,
    unlabeledBatchSize: 96,
    learningRate: 0.002,
    labelSmoothing: 0.1,
    noise: { randaugmentNumOps: 2, randaugmentMagnitude: 10, dropoutRate: 0.5, stochasticDepthFinalSurvival: 0.8 },
    seed: 42,
  },
  metrics: {
    dataset: 'fashion-mnist/test',
    exampleCount: 10_000,
    top1Accuracy: 0.9128,
    loss: 0.2531,
    expectedCalibrationError: 0.0213,
    eceBinCount: 15,
    perClassAccuracy: [0.86, 0.98, 0.87, 0.91, 0.85, 0.98, 0.74, 0.97, 0.98, 0.96],
  },
  createdAt: new Date('2026-11-28T07:50:12.345Z'),
};

/** The training images as encodeModelArtifact reads them: size, channels, class names. */
const trainedOn = { height: 28, width: 28, channels: 1, classNames: CLASS_NAMES };

/** What the artifact records of `trainedOn`: the training scale, 0–255 pixels to 0–1. */
const recordedInput = {
  inputShape: [28, 28, 1],
  preprocessing: {
    inputHeight: 28,
    inputWidth: 28,
    inputChannels: 1,
    colorMode: ColorMode.GRAYSCALE,
    resizeMethod: ResizeMethod.BILINEAR,
    normalization: { $case: 'rescale' as const, value: { scale: 1 / 255, offset: 0 } },
  },
  classNames: CLASS_NAMES,
};

/** Stochastic depth and replayable dropout: both custom layers registered with serialization.registerClass. */
const buildModel = (): tfl.LayersModel =>
  buildReferenceResNet({ widthMultiplier: 0.5, finalSurvivalProbability: 0.8, seed: 4 });

async function predict(model: tfl.LayersModel): Promise<Float32Array> {
  const output = tf.tidy(() => model.predict(tf.tensor4d(seededValues(3 * 28 * 28, 9), [3, 28, 28, 1])) as tf.Tensor);
  const values = (await output.data()) as Float32Array;
  output.dispose();
  return values;
}

async function weightsOf(model: tfl.LayersModel): Promise<Array<{ name: string; values: Float32Array }>> {
  return Promise.all(
    model.weights.map(async (weight) => ({
      name: weight.originalName,
      values: (await weight.read().data()) as Float32Array,
    })),
  );
}

/** The ModelArtifactError `promise` rejects with. */
async function refusal(promise: Promise<unknown>): Promise<ModelArtifactError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ModelArtifactError) return error;
    throw error;
  }
  throw new Error('expected a ModelArtifactError, got success');
}

async function expectRefusal(promise: Promise<unknown>, problem: ModelArtifactProblem, message: string): Promise<void> {
  const error = await refusal(promise);
  expect(error.message).toContain(message);
  expect(error.problem).toBe(problem);
}

let model: tfl.LayersModel;
let bytes: Uint8Array;
let sha256: string;

beforeAll(async () => {
  await initBackend({ request: 'wasm', log: () => undefined });
  model = buildModel();
  ({ bytes, sha256 } = await encodeModelArtifact(model, metadataInput, trainedOn));
});

afterAll(() => {
  model.dispose();
});

describe('encodeModelArtifact / decodeModelArtifact', () => {
  it('round-trips metadata exactly, the topology with custom layers, and every weight bit for bit', async () => {
    expect(sha256).toBe(sha256Hex(bytes));
    expect(sha256).toMatch(/^[0-9a-f]{64}$/);
    const decoded = await decodeModelArtifact(bytes, sha256);
    expect(decoded.sha256).toBe(sha256);
    expect(decoded.metadata).toEqual(ModelMetadata.fromPartial({ ...metadataInput, ...recordedInput }));
    expect(decoded.metadata.createdAt?.toISOString()).toBe('2026-11-28T07:50:12.345Z');
    const stochasticDepth = decoded.model.layers.filter((layer) => layer instanceof StochasticDepth);
    expect(stochasticDepth.map((layer) => layer.survivalProbability)).toEqual(
      model.layers.filter((layer) => layer instanceof StochasticDepth).map((layer) => layer.survivalProbability),
    );
    expect(stochasticDepth).toHaveLength(3);
    expect(decoded.model.layers.filter((layer) => layer instanceof NoiseDropout)).toHaveLength(1);
    // Every weight, the batch norms' moving statistics (non-trainable) included.
    expect(decoded.model.weights.length).toBe(model.weights.length);
    expect(decoded.model.weights.some((weight) => weight.originalName.endsWith('moving_variance'))).toBe(true);
    expect(await weightsOf(decoded.model)).toEqual(await weightsOf(model));
    expect(await predict(decoded.model)).toEqual(await predict(model));
    decoded.model.dispose();
  });

  it('is deterministic: the same model and metadata give the same sha256, and so does the decoded model', async () => {
    const again = await encodeModelArtifact(model, metadataInput, trainedOn);
    expect(again.sha256).toBe(sha256);
    const decoded = await decodeModelArtifact(bytes);
    expect((await encodeModelArtifact(decoded.model, metadataInput, trainedOn)).sha256).toBe(sha256);
    decoded.model.dispose();
    const rebuilt = buildModel();
    expect(
      (await encodeModelArtifact(rebuilt, { ...metadataInput, createdAt: new Date(0) }, trainedOn)).sha256,
    ).not.toBe(sha256);
    rebuilt.dispose();
  });

  it('records the training data as the input, and refuses data or metadata that does not describe the model', async () => {
    expect(ModelArtifact.decode(bytes).metadata).toMatchObject(recordedInput);
    await expectRefusal(
      encodeModelArtifact(model, metadataInput, { ...trainedOn, height: 32, width: 32, channels: 3 }),
      'invalid-metadata',
      "metadata.inputShape: expected [28, 28, 1] (the model's input), got [32, 32, 3]",
    );
    await expectRefusal(
      encodeModelArtifact(model, metadataInput, { ...trainedOn, classNames: ['a', 'b'] }),
      'invalid-metadata',
      'metadata.classNames: expected 10 names (one per output unit), got 2',
    );
    await expectRefusal(
      encodeModelArtifact(model, { ...metadataInput, version: 'v3.1' }, trainedOn),
      'invalid-metadata',
      `metadata.version: expected letters, digits, '-' or '_' (e.g. "v3"), got "v3.1"`,
    );
    await expectRefusal(
      encodeModelArtifact(model, { ...metadataInput, architectureConfigJson: '[1, 2]' }, trainedOn),
      'invalid-metadata',
      'metadata.architectureConfigJson: expected "" or a JSON object',
    );
  });

  it('refuses to load an artifact that does not say how to feed the model, naming the field', async () => {
    const artifact = ModelArtifact.decode(bytes);
    const metadata = artifact.metadata ?? ModelMetadata.fromPartial({});
    const without = (changes: Partial<ModelMetadata>): Uint8Array =>
      ModelArtifact.encode({ ...artifact, metadata: { ...metadata, ...changes } }).finish();
    await expectRefusal(
      decodeModelArtifact(without({ preprocessing: undefined })),
      'missing-field',
      "metadata.preprocessing: expected how the model's input is made",
    );
    await expectRefusal(
      decodeModelArtifact(without({ classNames: [] })),
      'invalid-metadata',
      'metadata.classNames: expected 10 names (one per output unit), got 0',
    );
    const preprocessing = recordedInput.preprocessing;
    await expectRefusal(
      decodeModelArtifact(without({ preprocessing: { ...preprocessing, colorMode: ColorMode.UNSPECIFIED } })),
      'invalid-metadata',
      'metadata.preprocessing.colorMode: expected COLOR_MODE_GRAYSCALE (the model takes 1 channel), got COLOR_MODE_UNSPECIFIED',
    );
    await expectRefusal(
      decodeModelArtifact(without({ preprocessing: { ...preprocessing, resizeMethod: ResizeMethod.UNSPECIFIED } })),
      'invalid-metadata',
      'metadata.preprocessing.resizeMethod: expected BILINEAR or NEAREST, got RESIZE_METHOD_UNSPECIFIED',
    );
  });

  it('refuses a blob whose sha256 differs, naming both hashes', async () => {
    const flipped = bytes.slice();
    const middle = Math.floor(flipped.length / 2);
    flipped[middle] = (flipped[middle] ?? 0) ^ 0x01;
    const actual = sha256Hex(flipped);
    await expectRefusal(
      decodeModelArtifact(flipped, sha256),
      'sha256-mismatch',
      `sha256: expected ${sha256}, got ${actual}`,
    );
    await expect(decodeModelArtifact(bytes, sha256.toUpperCase())).resolves.toMatchObject({ sha256 });
    await expect(decodeModelArtifact(bytes, 'abc')).rejects.toThrow(
      'expectedSha256: expected 64 hex digits, got "abc"',
    );
  });

  it('refuses truncated, empty and foreign blobs', async () => {
    await expectRefusal(
      decodeModelArtifact(bytes.subarray(0, bytes.length - 100)),
      'undecodable',
      'artifact: expected a ModelArtifact protobuf',
    );
    await expectRefusal(decodeModelArtifact(Uint8Array.from([0x0a, 0xff, 0xff])), 'undecodable', 'did not decode');
    await expectRefusal(decodeModelArtifact(new Uint8Array(0)), 'missing-field', 'metadata: expected ModelMetadata');
    const artifact = ModelArtifact.decode(bytes);
    const noTopology = ModelArtifact.encode({ ...artifact, modelTopologyJson: '' }).finish();
    await expectRefusal(decodeModelArtifact(noTopology), 'missing-field', 'modelTopologyJson: expected the tfjs model');
    const badJson = ModelArtifact.encode({ ...artifact, modelTopologyJson: '{"class_name":' }).finish();
    await expectRefusal(decodeModelArtifact(badJson), 'invalid-topology', 'modelTopologyJson: expected JSON');
  });

  it('refuses weight specs that do not add up to the weight bytes, naming the weight', async () => {
    const artifact = ModelArtifact.decode(bytes);
    const specs = artifact.weightSpecs;
    const first = specs[0];
    const last = specs[specs.length - 1];
    if (first === undefined || last === undefined) throw new Error('the model has no weights');
    const lastIndex = specs.length - 1;

    // The last weight claims one element more than the bytes hold.
    const overlong = { ...last, shape: [(last.shape[0] ?? 0) + 1], byteLength: last.byteLength + 4 };
    await expectRefusal(
      decodeModelArtifact(
        ModelArtifact.encode({ ...artifact, weightSpecs: [...specs.slice(0, -1), overlong] }).finish(),
      ),
      'weight-layout',
      `weightSpecs[${lastIndex}] (${last.name}): expected bytes ${last.byteOffset}–${last.byteOffset + last.byteLength + 4} in weightData, which holds only ${artifact.weightData.byteLength}`,
    );
    // A byte length that does not match the shape.
    const lying = { ...first, byteLength: first.byteLength + 4 };
    await expectRefusal(
      decodeModelArtifact(ModelArtifact.encode({ ...artifact, weightSpecs: [lying, ...specs.slice(1)] }).finish()),
      'weight-layout',
      `weightSpecs[0] (${first.name}): expected byteLength ${first.byteLength} (shape [${first.shape.join(', ')}] × 4 bytes), got ${first.byteLength + 4}`,
    );
    // Weight bytes cut short: the first weight past the end is named.
    const short = ModelArtifact.encode({ ...artifact, weightData: artifact.weightData.subarray(0, 16) }).finish();
    await expectRefusal(
      decodeModelArtifact(short),
      'weight-layout',
      `weightSpecs[0] (${first.name}): expected bytes 0–`,
    );
    // Bytes left over after the last weight.
    const padded = Buffer.concat([artifact.weightData, Buffer.alloc(8)]);
    await expectRefusal(
      decodeModelArtifact(ModelArtifact.encode({ ...artifact, weightData: padded }).finish()),
      'weight-layout',
      `weightData: expected ${artifact.weightData.byteLength} bytes (the end of the last weight, ${last.name}), got ${padded.byteLength}`,
    );
    // An unsupported dtype.
    const uint8 = { ...first, dtype: Dtype.UINT8 };
    await expectRefusal(
      decodeModelArtifact(ModelArtifact.encode({ ...artifact, weightSpecs: [uint8, ...specs.slice(1)] }).finish()),
      'unsupported-dtype',
      `weightSpecs[0] (${first.name}): expected dtype DTYPE_FLOAT32 or DTYPE_INT32, got 1 (UINT8)`,
    );
  });

  it('refuses non-finite weights unless told not to check, and unregistered layers with a hint', async () => {
    const artifact = ModelArtifact.decode(bytes);
    const weightData = Buffer.from(artifact.weightData);
    const second = artifact.weightSpecs[1];
    if (second === undefined) throw new Error('the model has fewer than two weights');
    weightData.writeFloatLE(Number.NaN, second.byteOffset + 8);
    const poisoned = ModelArtifact.encode({ ...artifact, weightData }).finish();
    await expectRefusal(
      decodeModelArtifact(poisoned),
      'non-finite-weight',
      `weightSpecs[1] (${second.name}): expected finite float32 values, got NaN at element 2`,
    );
    const unchecked = await decodeModelArtifact(poisoned, undefined, { checkFinite: false });
    unchecked.model.dispose();

    const unknownLayer = artifact.modelTopologyJson.replaceAll('"StochasticDepth"', '"NotRegisteredLayer"');
    await expectRefusal(
      decodeModelArtifact(ModelArtifact.encode({ ...artifact, modelTopologyJson: unknownLayer }).finish()),
      'unloadable',
      'a custom layer must be registered with serialization.registerClass before decoding',
    );
  });

  it('leaves no tensors behind: after decode + predict + dispose, and after a refused decode', async () => {
    const before = tf.memory().numTensors;
    const decoded = await decodeModelArtifact(bytes, sha256);
    await predict(decoded.model);
    decoded.model.dispose();
    expect(tf.memory().numTensors).toBe(before);

    // Metadata that no longer matches the model is caught after tfjs built it: the model is freed.
    const artifact = ModelArtifact.decode(bytes);
    const metadata = ModelMetadata.fromPartial({ ...artifact.metadata, classNames: ['a', 'b', 'c'] });
    await expectRefusal(
      decodeModelArtifact(ModelArtifact.encode({ ...artifact, metadata }).finish()),
      'invalid-metadata',
      'metadata.classNames: expected 10 names',
    );
    expect(tf.memory().numTensors).toBe(before);
  });
});
