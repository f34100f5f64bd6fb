// A model must answer through the teacher's Predict exactly as it evaluates in-process: the
// artifact carries how to feed it (preprocessing), and the service follows it. Served from an
// artifact file, scored on real Fashion-MNIST test images sent as PNGs and as raw uint8 tensors.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { sha256Hex } from '@noisystudent/core';

import {
  decodeModelArtifact,
  initBackend,
  loadFashionMnist,
  predictProbabilities,
  withFoldedModel,
  type EncodedArtifact,
  type LabeledImages,
} from '@noisystudent/ml';
import { trainedFashionArtifact } from '@noisystudent/ml/testing';
import { Dtype, type Image } from '@noisystudent/proto';
import { createLogger } from '@noisystudent/runtime';
import { startTeacher, teacherConfig, type Teacher } from '@noisystudent/teacher';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { connectTeacher, type TestTeacherClient } from './support/teacher-client.js';

const IMAGES = 2_000;
const BATCH = 250;
const PIXELS = 28 * 28;

let test: LabeledImages;
let directory: string;

beforeAll(async () => {
  await initBackend({ log: () => undefined });
  test = await loadFashionMnist('test');
  directory = await mkdtemp(join(tmpdir(), 'ns-predict-accuracy-'));
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** Top-1 accuracy, percent, of the folded inference copy the services use, computed in this process. */
async function inProcessAccuracy(artifact: EncodedArtifact): Promise<number> {
  const { model } = await decodeModelArtifact(artifact.bytes);
  const indices = Array.from({ length: IMAGES }, (_, index) => index);
  const probabilities = await withFoldedModel(model, (folded) => predictProbabilities(folded, test, indices));
  model.dispose();
  let correct = 0;
  for (let index = 0; index < IMAGES; index++) {
    const row = probabilities.subarray(index * 10, (index + 1) * 10);
    if (row.indexOf(Math.max(...row)) === test.labels[index]) correct++;
  }
  return (correct / IMAGES) * 100;
}

function pixelsOf(index: number): Buffer {
  return Buffer.from(test.images.subarray(index * PIXELS, (index + 1) * PIXELS));
}

async function asImage(index: number, form: 'png' | 'tensor'): Promise<Image> {
  if (form === 'tensor') {
    return { content: { $case: 'tensor', value: { shape: [28, 28, 1], dtype: Dtype.UINT8, data: pixelsOf(index) } } };
  }
  const png = await sharp(pixelsOf(index), { raw: { width: 28, height: 28, channels: 1 } })
    .png()
    .toBuffer();
  return { content: { $case: 'encoded', value: png } };
}

/** Top-1 accuracy, percent, of the answers `Predict` gives for the same images. */
async function servedAccuracy(client: TestTeacherClient, form: 'png' | 'tensor'): Promise<number> {
  let correct = 0;
  for (let start = 0; start < IMAGES; start += BATCH) {
    const images = await Promise.all(Array.from({ length: BATCH }, (_, offset) => asImage(start + offset, form)));
    const { predictions } = await client.predict({ images });
    predictions.forEach((prediction, offset) => {
      if (prediction.labelIndex === test.labels[start + offset]) correct++;
    });
  }
  return (correct / IMAGES) * 100;
}

async function serve<T>(artifact: EncodedArtifact, use: (client: TestTeacherClient) => Promise<T>): Promise<T> {
  const modelFile = join(directory, `${artifact.sha256}.nsmodel`);
  await writeFile(modelFile, artifact.bytes);
  const teacher: Teacher = await startTeacher(
    teacherConfig({ port: 0, metricsPort: 0, modelFile, maxImagesPerRequest: BATCH }, {}),
    createLogger({ service: 'teacher', level: 'silent' }),
  );
  const client = connectTeacher(teacher.port);
  try {
    await teacher.serving();
    return await use(client);
  } finally {
    client.close();
    await teacher.stop();
  }
}

/** The experiment's command, as a user runs it, from its TypeScript source. */
const EXPERIMENT_CLI = fileURLToPath(new URL('../packages/ml/src/experiment/cli.ts', import.meta.url));

describe('Predict answers as the model evaluates', () => {
  it('for the quick-trained test teacher, from PNGs and from raw tensors', async () => {
    const artifact = await trainedFashionArtifact({ version: 'quick' });
    const expected = await inProcessAccuracy(artifact);
    // Trained for seconds, but far above chance (10%): a model fed the wrong scale is not.
    expect(expected).toBeGreaterThan(50);
    const [png, tensor] = await serve(artifact, async (client) => [
      await servedAccuracy(client, 'png'),
      await servedAccuracy(client, 'tensor'),
    ]);
    expect(Math.abs(png - expected)).toBeLessThanOrEqual(0.1);
    expect(Math.abs(tensor - expected)).toBeLessThanOrEqual(0.1);
  });

  it('for the teacher the experiment writes (--save-teacher)', async () => {
    const path = join(directory, 'experiment-teacher.nsmodel');
    await promisify(execFile)(
      process.execPath,
      [
        '--import',
        'tsx',
        '--conditions',
        'source',
        EXPERIMENT_CLI,
        '--preset',
        'smoke',
        '--json',
        '--save-teacher',
        path,
      ],
      { maxBuffer: 16 * 1024 * 1024 },
    );
    const bytes = new Uint8Array(await readFile(path));
    const artifact = { bytes, sha256: sha256Hex(bytes) };
    const expected = await inProcessAccuracy(artifact);
    expect(expected).toBeGreaterThan(30);
    const tensor = await serve(artifact, (client) => servedAccuracy(client, 'tensor'));
    expect(Math.abs(tensor - expected)).toBeLessThanOrEqual(0.1);
  });
});
