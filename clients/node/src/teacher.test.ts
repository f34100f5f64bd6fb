// The teacher client against the real Teacher service (in this process, serving a model file):
// Predict from a path, bytes and pixels; PredictStream through predictMany with its window; model
// info and health; bad input refused before any call; a Predict retried until the teacher is up.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { status } from '@grpc/grpc-js';
import { initBackend } from '@noisystudent/ml';
import { makeTestArtifact, seededValues } from '@noisystudent/ml/testing';
import { createLogger } from '@noisystudent/runtime';
import { startTeacher, teacherConfig, type Teacher } from '@noisystudent/teacher';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InputError } from './errors.js';
import type { RawImage } from './images.js';
import { connectTeacher, type Prediction, type StreamPrediction, type TeacherConnection } from './teacher.js';
import { freePort } from '../../../test/support/free-port.js';

const log = createLogger({ service: 'teacher', level: 'silent' });

/** Seeded 28×28 grayscale pixels. */
function pixels(seed: number): Uint8Array {
  return Uint8Array.from(seededValues(28 * 28, seed), (value) => Math.floor((value + 1) * 127.5));
}

const raw = (data: Uint8Array): RawImage => ({ shape: [28, 28, 1], dtype: 'uint8', data });

/** Requests the teacher has counted, every RPC and outcome. */
async function requestsSeen(teacher: Teacher): Promise<number> {
  const { values } = await teacher.metrics.requests.get();
  return values.reduce((sum, sample) => sum + sample.value, 0);
}

function expectSamePrediction(actual: Prediction | undefined, expected: Prediction | undefined): void {
  expect(actual?.labelIndex).toBe(expected?.labelIndex);
  expect(actual?.label).toBe(expected?.label);
  expect(actual?.probabilities).toHaveLength(10);
  actual?.probabilities.forEach((probability, index) =>
    expect(probability).toBeCloseTo(expected?.probabilities[index] ?? NaN, 5),
  );
}

let directory: string;
let modelFile: string;
let teacher: Teacher;
let client: TeacherConnection;

beforeAll(async () => {
  await initBackend({ request: 'cpu', log: () => undefined });
  directory = await mkdtemp(join(tmpdir(), 'ns-client-teacher-'));
  modelFile = join(directory, 'v1.nsmodel');
  await writeFile(modelFile, (await makeTestArtifact({ version: 'v1', seed: 3 })).bytes);
  teacher = await startTeacher(
    teacherConfig({ port: 0, metricsPort: 0, modelFile, maxBatchSize: 16, maxQueueDelayMs: 2 }, {}),
    log,
  );
  await teacher.serving('v1');
  client = connectTeacher(`127.0.0.1:${teacher.port}`);
});

afterAll(async () => {
  client?.close();
  await teacher?.stop();
  await rm(directory, { recursive: true, force: true });
});

