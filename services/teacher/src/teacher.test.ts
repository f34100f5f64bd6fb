import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { status } from '@grpc/grpc-js';
import * as tf from '@tensorflow/tfjs-core';
import { decodeModelArtifact, initBackend, PIXEL_SCALE } from '@noisystudent/ml';
import { makeTestArtifact, seededValues } from '@noisystudent/ml/testing';
import { Dtype, type Image } from '@noisystudent/proto';
import { createLogger } from '@noisystudent/runtime';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { connectTeacher, type TestTeacherClient } from '../../../test/support/teacher-client.js';
import { teacherConfig } from './config.js';
import { startTeacher, type Teacher } from './teacher.js';

const PIXELS = 28 * 28;

function pixelImages(count: number, seed: number): Uint8Array[] {
  return Array.from({ length: count }, (_, index) =>
    Uint8Array.from(seededValues(PIXELS, seed + index), (value) => Math.floor((value + 1) * 127.5)),
  );
}

const uint8Tensor = (pixels: Uint8Array): Image => ({
  content: { $case: 'tensor', value: { shape: [28, 28, 1], dtype: Dtype.UINT8, data: Buffer.from(pixels) } },
});

let directory: string;
let modelFile: string;
let teacher: Teacher;
let client: TestTeacherClient;
let expected: (pixels: Uint8Array[]) => Float32Array[];

beforeAll(async () => {
  await initBackend({ request: 'cpu', log: () => undefined });
  const artifact = await makeTestArtifact({ version: 'v1', seed: 3 });
  const reference = await decodeModelArtifact(artifact.bytes);
  expected = (images) =>
    tf.tidy(() => {
      const input = tf.tensor4d(
        Float32Array.from(images.flatMap((image) => Array.from(image, (pixel) => pixel * PIXEL_SCALE))),
        [images.length, 28, 28, 1],
      );
      const probabilities = (reference.model.predictOnBatch(input) as tf.Tensor).dataSync() as Float32Array;
      return images.map((_, index) => probabilities.slice(index * 10, (index + 1) * 10));
    });
  directory = await mkdtemp(join(tmpdir(), 'ns-teacher-'));
  modelFile = join(directory, 'v1.nsmodel');
  await writeFile(modelFile, artifact.bytes);
  const config = teacherConfig({ port: 0, metricsPort: 0, modelFile, maxBatchSize: 8, maxQueueDelayMs: 2 }, {});
  teacher = await startTeacher(config, createLogger({ service: 'teacher', level: 'silent' }));
  const served = await teacher.serving('v1');
  // Served as the folded inference copy: the reference ResNet's 8 batch normalisations are gone.
  expect(served.foldedBatchNorms).toBe(8);
  // And run as one native graph wherever the native kernels load (the predictions below check its numbers).
  if (process.env['NS_NATIVE_KERNELS'] !== '0') expect(served.engine).toBe('native graph');
  client = connectTeacher(teacher.port);
});

afterAll(async () => {
  client?.close();
  await teacher?.stop();
  await rm(directory, { recursive: true, force: true });
});

function expectClose(actual: number[], reference: Float32Array): void {
  expect(actual).toHaveLength(reference.length);
  actual.forEach((value, index) => expect(value).toBeCloseTo(reference[index] ?? NaN, 4));
}

