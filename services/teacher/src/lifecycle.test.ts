// The parts of the teacher every deployment relies on besides Predict: reflection, /metrics,
// and a graceful shutdown that finishes what it accepted.
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { credentials, loadPackageDefinition, status, type Client, type ClientDuplexStream } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { makeTestArtifact, seededValues } from '@noisystudent/ml/testing';
import { Dtype, type Image, type PredictStreamRequest, type PredictStreamResponse } from '@noisystudent/proto';
import { createLogger } from '@noisystudent/runtime';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { connectTeacher } from '../../../test/support/teacher-client.js';
import { teacherConfig } from './config.js';
import { startTeacher, type Teacher } from './teacher.js';

const image: Image = {
  content: {
    $case: 'tensor',
    value: {
      shape: [28, 28, 1],
      dtype: Dtype.UINT8,
      data: Buffer.from(Uint8Array.from(seededValues(784, 9), (value) => Math.floor((value + 1) * 127.5))),
    },
  },
};

let directory: string;
let modelFile: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'ns-teacher-lifecycle-'));
  modelFile = join(directory, 'v1.nsmodel');
  await writeFile(modelFile, (await makeTestArtifact({ version: 'v1' })).bytes);
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

async function start(overrides: Record<string, unknown> = {}): Promise<Teacher> {
  const config = teacherConfig({ port: 0, metricsPort: 0, modelFile, ...overrides }, {});
  const teacher = await startTeacher(config, createLogger({ service: 'teacher', level: 'silent' }));
  await teacher.serving('v1');
  return teacher;
}

type PredictStreamCall = ClientDuplexStream<PredictStreamRequest, PredictStreamResponse>;

/** The answers of a PredictStream as they arrive; `first(n)` waits for n of them, `ended` for the server's end. */
function collectAnswers(stream: PredictStreamCall): {
  first(count: number): Promise<PredictStreamResponse[]>;
  ended: Promise<void>;
} {
  const answers: PredictStreamResponse[] = [];
  stream.on('data', (answer: PredictStreamResponse) => answers.push(answer));
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  // A test that fails cancels the stream in its cleanup; that error is not a second failure.
  ended.catch(() => undefined);
  return {
    ended,
    first: async (count) => {
      while (answers.length < count) await once(stream, 'data');
      return answers.slice(0, count);
    },
  };
}

type ReflectionStream = ClientDuplexStream<
  { listServices: string },
  { listServicesResponse?: { service: Array<{ name: string }> } }
>;

function listServices(port: number): Promise<string[]> {
  const reflectionDirectory = dirname(createRequire(import.meta.url).resolve('@grpc/reflection/package.json'));
  const definition = loadPackageDefinition(
    loadSync('grpc/reflection/v1/reflection.proto', { includeDirs: [join(reflectionDirectory, 'build', 'proto')] }),
  ) as unknown as {
    grpc: {
      reflection: {
        v1: {
          ServerReflection: new (
            address: string,
            creds: unknown,
          ) => Client & { serverReflectionInfo(): ReflectionStream };
        };
      };
    };
  };
  const client = new definition.grpc.reflection.v1.ServerReflection(`127.0.0.1:${port}`, credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const stream = client.serverReflectionInfo();
    stream.on('data', (response) => {
      resolve((response.listServicesResponse?.service ?? []).map((service: { name: string }) => service.name).sort());
      stream.end();
      client.close();
    });
    stream.on('error', reject);
    stream.write({ listServices: '' });
  });
}

describe('the teacher service', () => {
  it('offers reflection and Prometheus metrics', async () => {
    const teacher = await start();
    const client = connectTeacher(teacher.port);
    try {
      expect(await listServices(teacher.port)).toEqual(
        expect.arrayContaining(['grpc.health.v1.Health', 'noisystudent.v1.Teacher']),
      );
      await client.predict({ images: [image, image, image] });
      const response = await fetch(`http://127.0.0.1:${teacher.metricsPort}/metrics`);
      expect(response.status).toBe(200);
      const text = await response.text();
      expect(text).toContain('teacher_requests_total{rpc="Predict",outcome="ok"} 1');
      expect(text).toContain('teacher_images_total 3');
      expect(text).toContain('teacher_model_version_info{version="v1"} 1');
      expect(text).toMatch(/^teacher_batch_size_count [1-9]/m);
      expect(text).toMatch(/^teacher_tensors \d+/m);
      expect((await fetch(`http://127.0.0.1:${teacher.metricsPort}/other`)).status).toBe(404);
    } finally {
      client.close();
      await teacher.stop();
    }
  });

  it('shuts down gracefully: requests already accepted are answered, later ones refused', async () => {
    // A long queue delay keeps the accepted requests waiting in the queue when stop() begins; a
    // long shutdown timeout lets the open stream below hold stop() for as long as the test needs.
    const teacher = await start({
      maxQueueDelayMs: 600_000,
      waitWhenIdle: true,
      maxBatchSize: 64,
      shutdownTimeoutMs: 60_000,
    });
    const client = connectTeacher(teacher.port);
    const stream: PredictStreamCall = client.raw.predictStream();
    const answers = collectAnswers(stream);
    try {
      const accepted = Array.from({ length: 5 }, () => client.predict({ images: [image] }));
      for (const id of ['s0', 's1', 's2']) stream.write({ id, image, topK: 0 });
      // Wait until all eight are queued (the event loop turns while the calls arrive).
      await vi.waitFor(() => expect(teacher.queuedImages()).toBe(8), { timeout: 10_000, interval: 5 });
      let stopped = false;
      const stopping = teacher.stop().then(() => (stopped = true));
      const answered = await Promise.all(accepted);
      expect(answered.map((answer) => answer.modelVersion)).toEqual(['v1', 'v1', 'v1', 'v1', 'v1']);
      const streamed = await answers.first(3);
      expect(streamed.map((answer) => [answer.id, answer.result?.$case, answer.modelVersion]).sort()).toEqual([
        ['s0', 'prediction', 'v1'],
        ['s1', 'prediction', 'v1'],
        ['s2', 'prediction', 'v1'],
      ]);

      // stop() now waits for the stream, still open: new work is refused meanwhile, on the open
      // stream and on a new connection, and none of it reaches the model.
      expect(stopped).toBe(false);
      stream.write({ id: 'late', image, topK: 0 });
      const late = (await answers.first(4))[3];
      expect(late).toEqual({
        id: 'late',
        result: {
          $case: 'error',
          value: { code: status.UNAVAILABLE, message: 'teacher: shutting down; send the request to another replica' },
        },
        modelVersion: 'v1',
      });
      const newcomer = connectTeacher(teacher.port);
      await expect(newcomer.predict({ images: [image] }, 5_000)).rejects.toMatchObject({ code: status.UNAVAILABLE });
      newcomer.close();
      expect(stopped).toBe(false);
      expect((await teacher.metrics.images.get()).values[0]?.value).toBe(8);

      stream.end();
      await answers.ended;
      await stopping;
      await expect(client.predict({ images: [image] }, 2_000)).rejects.toMatchObject({ code: status.UNAVAILABLE });
    } finally {
      stream.cancel();
      client.close();
      await teacher.stop();
    }
  });
});
