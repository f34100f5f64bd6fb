import * as tf from '@tensorflow/tfjs-core';
import { ModelArtifact, ModelMetadata } from '@noisystudent/proto';
import { beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../backend/select-backend.js';
import { buildReferenceResNet } from '../models/reference-resnet.js';
import { decodeModelArtifact, encodeModelArtifact, sha256Hex } from './model-artifact.js';

beforeAll(async () => {
  await initBackend({ request: 'wasm', log: () => undefined });
});

const metadata = ModelMetadata.fromPartial({
  version: 'v3',
  parentVersion: 'v2',
  architecture: 'reference-resnet',
  architectureConfigJson: JSON.stringify({ widthMultiplier: 0.5, finalSurvivalProbability: 0.8 }),
  inputShape: [28, 28, 1],
  classNames: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'],
  metrics: { dataset: 'fashion-mnist/test', exampleCount: 100, top1Accuracy: 0.8, perClassAccuracy: [0.5, 1] },
  createdAt: new Date('2026-11-28T00:00:00Z'),
});

const buildModel = () =>
  buildReferenceResNet({ widthMultiplier: 0.5, replayableNoise: true, finalSurvivalProbability: 0.8, seed: 4 });

describe('model artifact', () => {
  it('round-trips topology (custom layers included), weights and metadata, named by its sha256', async () => {
    const model = buildModel();
    const encoded = await encodeModelArtifact(model, metadata);
    expect(encoded.sha256).toBe(sha256Hex(encoded.bytes));
    expect(encoded.sha256).toMatch(/^[0-9a-f]{64}$/);
    const decoded = await decodeModelArtifact(encoded.bytes, encoded.sha256);
    expect(decoded.metadata).toEqual(metadata);
    expect(decoded.model.layers.filter((layer) => layer.getClassName() === 'StochasticDepth')).toHaveLength(3);
    const input = tf.randomUniform([3, 28, 28, 1], 0, 1, 'float32', 9);
    const expected = Array.from((model.predict(input) as tf.Tensor).dataSync());
    const actual = Array.from((decoded.model.predict(input) as tf.Tensor).dataSync());
    expect(actual).toEqual(expected);
    expect(decoded.model.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(
      model.getWeights().map((w) => Array.from(w.dataSync())),
    );
    model.dispose();
    decoded.model.dispose();
  });

  it('gives the same bytes for the same model and metadata', async () => {
    const model = buildModel();
    const first = await encodeModelArtifact(model, metadata);
    const second = await encodeModelArtifact(model, metadata);
    expect(second.sha256).toBe(first.sha256);
    model.dispose();
  });

  it('refuses corrupt blobs with an error that says what is wrong', async () => {
    const model = buildModel();
    const { bytes, sha256 } = await encodeModelArtifact(model, metadata);
    model.dispose();
    const flipped = bytes.slice();
    flipped[flipped.length - 5] = (flipped[flipped.length - 5] ?? 0) ^ 0xff;
    await expect(decodeModelArtifact(flipped, sha256)).rejects.toThrow(`does not match the expected ${sha256}`);
    await expect(decodeModelArtifact(bytes.subarray(0, bytes.length - 100))).rejects.toThrow(
      'artifact: not a ModelArtifact protobuf',
    );
    const artifact = ModelArtifact.decode(bytes);
    const first = artifact.weightSpecs[0];
    if (first === undefined) throw new Error('no weights');
    const lying = ModelArtifact.encode({
      ...artifact,
      weightSpecs: [{ ...first, byteLength: first.byteLength + 4 }, ...artifact.weightSpecs.slice(1)],
    }).finish();
    await expect(decodeModelArtifact(lying)).rejects.toThrow(`artifact.weightSpecs[0] (${first.name}): expected`);
    const short = ModelArtifact.encode({ ...artifact, weightData: artifact.weightData.subarray(0, 16) }).finish();
    await expect(decodeModelArtifact(short)).rejects.toThrow('runs past the 16 weight bytes');
    const noTopology = ModelArtifact.encode({ ...artifact, modelTopologyJson: '' }).finish();
    await expect(decodeModelArtifact(noTopology)).rejects.toThrow('artifact.modelTopologyJson: missing');
  });

  it('leaves no tensors behind once the loaded model is disposed', async () => {
    const model = buildModel();
    const { bytes } = await encodeModelArtifact(model, metadata);
    model.dispose();
    const before = tf.memory().numTensors;
    const decoded = await decodeModelArtifact(bytes);
    decoded.model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
