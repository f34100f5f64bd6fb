import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { status } from '@grpc/grpc-js';
import { makeTestArtifact, seededValues } from '@noisystudent/ml/testing';
import { Dtype, type Image } from '@noisystudent/proto';
import { createLogger } from '@noisystudent/runtime';
import { startTeacher, teacherConfig, type Teacher } from '@noisystudent/teacher';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { connectTeacher, type TestTeacherClient } from '../../../test/support/teacher-client.js';
import { TeacherPool, type TeacherAnswer } from './teacher-pool.js';

const uint8Tensor = (pixels: Uint8Array, shape = [28, 28, 1]): Image => ({
  content: { $case: 'tensor', value: { shape, dtype: Dtype.UINT8, data: Buffer.from(pixels) } },
});

function pixelImages(count: number, seed: number): Uint8Array[] {
  return Array.from({ length: count }, (_, index) =>
    Uint8Array.from(seededValues(28 * 28, seed + index), (value) => Math.floor((value + 1) * 127.5)),
  );
}

const address = (teacher: Teacher): string => `127.0.0.1:${teacher.port}`;

let directory: string;
/** Two replicas of v1 that stay up for the whole file. */
let one: Teacher;
let two: Teacher;
/** v1's weights under version 'v1b', one image at a time, stopped by the failover test with a 1 ms grace. */
let doomed: Teacher;
/** v1 with room for one queued image: most concurrent requests are answered UNAVAILABLE (queue full). */
let narrow: Teacher;
let reference: TestTeacherClient;

async function start(modelFile: string, settings: Record<string, unknown>): Promise<Teacher> {
  const config = teacherConfig({ port: 0, metricsPort: 0, modelFile, maxQueueDelayMs: 2, ...settings }, {});
  const teacher = await startTeacher(config, createLogger({ service: 'teacher', level: 'silent' }));
  await teacher.serving();
  return teacher;
}

beforeAll(async () => {
  // Four teachers, so four model workers, share this process: their answers all being right is
  // also the check that the native kernels keep no state shared between threads (oneDNN plans
  // were once process-wide, and answers came back wrong).
  directory = await mkdtemp(join(tmpdir(), 'ns-teacher-pool-'));
  const v1 = join(directory, 'v1.nsmodel');
  const v1b = join(directory, 'v1b.nsmodel');
  await writeFile(v1, (await makeTestArtifact({ version: 'v1', seed: 3 })).bytes);
  await writeFile(v1b, (await makeTestArtifact({ version: 'v1b', seed: 3 })).bytes);
  [one, two, doomed, narrow] = await Promise.all([
    start(v1, { maxBatchSize: 16 }),
    start(v1, { maxBatchSize: 16 }),
    start(v1b, { maxBatchSize: 1, maxInFlightBatches: 1, shutdownTimeoutMs: 1 }),
    start(v1, { maxBatchSize: 1, maxInFlightBatches: 1, maxQueueSize: 1, maxImagesPerRequest: 1 }),
  ]);
  reference = connectTeacher(one.port);
});

afterAll(async () => {
  reference?.close();
  await Promise.all([one, two, doomed, narrow].map((teacher) => teacher?.stop()));
  await rm(directory, { recursive: true, force: true });
});

/** What Predict answers for each image, in order (at most 256 images a call). */
async function predictDirectly(images: Uint8Array[]): Promise<number[][]> {
  const rows: number[][] = [];
  for (let first = 0; first < images.length; first += 256) {
    const response = await reference.predict({ images: images.slice(first, first + 256).map((i) => uint8Tensor(i)) });
    rows.push(...response.predictions.map((prediction) => prediction.probabilities));
  }
  return rows;
}

function expectPredictionsOf(answers: TeacherAnswer[], expected: number[][], versions: string[]): void {
  expect(answers).toHaveLength(expected.length);
  answers.forEach((answer, index) => {
    if (answer.kind !== 'prediction') throw new Error(`image ${index}: ${JSON.stringify(answer)}`);
    expect(versions).toContain(answer.version);
    const row = expected[index] ?? [];
    expect(answer.probabilities).toHaveLength(row.length);
    answer.probabilities.forEach((value, column) => expect(value).toBeCloseTo(row[column] ?? NaN, 5));
  });
}

