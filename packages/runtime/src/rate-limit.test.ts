// Per-caller rate limits: the token bucket on a controlled clock, then on a real grpc-js server:
// a unary call over the limit is refused with a retry hint, a stream is slowed instead, and each
// token has a bucket of its own.
import {
  credentials,
  Metadata,
  status,
  type sendUnaryData,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServiceError,
} from '@grpc/grpc-js';
import { newToken } from '@noisystudent/core';
import type { PredictStreamRequest } from '@noisystudent/proto';
import {
  PredictRequest,
  PredictResponse,
  TeacherClient,
  TeacherService,
  PredictStreamResponse,
} from '@noisystudent/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startGrpcServer, type GrpcServer } from './grpc-server.js';
import { grpcSecurity } from './grpc-security.js';
import { TokenBucket } from './rate-limit.js';

describe('TokenBucket', () => {
  it('spends its burst, then refills at its rate, and says how long to wait', () => {
    let now = 0;
    const bucket = new TokenBucket(10, 4, () => now);
    expect(bucket.take(3)).toBe(0);
    expect(bucket.take(2)).toBe(100); // 1 left: one more arrives in 100 ms
    now = 100;
    expect(bucket.take(2)).toBe(0);
    now = 10_000;
    expect(bucket.take(4)).toBe(0); // saved up to the burst, no more
    expect(bucket.take(1)).toBe(100);
  });
});

const limited: string[] = [];
let server: GrpcServer;
let client: TeacherClient;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  const a = newToken('app-a', ['predict']);
  const b = newToken('app-b', ['predict']);
  tokens['a'] = a.token;
  tokens['b'] = b.token;
  const security = await grpcSecurity({ host: '127.0.0.1', tokens: `${a.line};${b.line}`, insecure: false });
  server = await startGrpcServer(
    {
      port: 0,
      security,
      rateLimit: { ratePerSecond: 10, burst: 4, onLimited: (method, caller) => limited.push(`${method} ${caller}`) },
    },
    [
      {
        name: 'noisystudent.v1.Teacher',
        definition: TeacherService,
        roles: { Predict: ['predict'], PredictStream: ['predict'] },
        rateLimited: {
          Predict: { kind: 'unary', units: (request) => (request as PredictRequest).images.length },
          PredictStream: { kind: 'stream', units: () => 1 },
        },
        implementation: {
          predict: (_call: ServerUnaryCall<PredictRequest, PredictResponse>, done: sendUnaryData<PredictResponse>) =>
            done(null, PredictResponse.fromPartial({ modelVersion: 'v1' })),
          predictStream: (call: ServerDuplexStream<PredictStreamRequest, PredictStreamResponse>) => {
            call.on('data', (request: PredictStreamRequest) =>
              call.write(PredictStreamResponse.fromPartial({ id: request.id })),
            );
            call.on('end', () => call.end());
          },
        },
      },
    ],
  );
  client = new TeacherClient(`127.0.0.1:${server.port}`, credentials.createInsecure());
});

afterAll(() => {
  client?.close();
  server?.server.forceShutdown();
});

function bearer(token: string | undefined): Metadata {
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${token ?? ''}`);
  return metadata;
}

function predict(token: string | undefined, images: number): Promise<ServiceError | undefined> {
  const request = PredictRequest.fromPartial({ images: Array.from({ length: images }, () => ({})) });
  return new Promise((resolve) => client.predict(request, bearer(token), (error) => resolve(error ?? undefined)));
}

describe('rate limits on a server', () => {
  it('refuses a Predict over the caller’s limit with RESOURCE_EXHAUSTED and when to retry; each token has its own', async () => {
    expect(await predict(tokens['a'], 3)).toBeUndefined();
    const refused = await predict(tokens['a'], 3);
    expect(refused?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(refused?.details).toMatch(
      /^Predict: token app-a may send 10 images\/s \(bursts of 4\); retry in 0\.\d\d s$/,
    );
    const retryAfter = Number(refused?.metadata.get('retry-after-ms')[0]);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(300);
    // Another token is not held back by app-a.
    expect(await predict(tokens['b'], 4)).toBeUndefined();
    // After the hint, app-a's request passes.
    await new Promise((resolve) => setTimeout(resolve, retryAfter + 20));
    expect(await predict(tokens['a'], 3)).toBeUndefined();
    expect(limited).toEqual(['Predict token app-a']);
  });

  it('reads a stream no faster than the limit instead of refusing it', async () => {
    await new Promise((resolve) => setTimeout(resolve, 500)); // app-b's bucket full again
    const started = performance.now();
    const answers = await new Promise<number>((resolve, reject) => {
      let count = 0;
      const stream = client.predictStream(bearer(tokens['b']));
      stream.on('data', () => count++);
      stream.on('error', reject);
      stream.on('end', () => resolve(count));
      for (let index = 0; index < 12; index++) stream.write({ id: String(index), image: undefined, topK: 0 });
      stream.end();
    });
    const seconds = (performance.now() - started) / 1000;
    expect(answers).toBe(12);
    // 4 at once, then 8 more at 10 a second: at least 0.7 s.
    expect(seconds).toBeGreaterThan(0.7);
    expect(seconds).toBeLessThan(3);
  });
});
