import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { describe, expect, it } from 'vitest';
import {
  ColorMode,
  Dtype,
  dtypeToJSON,
  Image,
  LabelMode,
  ModelArtifact,
  PseudoLabeledExample,
  ResizeMethod,
  Shard,
  Tensor,
  TrainingConfig,
  RoundDecision,
  RoundRecord,
  TrainerEvent,
} from './index.js';

/** Little-endian bytes of float32 values, as tfjs stores weights. */
function float32Bytes(values: readonly number[]): Buffer {
  const bytes = Buffer.alloc(values.length * 4);
  values.forEach((value, index) => bytes.writeFloatLE(value, index * 4));
  return bytes;
}

function sampleArtifact(): ModelArtifact {
  const kernel = Array.from({ length: 3 * 3 * 1 * 4 }, (_, index) => (index - 18) / 7);
  const bias = [0.5, -0.25, 1e-7, 3.4e38];
  return ModelArtifact.create({
    metadata: {
      version: 'v2',
      parentVersion: 'v1',
      architecture: 'resnet',
      architectureConfigJson: JSON.stringify({ block: 'basic', stages: [1, 1], widths: [32, 64], strides: [1, 2] }),
      inputShape: [28, 28, 1],
      preprocessing: {
        inputHeight: 28,
        inputWidth: 28,
        inputChannels: 1,
        colorMode: ColorMode.GRAYSCALE,
        resizeMethod: ResizeMethod.BILINEAR,
        normalization: { $case: 'rescale', value: { scale: 1 / 255, offset: 0 } },
      },
      classNames: ['T-shirt/top', 'Trouser', 'Pullover'],
      trainingConfig: {
        steps: 12_000,
        labeledBatchSize: 32,
        unlabeledBatchSize: 96,
        learningRate: 0.1,
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
        perClassAccuracy: [0.86, 0.98, 0.87],
      },
      createdAt: new Date('2026-11-28T06:01:02.345Z'),
    },
    modelTopologyJson: JSON.stringify({ class_name: 'Functional', config: { name: 'resnet', layers: [] } }),
    weightSpecs: [
      { name: 'conv2d_1/kernel', shape: [3, 3, 1, 4], dtype: Dtype.FLOAT32, byteOffset: 0, byteLength: 144 },
      { name: 'conv2d_1/bias', shape: [4], dtype: Dtype.FLOAT32, byteOffset: 144, byteLength: 16 },
    ],
    weightData: Buffer.concat([float32Bytes(kernel), float32Bytes(bias)]),
  });
}

function tensorImage(pixels: readonly number[]): Image {
  return Image.create({
    content: { $case: 'tensor', value: { shape: [2, 2, 1], dtype: Dtype.UINT8, data: Buffer.from(pixels) } },
  });
}

function sampleShard(): Shard {
  // Probabilities chosen to be exact in float32, so the round trip can be compared with toEqual.
  const examples = [
    { sourceId: 'cam-1/0001', image: tensorImage([0, 64, 128, 255]), softLabel: [0.75, 0.125, 0.125], hardLabel: 0 },
    { sourceId: 'cam-1/0002', image: tensorImage([9, 8, 7, 6]), softLabel: [0.0625, 0.875, 0.0625], hardLabel: 1 },
    {
      sourceId: 'upload/cat.png',
      image: Image.create({ content: { $case: 'encoded', value: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a]) } }),
      softLabel: [0.25, 0.25, 0.5],
      hardLabel: 2,
    },
  ].map((example, index) =>
    PseudoLabeledExample.create({
      ...example,
      confidence: Math.max(...example.softLabel),
      copyCount: index === 1 ? 3 : 1,
    }),
  );
  return Shard.create({
    shardId: 'v1-window-000017-part-0',
    teacherVersion: 'v1',
    policy: {
      confidenceThreshold: 0.3,
      labelMode: LabelMode.SOFT,
      temperature: 1,
      targetCountPerClass: 3,
      windowSize: 512,
      seed: 7,
    },
    examples,
    createdAt: new Date('2026-11-28T06:30:00.001Z'),
    classCounts: [1, 3, 1],
  });
}