describe('the teacher service serving a model file', () => {
  it('is SERVING and describes its model', async () => {
    expect(await client.health()).toBe('SERVING');
    expect(await client.health('noisystudent.v1.Teacher')).toBe('SERVING');
    const info = await client.modelInfo();
    expect(info.metadata?.version).toBe('v1');
    expect(info.metadata?.inputShape).toEqual([28, 28, 1]);
    expect(info.metadata?.classNames).toHaveLength(10);
    expect(info.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('predicts raw uint8 and float32 tensors and PNGs as the model does in-process', async () => {
    const images = pixelImages(3, 100);
    const png = await sharp(Buffer.from(images[2] ?? []), { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toBuffer();
    const floats = new Float32Array(Array.from(images[1] ?? []));
    const response = await client.predict({
      images: [
        uint8Tensor(images[0] ?? new Uint8Array()),
        {
          content: {
            $case: 'tensor',
            value: { shape: [28, 28, 1], dtype: Dtype.FLOAT32, data: Buffer.from(floats.buffer) },
          },
        },
        { content: { $case: 'encoded', value: png } },
      ],
      topK: 3,
    });
    expect(response.modelVersion).toBe('v1');
    const reference = expected(images);
    response.predictions.forEach((prediction, index) => {
      const row = reference[index] ?? new Float32Array();
      expectClose(prediction.probabilities, row);
      const argmax = row.indexOf(Math.max(...row));
      expect(prediction.labelIndex).toBe(argmax);
      expect(prediction.confidence).toBeCloseTo(row[argmax] ?? NaN, 4);
      expect(prediction.topK.map((entry) => entry.labelIndex)).toEqual(
        Array.from(row.keys())
          .sort((a, b) => (row[b] ?? 0) - (row[a] ?? 0))
          .slice(0, 3),
      );
      expect(prediction.labelName).toBe(prediction.topK[0]?.labelName);
    });
  });

  it('answers every request of a stream, by id, each with the version that computed it', async () => {
    const images = pixelImages(40, 500);
    const answers = await client.predictStream(
      images.map((pixels, index) => ({ id: `req-${index}`, image: uint8Tensor(pixels) })),
    );
    expect(answers.map((answer) => answer.id).sort()).toEqual(images.map((_, index) => `req-${index}`).sort());
    const reference = expected(images);
    for (const answer of answers) {
      expect(answer.modelVersion).toBe('v1');
      if (answer.result?.$case !== 'prediction')
        throw new Error(`request ${answer.id} failed: ${JSON.stringify(answer.result)}`);
      expectClose(answer.result.value.probabilities, reference[Number(answer.id.slice(4))] ?? new Float32Array());
    }
    // The batcher gathered concurrent stream requests into batches (8 images at most).
    const batches = await teacher.metrics.batchSize.get();
    const count = batches.values.find((value) => value.metricName === 'teacher_batch_size_count')?.value ?? 0;
    const sum = batches.values.find((value) => value.metricName === 'teacher_batch_size_sum')?.value ?? 0;
    expect(sum / count).toBeGreaterThan(1);
  });

  it('keeps serving while a large request computes: health answers first', async () => {
    const big = client.predict({ images: pixelImages(256, 900).map(uint8Tensor) }).then(() => 'predict');
    const health = client.health().then((answer) => `health ${answer}`);
    expect(await Promise.race([big, health])).toBe('health SERVING');
    expect(await big).toBe('predict');
  });
});

/** A metric as prom-client reads it back: samples, each with its labels (and, for a histogram, its name). */
interface MetricReading {
  get(): Promise<{ values: Array<{ value: number; labels: object; metricName?: string }> }>;
}

/** The sum of the samples of `metric` named `sample` (a histogram's `_count`, `_sum`) whose labels include `labels`. */
async function sampleSum(metric: MetricReading, sample?: string, labels: Record<string, string> = {}): Promise<number> {
  return (await metric.get()).values
    .filter((value) => sample === undefined || value.metricName === sample)
    .filter((value) =>
      Object.entries(labels).every(([key, label]) => (value.labels as Record<string, unknown>)[key] === label),
    )
    .reduce((sum, value) => sum + value.value, 0);
}

describe('the teacher service holding requests in its queue', () => {
  it('drops a request whose deadline passes while it waits in the queue, before compute', async () => {
    // A batch leaves only when 4 images wait (the queue delay, also when idle, is far longer than the test): the
    // lone request below can only leave the queue by expiring there.
    const config = teacherConfig(
      {
        port: 0,
        metricsPort: 0,
        modelFile,
        maxBatchSize: 4,
        maxQueueDelayMs: 600_000,
        waitWhenIdle: true,
        maxInFlightBatches: 1,
      },
      {},
    );
    const held = await startTeacher(config, createLogger({ service: 'teacher', level: 'silent' }));
    const heldClient = connectTeacher(held.port);
    try {
      await held.serving('v1');
      const expiring = heldClient.predict({ images: pixelImages(1, 7).map(uint8Tensor) }, 1_500);
      // It reached the server: one image waits in the batcher.
      await vi.waitFor(() => expect(held.queuedImages()).toBe(1), { timeout: 1_500, interval: 5 });
      await expect(expiring).rejects.toMatchObject({ code: status.DEADLINE_EXCEEDED });
      // The server took it out of the queue itself; nothing else would have in 600 s.
      await vi.waitFor(() => expect(held.queuedImages()).toBe(0), { timeout: 10_000, interval: 10 });

      // A full batch runs at once, without the dropped image.
      const answer = await heldClient.predict({ images: pixelImages(4, 40).map(uint8Tensor) });
      expect(answer.predictions).toHaveLength(4);
      expect(answer.modelVersion).toBe('v1');
      // The model saw one batch of 4 images: the expired request never reached it.
      const { batchSize, queueSeconds, images, requests } = held.metrics;
      expect(await sampleSum(batchSize, 'teacher_batch_size_count')).toBe(1);
      expect(await sampleSum(batchSize, 'teacher_batch_size_sum')).toBe(4);
      expect(await sampleSum(queueSeconds, 'teacher_queue_seconds_count')).toBe(1);
      expect(await sampleSum(images)).toBe(4);
      expect(await sampleSum(requests, undefined, { rpc: 'Predict', outcome: 'ok' })).toBe(1);
      // One request not answered, counted as what it was (grpc-js cancels a call at its deadline).
      expect(await sampleSum(requests, undefined, { rpc: 'Predict' })).toBe(2);
      expect(await sampleSum(requests, undefined, { rpc: 'Predict', outcome: 'deadline_exceeded' })).toBe(1);
      expect(await heldClient.health()).toBe('SERVING');
    } finally {
      heldClient.close();
      await held.stop();
    }
  });
});