async function counted(teacher: Teacher): Promise<number> {
  return (await teacher.metrics.images.get()).values.reduce((sum, value) => sum + value.value, 0);
}

async function unavailableAnswers(teacher: Teacher): Promise<number> {
  return (await teacher.metrics.requests.get()).values
    .filter((value) => value.labels['rpc'] === 'PredictStream' && value.labels['outcome'] === 'unavailable')
    .reduce((sum, value) => sum + value.value, 0);
}

/** A loopback port where nothing listens. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const bound = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (bound === null || typeof bound === 'string') throw new Error('no port');
  return bound.port;
}

describe('TeacherPool', () => {
  it('answers many concurrent predictions through one teacher as Predict does, naming the version', async () => {
    const pool = TeacherPool.connect([address(one)]);
    try {
      const images = pixelImages(64, 10);
      // Half of them share a caller id: stream-level ids stay unique anyway.
      const answers = await Promise.all(
        images.map((pixels, index) => pool.predict(uint8Tensor(pixels), index % 2 === 0 ? 'same-source' : undefined)),
      );
      expectPredictionsOf(answers, await predictDirectly(images), ['v1']);
      expect(pool.inFlight).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('accepts a dns:/// address (round_robin over what it resolves to)', async () => {
    const pool = TeacherPool.connect([`dns:///127.0.0.1:${one.port}`]);
    try {
      const images = pixelImages(8, 20);
      const answers = await Promise.all(images.map((pixels) => pool.predict(uint8Tensor(pixels))));
      expectPredictionsOf(answers, await predictDirectly(images), ['v1']);
    } finally {
      await pool.close();
    }
  });

  it('spreads the load over two replicas, least in flight first', async () => {
    const pool = TeacherPool.connect([address(one), address(two)]);
    try {
      await pool.waitForStreams(4);
      const [oneBefore, twoBefore] = await Promise.all([counted(one), counted(two)]);
      const images = pixelImages(200, 30);
      const answers = await Promise.all(images.map((pixels) => pool.predict(uint8Tensor(pixels))));
      const [oneAfter, twoAfter] = await Promise.all([counted(one), counted(two)]);
      expectPredictionsOf(answers, await predictDirectly(images), ['v1']);
      // 200 requests sent at once over 4 equally idle streams: 50 each, 100 per replica.
      expect(oneAfter - oneBefore).toBe(100);
      expect(twoAfter - twoBefore).toBe(100);
    } finally {
      await pool.close();
    }
  });

  it('resends the requests of a replica stopped under load: none lost, none rejected, each answered once', async () => {
    const pool = TeacherPool.connect([address(doomed), address(two)], { retryDelayMs: 50 });
    try {
      await pool.waitForStreams(4);
      const images = pixelImages(300, 40);
      const expected = await predictDirectly(images);
      const settled = new Array<number>(images.length).fill(0);
      let firstFromDoomed: () => void = () => undefined;
      const doomedAnswered = new Promise<void>((resolve) => (firstFromDoomed = resolve));
      const predictions = images.map((pixels, index) =>
        pool.predict(uint8Tensor(pixels), `img-${index}`).then((answer) => {
          settled[index] = (settled[index] ?? 0) + 1;
          if (answer.kind === 'prediction' && answer.version === 'v1b') firstFromDoomed();
          return answer;
        }),
      );
      // 150 requests went to the doomed replica, which computes one image at a time: stop it at its
      // first answer, with about 140 of them still unanswered.
      await doomedAnswered;
      const inFlightAtStop = pool.inFlight;
      await doomed.stop();
      const answers = await Promise.all(predictions);

      expect(inFlightAtStop).toBeGreaterThan(100);
      expectPredictionsOf(answers, expected, ['v1', 'v1b']);
      const fromDoomed = answers.filter((answer) => answer.version === 'v1b').length;
      expect(fromDoomed).toBeGreaterThan(0);
      expect(fromDoomed).toBeLessThan(150);
      expect(settled.every((count) => count === 1)).toBe(true);
      expect(pool.inFlight).toBe(0);
      expect(pool.openStreams).toBe(2);
    } finally {
      await pool.close();
    }
  });

  it('predicts through the reachable replica while another address refuses connections', async () => {
    const pool = TeacherPool.connect([`127.0.0.1:${await closedPort()}`, address(two)], { retryDelayMs: 50 });
    try {
      // Sent before any stream is open: they wait for the first one, not for the dead address.
      const images = pixelImages(20, 50);
      const answers = await Promise.all(images.map((pixels) => pool.predict(uint8Tensor(pixels))));
      expectPredictionsOf(answers, await predictDirectly(images), ['v1']);
      expect(pool.openStreams).toBe(2);
    } finally {
      await pool.close();
    }
  }, 10_000);

  it('returns the teacher refusing an image as a rejected answer with its code and message', async () => {
    const pool = TeacherPool.connect([address(one)]);
    try {
      const [good] = pixelImages(1, 60);
      const [rejected, predicted] = await Promise.all([
        pool.predict(uint8Tensor(new Uint8Array(32 * 32 * 3), [32, 32, 3]), 'wrong-shape'),
        pool.predict(uint8Tensor(good ?? new Uint8Array())),
      ]);
      expect(rejected).toMatchObject({ kind: 'rejected', code: status.INVALID_ARGUMENT, version: 'v1' });
      if (rejected?.kind !== 'rejected') throw new Error('expected a rejection');
      expect(rejected.reason).toMatch(/^image.*expected \[28, 28, 1\].*got \[32, 32, 3\]/);
      expect(predicted?.kind).toBe('prediction');
    } finally {
      await pool.close();
    }
  });

  it('retries requests the teacher answers UNAVAILABLE (queue full) until each is predicted', async () => {
    const before = await unavailableAnswers(narrow);
    const pool = TeacherPool.connect([address(narrow)], { retryDelayMs: 10 });
    try {
      const images = pixelImages(24, 70);
      const answers = await Promise.all(images.map((pixels) => pool.predict(uint8Tensor(pixels))));
      expectPredictionsOf(answers, await predictDirectly(images), ['v1']);
      expect((await unavailableAnswers(narrow)) - before).toBeGreaterThan(0);
      expect(pool.inFlight).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('holds calls beyond maxInFlight until a slot frees', async () => {
    const pool = TeacherPool.connect([address(one)], { maxInFlight: 4 });
    try {
      const images = pixelImages(40, 80);
      let largest = 0;
      const predictions = images.map((pixels) =>
        pool.predict(uint8Tensor(pixels)).then((answer) => {
          largest = Math.max(largest, pool.inFlight);
          return answer;
        }),
      );
      expect(pool.inFlight).toBe(4);
      expectPredictionsOf(await Promise.all(predictions), await predictDirectly(images), ['v1']);
      expect(largest).toBeLessThanOrEqual(4);
      expect(pool.inFlight).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('rejects pending, waiting and later calls once closed', async () => {
    const pool = TeacherPool.connect([address(one)], { maxInFlight: 4 });
    await pool.waitForStreams(2);
    // 4 sent on the streams, 6 waiting for a slot.
    const predictions = pixelImages(10, 90).map((pixels) => pool.predict(uint8Tensor(pixels)));
    await pool.close();
    const outcomes = await Promise.allSettled(predictions);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      if (outcome.status === 'rejected') expect(outcome.reason).toMatchObject({ code: 'UNAVAILABLE' });
    }
    expect(pool.inFlight).toBe(0);
    await expect(pool.predict(uint8Tensor(new Uint8Array(28 * 28)))).rejects.toThrow('teacher pool: closed');
    await expect(pool.waitForStreams()).rejects.toThrow('teacher pool: closed');
    await pool.close();
  });

  it('refuses bad options and an empty address list, naming the setting', () => {
    expect(() => TeacherPool.connect([])).toThrow('addresses: expected at least one teacher address');
    expect(() => TeacherPool.connect(['127.0.0.1:1'], { maxInFlight: 0 })).toThrow('maxInFlight: expected an integer');
    expect(() => TeacherPool.connect(['127.0.0.1:1'], { streamsPerAddress: 1.5 })).toThrow('streamsPerAddress');
  });
});
