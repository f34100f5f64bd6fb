// Property-based: whatever images a caller sends — random bytes, PNG and JPEG bytes with random
// bytes changed or cut, tensors of random shape, dtype and length with NaN and Infinity — the
// teacher answers each Predict OK or INVALID_ARGUMENT (never INTERNAL, never a crash), keeps
// serving, and leaks no tensor. The seed is printed by fast-check when a case fails.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { status, type ServiceError } from '@grpc/grpc-js';
import { initBackend } from '@noisystudent/ml';
import { makeTestArtifact } from '@noisystudent/ml/testing';
import { Dtype, type Image } from '@noisystudent/proto';
import { createLogger } from '@noisystudent/runtime';
import fc from 'fast-check';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { connectTeacher, type TestTeacherClient } from '../../../test/support/teacher-client.js';
import { teacherConfig } from './config.js';
import { startTeacher, type Teacher } from './teacher.js';

const RUNS = 1_000;

let directory: string;
let teacher: Teacher;
let client: TestTeacherClient;
let tensorsBefore: number;
let png: Buffer;
let jpeg: Buffer;

beforeAll(async () => {
  await initBackend({ request: 'cpu', log: () => undefined });
  directory = await mkdtemp(join(tmpdir(), 'ns-teacher-fuzz-'));
  const modelFile = join(directory, 'v1.nsmodel');
  await writeFile(modelFile, (await makeTestArtifact({ version: 'v1', seed: 3 })).bytes);
  teacher = await startTeacher(
    teacherConfig({ port: 0, metricsPort: 0, modelFile, maxImagesPerRequest: 8, maxBatchSize: 8 }, {}),
    createLogger({ service: 'teacher', level: 'silent' }),
  );
  await teacher.serving();
  client = connectTeacher(teacher.port);
  const gray = Buffer.from(Array.from({ length: 28 * 28 }, (_, index) => (index * 7) % 256));
  png = await sharp(gray, { raw: { width: 28, height: 28, channels: 1 } })
    .png()
    .toBuffer();
  jpeg = await sharp(gray, { raw: { width: 28, height: 28, channels: 1 } })
    .jpeg()
    .toBuffer();
  tensorsBefore = (await teacher.host.memory()).numTensors;
}, 60_000);

afterAll(async () => {
  client?.close();
  await teacher?.stop();
  await rm(directory, { recursive: true, force: true });
});

/** Bytes of `base` with some bytes replaced and possibly cut short. */
const mutated = (base: () => Buffer): fc.Arbitrary<Buffer> =>
  fc
    .tuple(
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
      fc.option(fc.nat(), { nil: undefined }),
    )
    .map(([changes, cut]) => {
      const bytes = Buffer.from(base());
      for (const [at, value] of changes) bytes[at % bytes.length] = value;
      return cut === undefined ? bytes : bytes.subarray(0, cut % (bytes.length + 1));
    });

const encoded: fc.Arbitrary<Image> = fc
  .oneof(
    fc.uint8Array({ maxLength: 2048 }).map((bytes) => Buffer.from(bytes)),
    mutated(() => png),
    mutated(() => jpeg),
  )
  .map((bytes) => ({ content: { $case: 'encoded', value: bytes } }));

const floatBytes = fc
  .array(
    fc.oneof(
      fc.float({ min: 0, max: 255, noNaN: true }),
      fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
    ),
    { maxLength: 28 * 28 + 2 },
  )
  .map((values) => Buffer.from(new Float32Array(values).buffer));

const tensor: fc.Arbitrary<Image> = fc
  .record({
    shape: fc.oneof(fc.constant([28, 28, 1]), fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 4 })),
    dtype: fc.constantFrom(Dtype.UINT8, Dtype.FLOAT32, Dtype.INT32, Dtype.UNSPECIFIED),
    data: fc.oneof(
      fc.uint8Array({ minLength: 28 * 28, maxLength: 28 * 28 }).map((bytes) => Buffer.from(bytes)),
      fc.uint8Array({ maxLength: 4 * 28 * 28 + 8 }).map((bytes) => Buffer.from(bytes)),
      floatBytes,
    ),
  })
  .map((value) => ({ content: { $case: 'tensor', value } }));

const noImage: fc.Arbitrary<Image> = fc.constant({ content: undefined });

/** Images the teacher must answer: the unchanged PNG or JPEG, or the model's exact uint8 tensor. */
const good: fc.Arbitrary<Image> = fc.oneof(
  fc.constantFrom<'png' | 'jpeg'>('png', 'jpeg').map((kind): Image => ({
    content: { $case: 'encoded', value: kind === 'png' ? png : jpeg },
  })),
  fc.uint8Array({ minLength: 28 * 28, maxLength: 28 * 28 }).map((bytes): Image => ({
    content: { $case: 'tensor', value: { shape: [28, 28, 1], dtype: Dtype.UINT8, data: Buffer.from(bytes) } },
  })),
);

describe('the teacher under random input', () => {
  it(`answers ${RUNS} random Predicts OK or INVALID_ARGUMENT, naming the field`, async () => {
    const codes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.array(fc.oneof(encoded, tensor, noImage), { minLength: 0, maxLength: 10 }),
          // Requests of valid images only, so that OK answers are exercised as often as refusals.
          fc.array(good, { minLength: 1, maxLength: 4 }),
        ),
        fc.integer({ min: 0, max: 12 }),
        async (images, topK) => {
          const outcome = await client.predict({ images, topK }).then(
            (response) => ({ code: status.OK, details: '', answered: response.predictions.length }),
            (error: ServiceError) => ({ code: error.code, details: error.details, answered: 0 }),
          );
          const name = status[outcome.code] ?? String(outcome.code);
          codes.set(name, (codes.get(name) ?? 0) + 1);
          if (outcome.code === status.OK) {
            expect(outcome.answered).toBe(images.length);
            return;
          }
          expect(outcome.code, outcome.details).toBe(status.INVALID_ARGUMENT);
          expect(outcome.details).toMatch(
            /^(images(\[\d+\](\.(encoded|tensor(\.(shape|dtype|data))?))?)?|top_k): expected /,
          );
        },
      ),
      { numRuns: RUNS },
    );
    // Both kinds of answer were exercised.
    expect(codes.get('OK') ?? 0).toBeGreaterThan(0);
    expect(codes.get('INVALID_ARGUMENT') ?? 0).toBeGreaterThan(0);
  }, 120_000);

  it('still serves, and leaked no tensor', async () => {
    expect(await client.health()).toBe('SERVING');
    expect(
      (await client.predict({ images: [{ content: { $case: 'encoded', value: png } }] })).predictions,
    ).toHaveLength(1);
    expect((await teacher.host.memory()).numTensors).toBe(tensorsBefore);
    const outcomes = (await teacher.metrics.requests.get()).values;
    expect(outcomes.filter((value) => value.labels.outcome === 'internal')).toEqual([]);
  });
});
