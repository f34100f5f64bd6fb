// docs/architecture.md §7: every kind of bad request gets INVALID_ARGUMENT or RESOURCE_EXHAUSTED with a
// message naming the field and what was expected, and the service keeps serving, leaking nothing.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';

import { status, type ServiceError } from '@grpc/grpc-js';
import { initBackend } from '@noisystudent/ml';
import { makeTestArtifact, seededValues } from '@noisystudent/ml/testing';
import { Dtype, type Image, type PredictRequest, type Tensor } from '@noisystudent/proto';
import { createLogger } from '@noisystudent/runtime';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { connectTeacher, type TestTeacherClient } from '../../../test/support/teacher-client.js';
import { teacherConfig } from './config.js';
import { startTeacher, type Teacher } from './teacher.js';

const PIXELS = 28 * 28;
const MAX_IMAGES = 4;
const MAX_MESSAGE_BYTES = 64 * 1024;

/** Seeded bytes 0–255: pixels, or garbage where an image is expected. */
function seededBytes(count: number, seed: number): Buffer {
  return Buffer.from(Uint8Array.from(seededValues(count, seed), (value) => Math.floor((value + 1) * 127.5)));
}

const tensorImage = (tensor: Tensor): Image => ({ content: { $case: 'tensor', value: tensor } });
const goodImage = (seed: number): Image =>
  tensorImage({ shape: [28, 28, 1], dtype: Dtype.UINT8, data: seededBytes(PIXELS, seed) });
const encodedImage = (bytes: Buffer): Image => ({ content: { $case: 'encoded', value: bytes } });

/** 28×28×1 float32 pixels, little-endian, with `value` at element `index`. */
function floatsWith(index: number, value: number): Buffer {
  const data = Buffer.alloc(PIXELS * 4);
  for (let element = 0; element < PIXELS; element++) data.writeFloatLE(element % 256, element * 4);
  data.writeFloatLE(value, index * 4);
  return data;
}

/** The first half of a good PNG: a valid header, then the data stops. */
const png = await sharp(seededBytes(PIXELS, 11), { raw: { width: 28, height: 28, channels: 1 } })
  .png()
  .toBuffer();
const truncatedPng = png.subarray(0, Math.floor(png.length / 2));

/** CRC-32 of PNG chunks. */
function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/**
 * A grayscale PNG of zeros, `side` × `side`, with the first `rows` rows of data (all of them:
 * a complete image; fewer: what a small bomb declares and never holds).
 */