describe('ModelArtifact on the wire', () => {
  it('round-trips metadata, topology and weight bytes exactly', () => {
    const artifact = sampleArtifact();
    const bytes = ModelArtifact.encode(artifact).finish();

    const decoded = ModelArtifact.decode(bytes);

    expect(decoded).toEqual(artifact);
    const bias = decoded.weightSpecs[1];
    expect(bias?.name).toBe('conv2d_1/bias');
    const biasValues = [0, 1, 2, 3].map((index) => decoded.weightData.readFloatLE((bias?.byteOffset ?? 0) + index * 4));
    expect(biasValues).toEqual([0.5, -0.25, Math.fround(1e-7), Math.fround(3.4e38)]);
  });

  it('re-encodes a decoded artifact to the same bytes (the registry names artifacts by sha256)', () => {
    const bytes = ModelArtifact.encode(sampleArtifact()).finish();

    expect(Buffer.from(ModelArtifact.encode(ModelArtifact.decode(bytes)).finish())).toEqual(Buffer.from(bytes));
  });

  it('copies bytes fields out of the input buffer on decode (env=node gives Buffers)', () => {
    const bytes = ModelArtifact.encode(sampleArtifact()).finish();
    const decoded = ModelArtifact.decode(bytes);

    bytes.fill(0);

    expect(Buffer.isBuffer(decoded.weightData)).toBe(true);
    expect(decoded.weightData.readFloatLE(144)).toBe(0.5);
  });

  it('throws on bytes cut short inside a field', () => {
    const bytes = ModelArtifact.encode(sampleArtifact()).finish();

    // The last field is weight_data (160 bytes): any cut inside it leaves a length prefix pointing past the end.
    expect(() => ModelArtifact.decode(bytes.subarray(0, bytes.length - 1))).toThrow(RangeError);
    expect(() => ModelArtifact.decode(bytes.subarray(0, bytes.length - 100))).toThrow('premature EOF');
    // Cut after the first byte of metadata's length varint (160+ bytes need two varint bytes).
    expect(() => ModelArtifact.decode(bytes.subarray(0, 2))).toThrow();
  });

  it('rejects a 64-bit count beyond Number.MAX_SAFE_INTEGER instead of rounding it (forceLong=number)', () => {
    const steps = BigInt(Number.MAX_SAFE_INTEGER) + 2n;
    const bytes = new BinaryWriter()
      .uint32((1 << 3) | 0)
      .uint64(steps)
      .finish();

    expect(() => TrainingConfig.decode(bytes)).toThrow('Value is larger than Number.MAX_SAFE_INTEGER');
  });
});

describe('Shard on the wire', () => {
  it('round-trips several examples with tensor and encoded images', () => {
    const shard = sampleShard();

    const decoded = Shard.decode(Shard.encode(shard).finish());

    expect(decoded).toEqual(shard);
    expect(decoded.examples.map((example) => example.image?.content?.$case)).toEqual(['tensor', 'tensor', 'encoded']);
    expect(decoded.examples.map((example) => example.copyCount)).toEqual([1, 3, 1]);
  });

  it('keeps Timestamp to the millisecond: sub-millisecond nanos are dropped (useDate=true)', () => {
    const timestamp = new BinaryWriter()
      .uint32((1 << 3) | 0)
      .int64(1_700_000_000)
      .uint32((2 << 3) | 0);
    const timestampBytes = timestamp.int32(123_456_789).finish();
    const shardBytes = new BinaryWriter()
      .uint32((5 << 3) | 2)
      .bytes(timestampBytes)
      .finish();

    const decoded = Shard.decode(shardBytes);

    expect(decoded.createdAt?.toISOString()).toBe('2023-11-14T22:13:20.123Z');
  });

  it('throws on bytes cut short inside an example', () => {
    const bytes = Shard.encode(sampleShard()).finish();

    expect(() => Shard.decode(bytes.subarray(0, Math.floor(bytes.length / 2)))).toThrow(RangeError);
  });
});