describe('the teacher client', () => {
  it('describes the model and its health as plain values', async () => {
    const info = await client.modelInfo();
    expect(info).toMatchObject({
      version: 'v1',
      parentVersion: '',
      architecture: 'reference-resnet',
      inputShape: [28, 28, 1],
    });
    expect(info.classNames).toHaveLength(10);
    expect(info.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(info.createdAt).toEqual(new Date(0));
    expect(await client.health()).toBe('SERVING');
    expect(await client.health({ service: '' })).toBe('SERVING');
  });

  it('gives the same answer for a file path, its bytes, and its pixels', async () => {
    const image = pixels(100);
    const png = await sharp(Buffer.from(image), { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toBuffer();
    const file = join(directory, 'image.png');
    await writeFile(file, png);
    const { classNames } = await client.modelInfo();

    const fromFile = await client.predict(file, { topK: 3 });
    const fromBytes = await client.predict(png, { topK: 3 });
    const fromPixels = await client.predict(raw(image), { topK: 3 });
    const fromFloats = await client.predict({ shape: [28, 28, 1], dtype: 'float32', data: Float32Array.from(image) });
    const together = await client.predict([file, png, raw(image)]);

    const [reference] = fromPixels.predictions;
    expect(fromPixels.modelVersion).toBe('v1');
    expect(reference?.label).toBe(classNames[reference?.labelIndex ?? -1]);
    expect(reference?.confidence).toBe(Math.max(...(reference?.probabilities ?? [])));
    expect(reference?.probabilities.reduce((sum, probability) => sum + probability, 0)).toBeCloseTo(1, 5);
    expect(reference?.topK.map((entry) => entry.labelIndex)).toEqual(
      [...(reference?.probabilities.keys() ?? [])]
        .sort((a, b) => (reference?.probabilities[b] ?? 0) - (reference?.probabilities[a] ?? 0))
        .slice(0, 3),
    );
    expect(reference?.topK[0]).toEqual({
      labelIndex: reference?.labelIndex,
      label: reference?.label,
      probability: reference?.confidence,
    });
    for (const answer of [fromFile, fromBytes, fromFloats]) expectSamePrediction(answer.predictions[0], reference);
    expect(fromFile.predictions[0]?.topK).toEqual(reference?.topK);
    expect(together.predictions).toHaveLength(3);
    for (const prediction of together.predictions) {
      expectSamePrediction(prediction, reference);
      expect(prediction.topK).toEqual([]);
    }
  });

  it('refuses bad input before any call, naming the field', async () => {
    const before = await requestsSeen(teacher);
    const short = { shape: [28, 28, 1], dtype: 'uint8' as const, data: new Uint8Array(700) };
    const error = await client.predict([raw(pixels(1)), short]).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(InputError);
    expect(error).toMatchObject({ field: 'images[1].data', code: status.INVALID_ARGUMENT });
    expect((error as Error).message).toBe('images[1].data: expected 784 values (28×28×1 uint8), got 700');
    await expect(client.predict(join(directory, 'missing.png'))).rejects.toThrow(
      /^image: expected a readable PNG or JPEG file/,
    );
    await expect(client.predict({ shape: [28, 28, 1], dtype: 'float16' as 'float32', data: [] })).rejects.toThrow(
      /^image\.dtype: expected 'uint8', 'float32' or 'int32', got "float16"$/,
    );
    const stream = client.predictMany([{ id: 'bad', image: short }, raw(pixels(1))]);
    await expect(
      (async () => {
        for await (const answer of stream) void answer;
      })(),
    ).rejects.toThrow(/^items\[0\]\.image\.data: expected 784 values/);
    expect(await requestsSeen(teacher)).toBe(before);
  });

  it('predicts 500 images over one stream, at most `window` unanswered, every one answered by id', async () => {
    const window = 64;
    let taken = 0;
    let received = 0;
    let mostOutstanding = 0;
    async function* images(): AsyncGenerator<RawImage | { id: string; image: RawImage }> {
      for (let index = 0; index < 500; index++) {
        taken++;
        mostOutstanding = Math.max(mostOutstanding, taken - received);
        // Even items get the default id (their index), odd ones their own.
        yield index % 2 === 0 ? raw(pixels(index)) : { id: `img-${index}`, image: raw(pixels(index)) };
      }
    }
    const answers: StreamPrediction[] = [];
    for await (const answer of client.predictMany(images(), { window, topK: 2 })) {
      received++;
      answers.push(answer);
    }
    expect(answers).toHaveLength(500);
    expect(mostOutstanding).toBeLessThanOrEqual(window);
    expect(mostOutstanding).toBeGreaterThan(1);
    const expectedIds = Array.from({ length: 500 }, (_, index) => (index % 2 === 0 ? String(index) : `img-${index}`));
    expect(answers.map((answer) => answer.id).sort()).toEqual(expectedIds.sort());
    for (const answer of answers) {
      expect(answer.error).toBeUndefined();
      expect(answer.modelVersion).toBe('v1');
      expect(answer.prediction?.topK).toHaveLength(2);
    }
    const byId = new Map(answers.map((answer) => [answer.id, answer.prediction]));
    const unary = await client.predict([raw(pixels(7)), raw(pixels(8))]);
    expectSamePrediction(byId.get('img-7'), unary.predictions[0]);
    expectSamePrediction(byId.get('8'), unary.predictions[1]);
  });

  it("carries one item's server-side error in its answer and goes on", async () => {
    const wrongSize: RawImage = { shape: [32, 32, 1], dtype: 'uint8', data: new Uint8Array(32 * 32) };
    const answers: StreamPrediction[] = [];
    for await (const answer of client.predictMany([raw(pixels(1)), wrongSize, raw(pixels(2))])) answers.push(answer);
    const byId = new Map(answers.map((answer) => [answer.id, answer]));
    expect(byId.get('0')?.prediction?.probabilities).toHaveLength(10);
    expect(byId.get('2')?.prediction?.probabilities).toHaveLength(10);
    expect(byId.get('1')?.prediction).toBeUndefined();
    expect(byId.get('1')?.error).toMatchObject({ code: status.INVALID_ARGUMENT, codeName: 'INVALID_ARGUMENT' });
    expect(byId.get('1')?.error?.message).toMatch(/^image\.tensor\.shape: expected \[28, 28, 1\]/);
  });

  it('retries a Predict made while the teacher is down until it comes up', async () => {
    const port = await freePort();
    let second: Promise<Teacher> | undefined;
    const retries: Array<{ attempt: number; code: unknown }> = [];
    const late = connectTeacher({
      address: `127.0.0.1:${port}`,
      retry: {
        attempts: 60,
        initialBackoffMs: 50,
        maxBackoffMs: 400,
        onRetry: ({ attempt, error }) => {
          retries.push({ attempt, code: (error as { code?: unknown }).code });
          // The first failure shows nobody was listening: start the teacher now.
          second ??= startTeacher(teacherConfig({ port, metricsPort: 0, modelFile }, {}), log);
        },
      },
    });
    try {
      const answer = await late.predict(raw(pixels(5)));
      expect(answer.modelVersion).toBe('v1');
      expect(retries.length).toBeGreaterThanOrEqual(1);
      expect(retries.every(({ code }) => code === status.UNAVAILABLE)).toBe(true);
      expectSamePrediction(answer.predictions[0], (await client.predict(raw(pixels(5)))).predictions[0]);
    } finally {
      late.close();
      await (await second)?.stop();
    }
  });
});