function zerosPng(side: number, rows = side): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(side, 0);
  header.writeUInt32BE(side, 4);
  header.set([8, 0, 0, 0, 0], 8); // 8-bit grayscale, deflate, no filter method, no interlace
  const scanlines = Buffer.alloc(rows * (side + 1)); // filter byte 0 and zeros, row after row
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(scanlines, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
/** 4,100 × 4,100 zeros, complete: 16.8 M pixels in a few kilobytes. */
const zeros4100 = zerosPng(4_100);
/** Declares 16,384 × 16,384 (268 M pixels, 256 MiB decoded) and holds 16 rows. */
const bomb16k = zerosPng(16_384, 16);

let directory: string;
let teacher: Teacher;
let client: TestTeacherClient;
let tensorsBefore: number;

beforeAll(async () => {
  await initBackend({ request: 'cpu', log: () => undefined });
  const artifact = await makeTestArtifact({ version: 'v1', seed: 3 });
  directory = await mkdtemp(join(tmpdir(), 'ns-teacher-bad-input-'));
  const modelFile = join(directory, 'v1.nsmodel');
  await writeFile(modelFile, artifact.bytes);
  const config = teacherConfig(
    {
      port: 0,
      metricsPort: 0,
      modelFile,
      maxBatchSize: 8,
      maxQueueDelayMs: 2,
      maxImagesPerRequest: MAX_IMAGES,
      maxMessageBytes: MAX_MESSAGE_BYTES,
    },
    {},
  );
  teacher = await startTeacher(config, createLogger({ service: 'teacher', level: 'silent' }));
  await teacher.serving('v1');
  client = connectTeacher(teacher.port);
  // One good request first, so whatever a first prediction keeps around is counted before, not after.
  await client.predict({ images: [goodImage(1)] });
  tensorsBefore = (await teacher.host.memory()).numTensors;
});

afterAll(async () => {
  client?.close();
  await teacher?.stop();
  await rm(directory, { recursive: true, force: true });
});

/** The error a Predict fails with; fails the test if it succeeds. */
async function refusal(request: Partial<PredictRequest>): Promise<ServiceError> {
  return client.predict(request).then(
    (response) => {
      throw new Error(`expected a refusal, got ${response.predictions.length} predictions`);
    },
    (error: ServiceError) => error,
  );
}

interface BadPredict {
  name: string;
  request: () => Partial<PredictRequest>;
  code: status;
  /** The substantive part of the message: field, then what was expected. */
  message: string;
}

const badPredicts: BadPredict[] = [
  {
    name: 'no images',
    request: () => ({ images: [] }),
    code: status.INVALID_ARGUMENT,
    message: 'images: expected at least one image, got none',
  },
  {
    name: 'more images than maxImagesPerRequest',
    request: () => ({ images: Array.from({ length: MAX_IMAGES + 1 }, (_, index) => goodImage(20 + index)) }),
    code: status.INVALID_ARGUMENT,
    message: `images: expected at most ${MAX_IMAGES} images per request, got ${MAX_IMAGES + 1}`,
  },
  {
    name: 'an image with neither encoded bytes nor a tensor',
    request: () => ({ images: [goodImage(30), { content: undefined }] }),
    code: status.INVALID_ARGUMENT,
    message: 'images[1]: expected an image: encoded PNG/JPEG bytes or a tensor, got neither',
  },
  {
    name: 'empty encoded bytes',
    request: () => ({ images: [goodImage(31), encodedImage(Buffer.alloc(0))] }),
    code: status.INVALID_ARGUMENT,
    message: 'images[1].encoded: expected PNG or JPEG bytes, got 0 bytes',
  },
  {
    name: 'random bytes that are no image',
    request: () => ({ images: [goodImage(32), encodedImage(seededBytes(512, 33))] }),
    code: status.INVALID_ARGUMENT,
    message: 'images[1].encoded: expected a PNG or JPEG image, got 512 bytes that did not decode',
  },
  {
    name: 'a truncated PNG',
    request: () => ({ images: [goodImage(34), encodedImage(truncatedPng)] }),
    code: status.INVALID_ARGUMENT,
    message: `images[1].encoded: expected a PNG or JPEG image, got ${truncatedPng.length} bytes that did not decode`,
  },
  {
    name: `a ${zeros4100.length}-byte PNG of 4100×4100 zeros, over the pixel limit`,
    request: () => ({ images: [goodImage(60), encodedImage(zeros4100)] }),
    code: status.INVALID_ARGUMENT,
    message:
      'images[1].encoded: expected an image of at most 16,777,216 pixels (e.g. 4096×4096), got a png of 4100×4100',
  },
  {
    name: `a ${bomb16k.length}-byte PNG declaring 16384×16384 zeros`,
    request: () => ({ images: [goodImage(61), encodedImage(bomb16k)] }),
    code: status.INVALID_ARGUMENT,
    message:
      'images[1].encoded: expected an image of at most 16,777,216 pixels (e.g. 4096×4096), got a png of 16384×16384',
  },
  {
    name: 'a 32×32×3 tensor',
    request: () => ({
      images: [goodImage(35), tensorImage({ shape: [32, 32, 3], dtype: Dtype.UINT8, data: seededBytes(3072, 36) })],
    }),
    code: status.INVALID_ARGUMENT,
    message: "images[1].tensor.shape: expected [28, 28, 1] (the model's height, width, channels), got [32, 32, 3]",
  },
  {
    name: 'a 2-D tensor',
    request: () => ({
      images: [goodImage(37), tensorImage({ shape: [28, 28], dtype: Dtype.UINT8, data: seededBytes(PIXELS, 38) })],
    }),
    code: status.INVALID_ARGUMENT,
    message: "images[1].tensor.shape: expected [28, 28, 1] (the model's height, width, channels), got [28, 28]",
  },
  {
    name: 'an INT32 tensor',
    request: () => ({
      images: [goodImage(39), tensorImage({ shape: [28, 28, 1], dtype: Dtype.INT32, data: Buffer.alloc(PIXELS * 4) })],
    }),
    code: status.INVALID_ARGUMENT,
    message: 'images[1].tensor.dtype: expected UINT8 or FLOAT32, got DTYPE_INT32',
  },
  {
    name: 'a tensor without a dtype',
    request: () => ({
      images: [
        goodImage(40),
        tensorImage({ shape: [28, 28, 1], dtype: Dtype.UNSPECIFIED, data: seededBytes(PIXELS, 41) }),
      ],
    }),
    code: status.INVALID_ARGUMENT,
    message: 'images[1].tensor.dtype: expected UINT8 or FLOAT32, got DTYPE_UNSPECIFIED',
  },
  {
    name: 'uint8 data one byte short of the shape',
    request: () => ({
      images: [
        goodImage(42),
        tensorImage({ shape: [28, 28, 1], dtype: Dtype.UINT8, data: seededBytes(PIXELS - 1, 43) }),
      ],
    }),
    code: status.INVALID_ARGUMENT,
    message: `images[1].tensor.data: expected ${PIXELS} bytes (28×28×1 uint8), got ${PIXELS - 1}`,
  },
  {
    name: 'float32 data the size of uint8 data',
    request: () => ({
      images: [goodImage(44), tensorImage({ shape: [28, 28, 1], dtype: Dtype.FLOAT32, data: seededBytes(PIXELS, 45) })],
    }),
    code: status.INVALID_ARGUMENT,
    message: `images[1].tensor.data: expected ${PIXELS * 4} bytes (28×28×1 float32), got ${PIXELS}`,
  },
  {
    name: 'float32 data with a NaN',
    request: () => ({
      images: [goodImage(46), tensorImage({ shape: [28, 28, 1], dtype: Dtype.FLOAT32, data: floatsWith(5, NaN) })],
    }),
    code: status.INVALID_ARGUMENT,
    message: 'images[1].tensor.data: expected finite pixel values, got NaN at element 5',
  },
  {
    name: 'float32 data with +Infinity',
    request: () => ({
      images: [
        goodImage(47),
        tensorImage({ shape: [28, 28, 1], dtype: Dtype.FLOAT32, data: floatsWith(300, Infinity) }),
      ],
    }),
    code: status.INVALID_ARGUMENT,
    message: 'images[1].tensor.data: expected finite pixel values, got Infinity at element 300',
  },
  {
    name: 'float32 data with -Infinity',
    request: () => ({
      images: [
        goodImage(48),
        tensorImage({ shape: [28, 28, 1], dtype: Dtype.FLOAT32, data: floatsWith(PIXELS - 1, -Infinity) }),
      ],
    }),
    code: status.INVALID_ARGUMENT,
    message: `images[1].tensor.data: expected finite pixel values, got -Infinity at element ${PIXELS - 1}`,
  },
  {
    name: 'top_k larger than the number of classes',
    request: () => ({ images: [goodImage(49)], topK: 11 }),
    code: status.INVALID_ARGUMENT,
    message: "top_k: expected at most 10 (the model's outputs), got 11",
  },
];

describe('the teacher refusing bad input', () => {
  it.each(badPredicts)('refuses Predict with $name', async ({ request, code, message }) => {
    const error = await refusal(request());
    expect({ code: error.code, details: error.details }).toEqual({ code, details: expect.stringContaining(message) });
  });

  it('refuses a message over maxMessageBytes with RESOURCE_EXHAUSTED before decoding it', async () => {
    const error = await refusal({ images: [encodedImage(seededBytes(100 * 1024, 50))] });
    expect(error.code).toBe(status.RESOURCE_EXHAUSTED);
    // grpc-js's own message: the size received against the limit.
    expect(error.details).toMatch(new RegExp(`larger than max \\(\\d+ vs ${MAX_MESSAGE_BYTES}\\)`));
  });

  it('answers every request of a stream mixing good and bad ones, and ends it normally', async () => {
    const answers = await client.predictStream([
      { id: 'good-0', image: goodImage(60), topK: 2 },
      { id: '', image: goodImage(61) },
      {
        id: 'bad-shape',
        image: tensorImage({ shape: [32, 32, 3], dtype: Dtype.UINT8, data: seededBytes(3072, 62) }),
      },
      { id: 'nan', image: tensorImage({ shape: [28, 28, 1], dtype: Dtype.FLOAT32, data: floatsWith(7, NaN) }) },
      { id: 'no-image' },
      { id: 'big-top-k', image: goodImage(63), topK: 11 },
      { id: 'good-1', image: goodImage(64) },
    ]);
    expect(answers).toHaveLength(7);
    const byId = new Map(answers.map((answer) => [answer.id, answer]));
    expect([...byId.keys()].sort()).toEqual(['', 'bad-shape', 'big-top-k', 'good-0', 'good-1', 'nan', 'no-image']);

    for (const id of ['good-0', 'good-1']) {
      const answer = byId.get(id);
      expect(answer?.modelVersion).toBe('v1');
      if (answer?.result?.$case !== 'prediction')
        throw new Error(`${id}: expected a prediction, got ${JSON.stringify(answer)}`);
      expect(answer.result.value.probabilities).toHaveLength(10);
      expect(answer.result.value.probabilities.reduce((sum, value) => sum + value, 0)).toBeCloseTo(1, 4);
    }
    expect(byId.get('good-0')?.result).toMatchObject({ $case: 'prediction', value: { topK: [{}, {}] } });

    const refusals: Array<[id: string, message: string]> = [
      ['', 'id: expected a non-empty request id, got ""'],
      ['bad-shape', "image.tensor.shape: expected [28, 28, 1] (the model's height, width, channels), got [32, 32, 3]"],
      ['nan', 'image.tensor.data: expected finite pixel values, got NaN at element 7'],
      ['no-image', 'image: expected an image: encoded PNG/JPEG bytes or a tensor, got neither'],
      ['big-top-k', "top_k: expected at most 10 (the model's outputs), got 11"],
    ];
    for (const [id, message] of refusals) {
      expect(byId.get(id)?.result, `answer to "${id}"`).toEqual({
        $case: 'error',
        value: { code: status.INVALID_ARGUMENT, message: expect.stringContaining(message) },
      });
    }
  });

  it('still describes its model', async () => {
    const info = await client.modelInfo();
    expect(info.metadata?.version).toBe('v1');
    expect(info.metadata?.inputShape).toEqual([28, 28, 1]);
  });
});

describe('the teacher after the bad input', () => {
  it('still predicts, is SERVING, leaked no tensor and failed nothing as INTERNAL', async () => {
    const response = await client.predict({ images: [goodImage(70), goodImage(71)], topK: 1 });
    expect(response.modelVersion).toBe('v1');
    expect(response.predictions).toHaveLength(2);
    expect(await client.health()).toBe('SERVING');
    expect(await client.health('noisystudent.v1.Teacher')).toBe('SERVING');
    // The model's weights are tensors: a count of 0 would mean we measured the wrong thread.
    expect(tensorsBefore).toBeGreaterThan(0);
    expect((await teacher.host.memory()).numTensors).toBe(tensorsBefore);
    const outcomes = (await teacher.metrics.requests.get()).values;
    expect(outcomes.filter((value) => value.labels.outcome === 'internal')).toEqual([]);
    // Every bad Predict the handler saw was counted as INVALID_ARGUMENT (the oversize one never reached it).
    const invalid = outcomes.find(
      (value) => value.labels.rpc === 'Predict' && value.labels.outcome === 'invalid_argument',
    );
    expect(invalid?.value).toBe(badPredicts.length);
  });
});
