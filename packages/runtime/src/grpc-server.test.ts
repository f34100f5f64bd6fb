import { createServer } from 'node:net';

import {
  Client,
  credentials,
  Metadata,
  status,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServiceError,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import {
  GetModelInfoResponse,
  ModelMetadata,
  TeacherClient,
  TeacherService,
  type GetModelInfoRequest,
} from '@noisystudent/proto';
import { afterEach, describe, expect, it } from 'vitest';

import { startGrpcServer, type GrpcServer, type GrpcServerOptions } from './grpc-server.js';
import { HealthClient } from './health-client.js';

const SERVICE = 'noisystudent.v1.Teacher';

/**
 * A Teacher whose GetModelInfo answers only when the test releases it: a call that stays running
 * for as long as a shutdown test needs. `entered` resolves when a call reaches the handler.
 */
function heldTeacher() {
  let enter: () => void = () => undefined;
  let release: () => void = () => undefined;
  const entered = new Promise<void>((resolve) => (enter = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  let cancelled = false;
  const implementation: UntypedServiceImplementation = {
    getModelInfo(
      call: ServerUnaryCall<GetModelInfoRequest, GetModelInfoResponse>,
      callback: sendUnaryData<GetModelInfoResponse>,
    ): void {
      let answered = false;
      // grpc-js also says 'cancelled' when the stream closes after the answer: only before it counts.
      call.on('cancelled', () => (cancelled ||= !answered));
      enter();
      void released.then(() => {
        answered = true;
        callback(null, GetModelInfoResponse.fromPartial({ metadata: ModelMetadata.fromPartial({ version: 'v9' }) }));
      });
    },
  };
  return { implementation, entered, release, cancelledBeforeAnswer: () => cancelled };
}

function modelInfo(client: TeacherClient, timeoutMs = 10_000): Promise<GetModelInfoResponse> {
  return new Promise((resolve, reject) =>
    client.getModelInfo(
      {},
      new Metadata(),
      { deadline: Date.now() + timeoutMs },
      (error: ServiceError | null, response) => (error === null ? resolve(response) : reject(error)),
    ),
  );
}

const opened: Array<{ close(): void }> = [];
const servers: GrpcServer[] = [];

async function start(implementation: UntypedServiceImplementation, options: Partial<GrpcServerOptions> = {}) {
  const server = await startGrpcServer({ port: 0, ...options }, [
    { name: SERVICE, definition: TeacherService, implementation },
  ]);
  servers.push(server);
  return server;
}

function teacherClient(port: number): TeacherClient {
  const client = new TeacherClient(`127.0.0.1:${port}`, credentials.createInsecure());
  opened.push(client);
  return client;
}

function healthClient(port: number): HealthClient {
  const client = new HealthClient(`127.0.0.1:${port}`);
  opened.push(client);
  return client;
}

afterEach(() => {
  for (const client of opened.splice(0)) client.close();
  for (const server of servers.splice(0)) server.server.forceShutdown();
});

describe('startGrpcServer', () => {
  it('answers a request frame that is no protobuf of its type INVALID_ARGUMENT, not INTERNAL, and keeps serving', async () => {
    const held = heldTeacher();
    held.release();
    const server = await start(held.implementation);
    const raw = new Client(`127.0.0.1:${server.port}`, credentials.createInsecure());
    opened.push(raw);
    const send = (bytes: Buffer): Promise<ServiceError | null> =>
      new Promise((resolve) =>
        raw.makeUnaryRequest(
          '/noisystudent.v1.Teacher/GetModelInfo',
          (value: Buffer) => value,
          (value: Buffer) => value,
          bytes,
          (error) => resolve(error),
        ),
      );
    // Field 1 as a length-delimited value running past the end: not a GetModelInfoRequest.
    const error = await send(Buffer.from([0x0a, 0x40, 0x01]));
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toMatch(
      /^request: expected a GetModelInfo request protobuf, got 3 bytes that did not decode \(/,
    );
    expect((await modelInfo(teacherClient(server.port))).metadata?.version).toBe('v9');
  });

  it('reports NOT_SERVING for the server and each service until the service says SERVING', async () => {
    const server = await start({});
    const health = healthClient(server.port);
    expect(await health.check('')).toBe('NOT_SERVING');
    expect(await health.check(SERVICE)).toBe('NOT_SERVING');
    server.setServing('SERVING');
    expect(await health.check('')).toBe('SERVING');
    expect(await health.check(SERVICE)).toBe('SERVING');
    server.setServing('NOT_SERVING');
    expect(await health.check(SERVICE)).toBe('NOT_SERVING');
    await expect(health.check('noisystudent.v1.Nothing')).rejects.toMatchObject({ code: status.NOT_FOUND });
  });

  it('serves the registered service, refuses a request over maxReceiveMessageBytes, leaves other methods UNIMPLEMENTED', async () => {
    const held = heldTeacher();
    held.release();
    const server = await start(held.implementation, { maxReceiveMessageBytes: 1024 });
    const client = teacherClient(server.port);
    expect((await modelInfo(client)).metadata?.version).toBe('v9');
    const tooLarge = {
      images: [{ content: { $case: 'encoded' as const, value: Buffer.alloc(4096) } }],
      topK: 0,
    };
    await expect(
      new Promise((resolve, reject) =>
        client.predict(tooLarge, (error, response) => (error === null ? resolve(response) : reject(error))),
      ),
    ).rejects.toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    await expect(
      new Promise((resolve, reject) =>
        client.predict({ images: [], topK: 0 }, (error, response) =>
          error === null ? resolve(response) : reject(error),
        ),
      ),
    ).rejects.toMatchObject({ code: status.UNIMPLEMENTED });
  });

  it('shuts down gracefully: a running call finishes, new calls are refused meanwhile', async () => {
    const held = heldTeacher();
    const server = await start(held.implementation);
    const client = teacherClient(server.port);
    const running = modelInfo(client);
    await held.entered;
    let outcome: string | undefined;
    const shutdown = server.shutdown(60_000).then((result) => (outcome = result));
    await expect(modelInfo(teacherClient(server.port), 5_000)).rejects.toMatchObject({ code: status.UNAVAILABLE });
    await expect(modelInfo(client, 5_000)).rejects.toMatchObject({ code: status.UNAVAILABLE });
    // Still waiting for the running call.
    expect(outcome).toBeUndefined();
    held.release();
    expect((await running).metadata?.version).toBe('v9');
    await shutdown;
    expect(outcome).toBe('graceful');
    expect(held.cancelledBeforeAnswer()).toBe(false);
  });

  it('forces shutdown after timeoutMs: the running call is cancelled on both sides', async () => {
    const held = heldTeacher();
    const server = await start(held.implementation);
    const running = modelInfo(teacherClient(server.port));
    await held.entered;
    expect(await server.shutdown(50)).toBe('forced');
    await expect(running).rejects.toMatchObject({ code: status.CANCELLED });
    expect(held.cancelledBeforeAnswer()).toBe(true);
    held.release();
  });

  it('reports a port it cannot listen on, naming host and port', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const address = blocker.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    try {
      await expect(start({}, { port: address.port })).rejects.toThrow(
        new RegExp(`^listen 127\\.0\\.0\\.1:${address.port}: `),
      );
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });
});