describe('enums and unknown data (ts-proto behaviour)', () => {
  const dtypeField = (2 << 3) | 0;

  it('keeps an unknown enum number from the wire and writes it back unchanged', () => {
    const bytes = new BinaryWriter().uint32(dtypeField).int32(7).finish();

    const decoded = Tensor.decode(bytes);

    expect(decoded.dtype).toBe(7);
    expect(decoded.dtype).not.toBe(Dtype.UNRECOGNIZED);
    expect(Buffer.from(Tensor.encode(decoded).finish())).toEqual(Buffer.from(bytes));
    expect(dtypeToJSON(decoded.dtype)).toBe('UNRECOGNIZED');
  });

  it('maps an unknown enum name in JSON to UNRECOGNIZED (-1), which then goes on the wire as -1', () => {
    const tensor = Tensor.fromJSON({ shape: [1], dtype: 'DTYPE_BFLOAT16', data: '' });

    expect(tensor.dtype).toBe(Dtype.UNRECOGNIZED);
    expect(Tensor.decode(Tensor.encode(tensor).finish()).dtype).toBe(-1);
  });

  it('writes enums by number and reads both names and numbers from JSON', () => {
    expect(Tensor.toJSON(Tensor.create({ dtype: Dtype.FLOAT32 }))).toEqual({ dtype: 'DTYPE_FLOAT32' });
    expect(Tensor.fromJSON({ dtype: 'DTYPE_INT32' }).dtype).toBe(Dtype.INT32);
    expect(Tensor.fromJSON({ dtype: 1 }).dtype).toBe(Dtype.UINT8);
  });

  it('drops unknown fields on decode (unknownFields is off)', () => {
    const known = Tensor.encode(Tensor.create({ shape: [2], dtype: Dtype.UINT8, data: Buffer.from([1, 2]) })).finish();
    const withUnknownField = Buffer.concat([
      known,
      new BinaryWriter()
        .uint32((15 << 3) | 2)
        .string('future')
        .finish(),
    ]);

    const decoded = Tensor.decode(withUnknownField);

    expect(decoded).toEqual(Tensor.create({ shape: [2], dtype: Dtype.UINT8, data: Buffer.from([1, 2]) }));
    expect(Buffer.from(Tensor.encode(decoded).finish())).toEqual(Buffer.from(known));
  });

  it('reads an Image with both forms on the wire as the last one (proto3 oneof semantics)', () => {
    const tensor = Tensor.encode(Tensor.create({ shape: [1, 1, 1], dtype: Dtype.UINT8, data: Buffer.from([5]) }));
    const bytes = new BinaryWriter()
      .uint32((2 << 3) | 2)
      .bytes(tensor.finish())
      .uint32((1 << 3) | 2)
      .bytes(Buffer.from([0xff, 0xd8]))
      .finish();

    expect(Image.decode(bytes).content).toEqual({ $case: 'encoded', value: Buffer.from([0xff, 0xd8]) });
  });
});

describe('trainer records', () => {
  it('round-trips a finished round as the event the trainer publishes', () => {
    const round = RoundRecord.fromPartial({
      round: 2,
      teacherVersion: 'v2',
      teacherEval: { dataset: 'fashion-mnist/eval', exampleCount: 5_000, top1Accuracy: 0.8697 },
      shards: 19,
      pseudoLabeledExamples: 39_036,
      examplesPerClass: [3_904, 3_903, 3_904, 3_903, 3_904, 3_903, 3_904, 3_903, 3_904, 3_904],
      labeledExamples: 1_000,
      studentVersion: 'v3',
      studentEval: { dataset: 'fashion-mnist/eval', exampleCount: 5_000, top1Accuracy: 0.8718 },
      decision: RoundDecision.PROMOTED,
      reason: 'student 87.18% vs teacher 86.97% on eval (margin 0)',
      startedAt: new Date('2026-12-03T10:00:00.000Z'),
      finishedAt: new Date('2026-12-03T11:22:00.000Z'),
    });
    const event: TrainerEvent = { event: { $case: 'roundFinished', value: round } };
    const decoded = TrainerEvent.decode(TrainerEvent.encode(event).finish());
    expect(decoded).toEqual(event);
    expect(decoded.event?.$case === 'roundFinished' && decoded.event.value.examplesPerClass).toHaveLength(10);
  });
});
