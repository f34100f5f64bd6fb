import { once } from 'node:events';

import { status } from '@grpc/grpc-js';
import * as tf from '@tensorflow/tfjs-core';
import { decodeModelArtifact, initBackend, PIXEL_SCALE } from '@noisystudent/ml';
import { makeTestArtifact, seededValues } from '@noisystudent/ml/testing';
import { Dtype, type Image, type PredictResponse } from '@noisystudent/proto';
import { openRegistry, type Registry } from '@noisystudent/registry';
import { startNatsServer, type NatsServer } from '@noisystudent/registry/testing';
import { createLogger } from '@noisystudent/runtime';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { connectTeacher, type TestTeacherClient } from '../../../test/support/teacher-client.js';
import { teacherConfig } from './config.js';
import { startTeacher, type Teacher } from './teacher.js';

const pixels = Uint8Array.from(seededValues(28 * 28, 77), (value) => Math.floor((value + 1) * 127.5));
const image: Image = {
  content: { $case: 'tensor', value: { shape: [28, 28, 1], dtype: Dtype.UINT8, data: Buffer.from(pixels) } },
};

let server: NatsServer;
let nc: NatsConnection;
let registry: Registry;
let teacher: Teacher;
let client: TestTeacherClient;
/** What each version answers for `image`, computed in this process. */
const expectedByVersion = new Map<string, number[]>();

async function storeVersion(version: string, seed: number): Promise<void> {
  const artifact = await makeTestArtifact({ version, seed });
  const { model } = await decodeModelArtifact(artifact.bytes);
  const row = tf.tidy(() =>
    Array.from(
      (
        model.predictOnBatch(
          tf.tensor4d(
            Float32Array.from(pixels, (pixel) => pixel * PIXEL_SCALE),
            [1, 28, 28, 1],
          ),
        ) as tf.Tensor
      ).dataSync(),
    ),
  );
  model.dispose();
  expectedByVersion.set(version, row);
  await registry.putArtifact(artifact.bytes, version);
}

async function promote(version: string): Promise<void> {
  const current = await registry.readTeacher();
  await registry.promote({ version, promotedBy: 'test', reason: 'student beat teacher' }, current?.revision ?? 0);
}

beforeAll(async () => {
  await initBackend({ request: 'cpu', log: () => undefined });
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  registry = await openRegistry(nc, { prefix: 'hotswap' });
  await Promise.all([storeVersion('v1', 1), storeVersion('v2', 2)]);
  const config = teacherConfig(
    { port: 0, metricsPort: 0, natsUrl: server.url, prefix: 'hotswap', maxBatchSize: 4, maxQueueDelayMs: 1 },
    {},
  );
  teacher = await startTeacher(config, createLogger({ service: 'teacher', level: 'silent' }));
  client = connectTeacher(teacher.port);
});

afterAll(async () => {
  client?.close();
  await teacher?.stop();
  await nc?.close();
  await server?.stop();
});

/** Predict calls the service counted as failed, whatever the reason. */
async function failedPredicts(): Promise<number> {
  return (await teacher.metrics.requests.get()).values
    .filter((value) => value.labels['rpc'] === 'Predict' && value.labels['outcome'] !== 'ok')
    .reduce((sum, value) => sum + value.value, 0);
}

function expectAnswerOf(response: PredictResponse): void {
  const expected = expectedByVersion.get(response.modelVersion);
  if (expected === undefined) throw new Error(`answer from unknown version ${response.modelVersion}`);
  const actual = response.predictions[0]?.probabilities ?? [];
  actual.forEach((value, index) => expect(value).toBeCloseTo(expected[index] ?? NaN, 4));
}

describe('the teacher following the registry', () => {
  it('starts NOT_SERVING with an empty registry and answers Predict with UNAVAILABLE', async () => {
    expect(await client.health()).toBe('NOT_SERVING');
    await expect(client.predict({ images: [image] })).rejects.toMatchObject({
      code: status.UNAVAILABLE,
      details: expect.stringContaining('no model yet'),
    });
    await expect(client.modelInfo()).rejects.toMatchObject({ code: status.UNAVAILABLE });
  });

  it('serves the first version as soon as it is promoted', async () => {
    await promote('v1');
    await teacher.serving('v1');
    expect(await client.health()).toBe('SERVING');
    const response = await client.predict({ images: [image] });
    expect(response.modelVersion).toBe('v1');
    expectAnswerOf(response);
  });

  it('hot-swaps to a promoted version while clients keep sending: no failure, each answer names its model', async () => {
    const failedBefore = await failedPredicts();
    let swapped = false;
    const callers = Array.from({ length: 4 }, async () => {
      const versions: string[] = [];
      // Each caller keeps sending until the swap happened and it has seen two answers from v2.
      while (!swapped || versions.filter((version) => version === 'v2').length < 2) {
        const response = await client.predict({ images: [image, image] });
        expectAnswerOf(response);
        versions.push(response.modelVersion);
      }
      return versions;
    });
    const promoted = (async () => {
      await client.predict({ images: [image] });
      await promote('v2');
      await teacher.serving('v2');
      swapped = true;
    })();
    const [seen] = await Promise.all([Promise.all(callers), promoted]);
    for (const versions of seen) {
      // v1 until the switch, v2 after it: never back.
      const firstV2 = versions.indexOf('v2');
      expect(firstV2).toBeGreaterThanOrEqual(0);
      expect(versions.slice(firstV2).every((version) => version === 'v2')).toBe(true);
    }
    expect(await failedPredicts()).toBe(failedBefore);
    // The old model was disposed once its batches finished.
    expect((await teacher.host.memory()).models).toBe(1);
  });

  it('refuses an artifact that does not load and keeps serving the previous version', async () => {
    await registry.putArtifact(
      Uint8Array.from({ length: 4096 }, (_, index) => (index * 31) % 251),
      'v3',
    );
    const refused = once(teacher.events, 'refused');
    await promote('v3');
    const [version, error] = (await refused) as [string, Error];
    expect(version).toBe('v3');
    // Random bytes may even parse as protobuf; the artifact checks refuse them either way.
    expect(error.message).toMatch(/^artifact: refused \(/);
    const response = await client.predict({ images: [image] });
    expect(response.modelVersion).toBe('v2');
    expectAnswerOf(response);
    expect(await client.health()).toBe('SERVING');
    const failures = (await teacher.metrics.refusedModels.get()).values[0]?.value;
    expect(failures).toBe(1);
  });

  it('follows a rollback', async () => {
    const current = await registry.readTeacher();
    await registry.rollback('v1', current?.revision ?? 0, 'test');
    await teacher.serving('v1');
    const response = await client.predict({ images: [image] });
    expect(response.modelVersion).toBe('v1');
    expectAnswerOf(response);
  });
});
