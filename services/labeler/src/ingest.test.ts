import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';

import { credentials, status, type ClientDuplexStream, type ServerDuplexStream } from '@grpc/grpc-js';
import { modelInputSpec, trainingPreprocessing, type ModelInputSpec } from '@noisystudent/ml';
import {
  Dtype,
  LabelerClient,
  LabelerService,
  ModelMetadata,
  UnlabeledImage,
  type Image,
  type IngestRequest,
  type IngestResponse,
  type LabelerServer,
} from '@noisystudent/proto';
import { startNatsServer, type NatsServer } from '@noisystudent/registry/testing';
import { createLogger, startGrpcServer, toGrpcStatus } from '@noisystudent/runtime';
import {
  connect,
  headers,
  JSONCodec,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
  type PubAck,
} from 'nats';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { handleIngest } from './ingest-stream.js';
import { publishUnlabeled, UnlabeledStore, validateSourceId } from './ingest.js';
import { natsNames, type NatsNames } from '@noisystudent/core';
import { DEFAULT_RETENTION, ensureStreams } from '@noisystudent/runtime';

const SIDE = 28;
const PIXELS = SIDE * SIDE;
/** The input of a 28×28 grayscale model: what `inputSpec()` returns once a teacher serves. */
const SPEC: ModelInputSpec = modelInputSpec(
  ModelMetadata.fromPartial({
    inputShape: [SIDE, SIDE, 1],
    preprocessing: trainingPreprocessing({ height: SIDE, width: SIDE, channels: 1, classNames: [] }),
  }),
);
const log = createLogger({ service: 'labeler-test', level: 'silent' });

function pixels(index: number): Buffer {
  return Buffer.from(Array.from({ length: PIXELS }, (_, position) => (index * 31 + position * 7) % 256));
}

function tensorImage(index: number): Image {
  return { content: { $case: 'tensor', value: { shape: [SIDE, SIDE, 1], dtype: Dtype.UINT8, data: pixels(index) } } };
}

function request(sourceId: string, index: number): IngestRequest {
  return { sourceId, image: tensorImage(index) };
}

/** A minimal 8-bit grayscale PNG, so the test needs no image library. */
function grayPng(width: number, height: number, gray: Uint8Array): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const typed = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const checksum = Buffer.alloc(4);
    checksum.writeUInt32BE(crc32(typed));
    return Buffer.concat([length, typed, checksum]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth; color type 0 (gray), default compression, filter and interlace
  const rows = Buffer.alloc(height * (width + 1));
  for (let row = 0; row < height; row++) rows.set(gray.subarray(row * width, (row + 1) * width), row * (width + 1) + 1);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function float32Image(values: number[], shape = [SIDE, SIDE, 1]): Image {
  const data = Buffer.alloc(values.length * 4);
  values.forEach((value, index) => data.writeFloatLE(value, index * 4));
  return { content: { $case: 'tensor', value: { shape, dtype: Dtype.FLOAT32, data } } };
}

/** Resolves when `promise` does, or fails naming `what` after `ms` (an event wait, never a sleep). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The next status event of `type` on `nc` (listening starts now, before the action that causes it). */
function nextStatus(nc: NatsConnection, type: 'disconnect' | 'reconnect'): Promise<void> {
  const events = nc.status()[Symbol.asyncIterator]();
  return (async () => {
    for (;;) {
      const event = await events.next();
      if (event.done === true) throw new Error(`the connection closed before a ${type} event`);
      if (event.value.type === type) {
        await events.return?.();
        return;
      }
    }
  })();
}

/** One Ingest call as a test drives it: write in any amounts, wait for answers by count, end. */
class IngestSession {
  readonly answers: IngestResponse[] = [];
  /** Settles when the server ends the call: resolves on OK after every answer arrived. */
  readonly finished: Promise<void>;
  private readonly call: ClientDuplexStream<IngestRequest, IngestResponse>;
  private readonly waiters: { count: number; wake: () => void }[] = [];

  constructor(client: LabelerClient) {
    this.call = client.ingest();
    this.call.on('data', (response: IngestResponse) => {
      this.answers.push(response);
      for (const waiter of this.waiters.filter((entry) => this.answers.length >= entry.count)) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.wake();
      }
    });
    const ended = new Promise<void>((resolve) => this.call.once('end', resolve));
    const statusOk = new Promise<void>((resolve, reject) => {
      this.call.on('status', (result) =>
        result.code === status.OK
          ? resolve()
          : reject(new Error(`Ingest ended with ${result.code}: ${result.details}`)),
      );
      this.call.on('error', reject);
    });
    this.finished = Promise.all([ended, statusOk]).then(() => undefined);
    this.finished.catch(() => undefined);
  }

  /** Writes without waiting for the client's buffer to drain: a client sending as fast as it can. */
  write(requests: IngestRequest[]): void {
    for (const entry of requests) this.call.write(entry);
  }

  /** The first `count` answers, once they are in. */
  async answered(count: number, ms = 10_000): Promise<IngestResponse[]> {
    if (this.answers.length < count) {
      await within(
        new Promise<void>((wake) => this.waiters.push({ count, wake })),
        ms,
        `${count} Ingest answers (${this.answers.length} so far)`,
      );
    }
    return this.answers.slice(0, count);
  }

  /** Half-closes and waits for the server to end the call normally; all answers. */
  async end(ms = 10_000): Promise<IngestResponse[]> {
    this.call.end();
    await within(this.finished, ms, 'the server to end the Ingest call');
    return this.answers;
  }
}

interface Counts {
  stored: number;
  duplicates: number;
  rejected: Map<number, number>;
}

interface TestLabeler {
  client: LabelerClient;
  counts: Counts;
}

interface StoredEntry {
  subject: string;
  msgId: string | undefined;
  image: UnlabeledImage;
}

let nats: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  js = nc.jetstream();
  jsm = await nc.jetstreamManager();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

async function streamsFor(prefix: string, manager = jsm): Promise<NatsNames> {
  const names = natsNames(prefix);
  await ensureStreams(manager, names, DEFAULT_RETENTION);
  return names;
}

/** A gRPC server with Ingest served by `handleIngest` (GetStats UNIMPLEMENTED), and a client for it. */
async function startLabeler(options: {
  store: Pick<UnlabeledStore, 'store'>;
  inputSpec?: ModelInputSpec;
  maxInFlight?: number;
  /** Sees each server-side call before the handler does. */
  onCall?: (call: ServerDuplexStream<IngestRequest, IngestResponse>) => void;
}): Promise<TestLabeler> {
  const counts: Counts = { stored: 0, duplicates: 0, rejected: new Map() };
  const implementation: LabelerServer = {
    ingest: (call) => {
      options.onCall?.(call);
      handleIngest(call, {
        store: options.store,
        inputSpec: () => options.inputSpec,
        maxInFlight: options.maxInFlight ?? 32,
        counters: {
          stored: (duplicate) => {
            if (duplicate) counts.duplicates++;
            else counts.stored++;
          },
          rejected: (code) => counts.rejected.set(code, (counts.rejected.get(code) ?? 0) + 1),
        },
        log,
      });
    },
    getStats: (_call, callback) =>
      callback({ code: status.UNIMPLEMENTED, details: 'GetStats: not served in this test' }),
  };
  const server = await startGrpcServer({ port: 0 }, [
    { definition: LabelerService, implementation, name: 'noisystudent.v1.Labeler' },
  ]);
  const client = new LabelerClient(`127.0.0.1:${server.port}`, credentials.createInsecure());
  cleanups.push(async () => {
    client.close();
    await server.shutdown(5_000);
  });
  return { client, counts };
}

/** Every message of a stream by sequence: its subject, message id and decoded image. */
async function storedMessages(stream: string, manager = jsm): Promise<Map<number, StoredEntry>> {
  const { state } = await manager.streams.info(stream);
  const entries = new Map<number, StoredEntry>();
  if (state.messages === 0) return entries;
  for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
    const message = await manager.streams.getMessage(stream, { seq });
    entries.set(seq, {
      subject: message.subject,
      msgId: message.header.get('Nats-Msg-Id'),
      image: UnlabeledImage.decode(message.data),
    });
  }
  return entries;
}

function storedAnswer(response: IngestResponse | undefined): { sequence: number; duplicate: boolean } {
  if (response?.result?.$case !== 'stored') {
    throw new Error(`expected a stored answer, got ${JSON.stringify(response?.result)} for ${response?.sourceId}`);
  }
  return response.result.value;
}

function tensorData(image: Image | undefined): Buffer {
  if (image?.content?.$case !== 'tensor') throw new Error(`expected a tensor image, got ${image?.content?.$case}`);
  return Buffer.from(image.content.value.data);
}

describe('validateSourceId', () => {
  it('accepts letters, digits and -_.:/ up to 200 characters and names the field otherwise', () => {
    expect(() => validateSourceId('cam-7/2026.11.28:frame_0001', 'source_id')).not.toThrow();
    expect(() => validateSourceId('x'.repeat(200), 'source_id')).not.toThrow();
    expect(() => validateSourceId('', 'source_id')).toThrow('source_id: expected a non-empty source id, got ""');
    expect(() => validateSourceId('x'.repeat(201), 'source_id')).toThrow(
      'source_id: expected at most 200 characters, got 201',
    );
    expect(() => validateSourceId('img 3', 'images[2].source_id')).toThrow(
      'images[2].source_id: expected letters, digits and -_.:/ only, got " " at position 3 of "img 3"',
    );
    expect(() => validateSourceId('a\r\nNats-Msg-Id: b', 'source_id')).toThrow('got "\\r" at position 1');
    expect(() => validateSourceId('ünïcode', 'source_id')).toThrow('got "ü" at position 0');
  });
});

describe('Ingest over gRPC into NS_UNLABELED', () => {
  it('stores 500 images from one stream, each answered once, with its source id and pixels', async () => {
    const names = await streamsFor('ta');
    const { client, counts } = await startLabeler({ store: new UnlabeledStore(js, names), inputSpec: SPEC });
    const before = Date.now();
    const session = new IngestSession(client);
    session.write(Array.from({ length: 500 }, (_, index) => request(`batch-a/img:${index}`, index)));
    const answers = await session.end();

    expect(answers).toHaveLength(500);
    const bySource = new Map(answers.map((answer) => [answer.sourceId, storedAnswer(answer)]));
    expect(bySource.size).toBe(500);
    expect([...bySource.values()].filter((stored) => stored.duplicate)).toEqual([]);
    expect(new Set([...bySource.values()].map((stored) => stored.sequence)).size).toBe(500);
    expect(counts).toEqual({ stored: 500, duplicates: 0, rejected: new Map() });

    const stored = await storedMessages(names.unlabeledStream);
    expect(stored.size).toBe(500);
    for (let index = 0; index < 500; index++) {
      const sourceId = `batch-a/img:${index}`;
      const entry = stored.get(bySource.get(sourceId)?.sequence ?? -1);
      expect(entry?.image.sourceId).toBe(sourceId);
      expect(entry?.msgId).toBe(sourceId);
      expect(entry?.subject).toBe('ta.unlabeled.grpc');
      expect(tensorData(entry?.image.image).equals(pixels(index))).toBe(true);
      const ingestedAt = entry?.image.ingestedAt?.getTime() ?? 0;
      expect(ingestedAt).toBeGreaterThanOrEqual(before - 1000);
      expect(ingestedAt).toBeLessThanOrEqual(Date.now());
    }
  });

  it('answers a resent source id as a duplicate with the original sequence and stores nothing new', async () => {
    const names = await streamsFor('tb');
    const { client, counts } = await startLabeler({ store: new UnlabeledStore(js, names, { source: 'bulk' }) });
    const requests = Array.from({ length: 100 }, (_, index) => request(`b-${index}`, index));
    const first = new IngestSession(client);
    first.write(requests);
    const originals = new Map((await first.end()).map((answer) => [answer.sourceId, storedAnswer(answer)]));

    const again = new IngestSession(client);
    again.write(requests);
    const resent = await again.end();
    expect(resent).toHaveLength(100);
    for (const answer of resent) {
      expect(storedAnswer(answer)).toEqual({ sequence: originals.get(answer.sourceId)?.sequence, duplicate: true });
    }
    expect(counts).toEqual({ stored: 100, duplicates: 100, rejected: new Map() });
    const { state } = await jsm.streams.info(names.unlabeledStream);
    expect(state.messages).toBe(100);
    expect((await storedMessages(names.unlabeledStream)).get(1)?.subject).toBe('tb.unlabeled.bulk');
  });

  it('rejects bad images in the middle of a stream with INVALID_ARGUMENT naming the field, storing the rest', async () => {
    const names = await streamsFor('tc');
    const { client, counts } = await startLabeler({ store: new UnlabeledStore(js, names), inputSpec: SPEC });
    const png = grayPng(SIDE, SIDE, pixels(7));
    const cases: { request: IngestRequest; field?: string; reason?: string }[] = [
      { request: { sourceId: 'good-png', image: { content: { $case: 'encoded', value: png } } } },
      { request: request('', 1), field: 'source_id', reason: 'non-empty' },
      { request: request('good-1', 1) },
      { request: request('has spaces 2', 2), field: 'source_id', reason: '" " at position 3' },
      { request: request('good-2', 2) },
      { request: { sourceId: 'no-image', image: undefined }, field: 'image', reason: 'got neither' },
      { request: request('good-3', 3) },
      {
        request: { sourceId: 'empty-bytes', image: { content: { $case: 'encoded', value: Buffer.alloc(0) } } },
        field: 'image.encoded',
        reason: 'got 0 bytes',
      },
      {
        request: {
          sourceId: 'not-a-png',
          image: { content: { $case: 'encoded', value: Buffer.from('GIF89a, honest') } },
        },
        field: 'image.encoded',
        reason: 'did not decode',
      },
      { request: request('good-4', 4) },
      {
        request: {
          sourceId: 'wrong-shape',
          image: {
            content: { $case: 'tensor', value: { shape: [32, 32, 1], dtype: Dtype.UINT8, data: Buffer.alloc(1024) } },
          },
        },
        field: 'image.tensor.shape',
        reason: 'expected [28, 28, 1]',
      },
      {
        request: {
          sourceId: 'wrong-dtype',
          image: {
            content: {
              $case: 'tensor',
              value: { shape: [SIDE, SIDE, 1], dtype: Dtype.INT32, data: Buffer.alloc(PIXELS * 4) },
            },
          },
        },
        field: 'image.tensor.dtype',
        reason: 'got DTYPE_INT32',
      },
      { request: request('good-5', 5) },
      {
        request: {
          sourceId: 'nan',
          image: float32Image(Array.from({ length: PIXELS }, (_, i) => (i === 9 ? NaN : 1))),
        },
        field: 'image.tensor.data',
        reason: 'NaN at element 9',
      },
      { request: request('x'.repeat(201), 6), field: 'source_id', reason: 'at most 200' },
      { request: { sourceId: 'good-float', image: float32Image(Array.from(pixels(8))) } },
    ];
    const session = new IngestSession(client);
    session.write(cases.map((entry) => entry.request));
    const answers = await session.end();

    expect(answers).toHaveLength(cases.length);
    const byId = new Map(answers.map((answer) => [answer.sourceId, answer]));
    for (const { request: sent, field, reason } of cases) {
      const answer = byId.get(sent.sourceId);
      if (field === undefined) {
        expect(storedAnswer(answer).duplicate).toBe(false);
        continue;
      }
      expect(answer?.result?.$case, sent.sourceId).toBe('rejected');
      if (answer?.result?.$case !== 'rejected') continue;
      expect(answer.result.value.code).toBe(status.INVALID_ARGUMENT);
      expect(answer.result.value.reason.startsWith(`${field}: expected`), answer.result.value.reason).toBe(true);
      expect(answer.result.value.reason).toContain(reason);
    }
    const good = cases.filter((entry) => entry.field === undefined).map((entry) => entry.request.sourceId);
    expect(counts).toEqual({
      stored: good.length,
      duplicates: 0,
      rejected: new Map([[3, cases.length - good.length]]),
    });
    const stored = await storedMessages(names.unlabeledStream);
    expect([...stored.values()].map((entry) => entry.image.sourceId).sort()).toEqual([...good].sort());
    const storedPng = [...stored.values()].find((entry) => entry.image.sourceId === 'good-png')?.image.image?.content;
    expect(storedPng?.$case === 'encoded' && Buffer.from(storedPng.value).equals(png)).toBe(true);
  });

  it('without a teacher checks only structure, and refuses an image over max_payload with RESOURCE_EXHAUSTED', async () => {
    const names = await streamsFor('tc2');
    const { client, counts } = await startLabeler({ store: new UnlabeledStore(js, names) });
    const tensor = (shape: number[], dtype: Dtype, bytes: number): Image => ({
      content: { $case: 'tensor', value: { shape, dtype, data: Buffer.alloc(bytes) } },
    });
    const cases: { request: IngestRequest; code?: number; field?: string }[] = [
      // Which bytes decode is for the teacher's input spec to say; stored now, judged at labeling.
      { request: { sourceId: 'opaque-bytes', image: { content: { $case: 'encoded', value: Buffer.from('??') } } } },
      { request: { sourceId: 'other-size', image: tensor([32, 32, 3], Dtype.UINT8, 32 * 32 * 3) } },
      { request: { sourceId: 'flat', image: tensor([784], Dtype.UINT8, 784) }, code: 3, field: 'image.tensor.shape' },
      {
        request: { sourceId: 'four-channels', image: tensor([8, 8, 4], Dtype.UINT8, 256) },
        code: 3,
        field: 'image.tensor.shape',
      },
      {
        request: { sourceId: 'unspecified', image: tensor([8, 8, 1], Dtype.UNSPECIFIED, 64) },
        code: 3,
        field: 'image.tensor.dtype',
      },
      {
        request: { sourceId: 'short-data', image: tensor([8, 8, 1], Dtype.FLOAT32, 64) },
        code: 3,
        field: 'image.tensor.data',
      },
      {
        request: { sourceId: 'infinite', image: float32Image([1, 2, Infinity, 4], [2, 2, 1]) },
        code: 3,
        field: 'image.tensor.data',
      },
      {
        request: { sourceId: 'empty', image: { content: { $case: 'encoded', value: Buffer.alloc(0) } } },
        code: 3,
        field: 'image.encoded',
      },
      // 1,080,000 bytes: within gRPC's 4 MiB, over nats-server's 1 MiB max_payload.
      {
        request: { sourceId: 'huge', image: tensor([600, 600, 3], Dtype.UINT8, 600 * 600 * 3) },
        code: 8,
        field: 'image',
      },
    ];
    const session = new IngestSession(client);
    session.write(cases.map((entry) => entry.request));
    const answers = new Map((await session.end()).map((answer) => [answer.sourceId, answer]));
    for (const { request: sent, code, field } of cases) {
      const result = answers.get(sent.sourceId)?.result;
      if (code === undefined) {
        expect(result?.$case, sent.sourceId).toBe('stored');
        continue;
      }
      expect(result?.$case === 'rejected' ? [result.value.code, result.value.reason.split(':')[0]] : result).toEqual([
        code,
        field,
      ]);
    }
    expect(counts.stored).toBe(2);
    expect(counts.rejected).toEqual(
      new Map([
        [3, 6],
        [8, 1],
      ]),
    );
    expect((await jsm.streams.info(names.unlabeledStream)).state.messages).toBe(2);
  });

  it('never has more than maxInFlight images awaiting storage while a client writes 2,000 as fast as it can', async () => {
    const names = await streamsFor('td');
    const maxInFlight = 8;
    const inner = new UnlabeledStore(js, names);
    // The probe: counts concurrent store() calls. The first `maxInFlight` calls are held until the
    // last of them arrives, so the limit is provably reached (a lower limit would never open the gate).
    const probe = { awaiting: 0, most: 0, calls: 0 };
    let openGate: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const store: Pick<UnlabeledStore, 'store'> = {
      store: async (sent, spec) => {
        probe.awaiting++;
        probe.calls++;
        probe.most = Math.max(probe.most, probe.awaiting);
        try {
          if (probe.calls === maxInFlight) openGate();
          if (probe.calls <= maxInFlight) await gate;
          return await inner.store(sent, spec);
        } finally {
          probe.awaiting--;
        }
      },
    };
    const { client, counts } = await startLabeler({ store, inputSpec: SPEC, maxInFlight });
    const session = new IngestSession(client);
    session.write(Array.from({ length: 2000 }, (_, index) => request(`d-${index}`, index)));
    const answers = await session.end(20_000);

    expect(probe.most).toBe(maxInFlight);
    expect(probe.calls).toBe(2000);
    expect(answers).toHaveLength(2000);
    expect(new Set(answers.map((answer) => answer.sourceId)).size).toBe(2000);
    expect(new Set(answers.map((answer) => storedAnswer(answer).sequence)).size).toBe(2000);
    expect(counts.stored).toBe(2000);
    expect((await jsm.streams.info(names.unlabeledStream)).state.messages).toBe(2000);
  });

  it('stops answering a cancelled call; its images still finish storing and the server keeps serving', async () => {
    const names = await streamsFor('tg');
    const inner = new UnlabeledStore(js, names);
    let openGate: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    let arrived: () => void = () => undefined;
    const allArrived = new Promise<void>((resolve) => (arrived = resolve));
    let finished: () => void = () => undefined;
    const allStored = new Promise<void>((resolve) => (finished = resolve));
    let calls = 0;
    let done = 0;
    const store: Pick<UnlabeledStore, 'store'> = {
      store: async (sent, spec) => {
        if (++calls === 5) arrived();
        await gate;
        const result = await inner.store(sent, spec);
        if (++done === 5) finished();
        return result;
      },
    };
    let serverCancelled: () => void = () => undefined;
    const cancelled = new Promise<void>((resolve) => (serverCancelled = resolve));
    let writesAfterCancel = 0;
    const { client, counts } = await startLabeler({
      store,
      maxInFlight: 8,
      onCall: (call) => {
        const write = call.write.bind(call);
        call.write = ((...args: Parameters<typeof call.write>) => {
          if (call.cancelled) writesAfterCancel++;
          return write(...args);
        }) as typeof call.write;
        call.on('cancelled', serverCancelled);
      },
    });
    const call = client.ingest();
    call.on('error', () => undefined);
    for (let index = 0; index < 5; index++) call.write(request(`g-${index}`, index));
    await within(allArrived, 10_000, 'five images to reach the store');
    call.cancel();
    await within(cancelled, 10_000, 'the server to see the cancellation');
    openGate();
    // The five images were handed over before the cancellation: they are stored, just not answered.
    await within(allStored, 10_000, 'the five images to be stored');
    expect((await jsm.streams.info(names.unlabeledStream)).state.messages).toBe(5);
    expect(writesAfterCancel).toBe(0);

    const session = new IngestSession(client);
    session.write([request('g-after', 9)]);
    expect(storedAnswer((await session.end())[0]).duplicate).toBe(false);
    expect((await jsm.streams.info(names.unlabeledStream)).state.messages).toBe(6);
    expect(counts.stored).toBe(6);
  });

  it('answers UNAVAILABLE while NATS is down, keeps the stream open, and stores resends once it is back', async () => {
    const storeDir = await mkdtemp(join(tmpdir(), 'ns-labeler-ingest-'));
    cleanups.push(() => rm(storeDir, { recursive: true, force: true }));
    let server = await startNatsServer({ storeDir });
    cleanups.push(() => server.stop());
    const connection = await connect({ servers: server.url, reconnectTimeWait: 50, maxReconnectAttempts: -1 });
    cleanups.push(() => connection.close());
    const manager = await connection.jetstreamManager();
    const names = await streamsFor('te', manager);
    // A short PubAck timeout: each image waits this long for a server that is not there.
    const { client, counts } = await startLabeler({
      store: new UnlabeledStore(connection.jetstream({ timeout: 500 }), names),
      inputSpec: SPEC,
      maxInFlight: 64,
    });
    const batch = (from: number, to: number): IngestRequest[] =>
      Array.from({ length: to - from }, (_, offset) => request(`e-${from + offset}`, from + offset));
    const session = new IngestSession(client);

    session.write(batch(0, 20));
    expect((await session.answered(20)).every((answer) => answer.result?.$case === 'stored')).toBe(true);

    const disconnected = nextStatus(connection, 'disconnect');
    await server.stop();
    await within(disconnected, 10_000, 'the client to notice the server is gone');
    session.write(batch(20, 40));
    const whileDown = (await session.answered(40)).slice(20);
    for (const answer of whileDown) {
      expect(answer.result?.$case).toBe('rejected');
      if (answer.result?.$case !== 'rejected') continue;
      expect(answer.result.value.code).toBe(status.UNAVAILABLE);
      expect(answer.result.value.reason).toMatch(/^nats: no PubAck from stream TE_UNLABELED .*resend it/);
    }

    const reconnected = nextStatus(connection, 'reconnect');
    server = await startNatsServer({ storeDir, port: server.port });
    await within(reconnected, 10_000, 'the client to reconnect');
    // The refused images again (some may have reached the stream after all: then they are duplicates) and new ones.
    session.write(batch(20, 60));
    const answers = await session.end();

    expect(answers).toHaveLength(80);
    expect(answers.slice(40).every((answer) => answer.result?.$case === 'stored')).toBe(true);
    expect(counts.rejected).toEqual(new Map([[status.UNAVAILABLE, 20]]));
    expect(counts.stored + counts.duplicates).toBe(60);
    // Nothing acknowledged that is not there: every stored answer names a message with its id.
    const stored = await storedMessages(names.unlabeledStream, manager);
    expect(stored.size).toBe(60);
    for (const answer of answers.filter((entry) => entry.result?.$case === 'stored')) {
      expect(stored.get(storedAnswer(answer).sequence)?.msgId).toBe(answer.sourceId);
    }
  });

  it('is UNAVAILABLE, naming the cause, without the stream or on a closed connection', async () => {
    const missing = new UnlabeledStore(js, natsNames('nostream'));
    const noStream = await missing.store(request('lost-1', 1), SPEC).catch((error: unknown) => error);
    expect(toGrpcStatus(noStream)).toEqual({
      code: status.UNAVAILABLE,
      details: expect.stringContaining('no stream answered on nostream.unlabeled.grpc (no responders)') as unknown,
    });

    const names = await streamsFor('tclosed');
    const closing = await connect({ servers: nats.url });
    const store = new UnlabeledStore(closing.jetstream(), names);
    await closing.close();
    const closed = await store.store(request('lost-2', 2), SPEC).catch((error: unknown) => error);
    expect(toGrpcStatus(closed)).toEqual({
      code: status.UNAVAILABLE,
      details: expect.stringContaining('nats: the connection is closed') as unknown,
    });
    expect((await jsm.streams.info(names.unlabeledStream)).state.messages).toBe(0);
  });
});

describe('publishUnlabeled: the NATS path for producers without gRPC', () => {
  it('stores the image under its source id, deduplicated across NATS, plain publishes and gRPC', async () => {
    const names = await streamsFor('tf');
    const image: UnlabeledImage = {
      sourceId: 'cam7/0001',
      image: tensorImage(42),
      ingestedAt: new Date('2026-11-28T12:00:00.000Z'),
    };
    const first = await publishUnlabeled(js, names, 'camera-7', image);
    expect(first).toMatchObject({ stream: 'TF_UNLABELED', seq: 1, duplicate: false });
    const entry = (await storedMessages(names.unlabeledStream)).get(1);
    expect(entry?.subject).toBe('tf.unlabeled.camera-7');
    expect(entry?.msgId).toBe('cam7/0001');
    expect(entry?.image.sourceId).toBe('cam7/0001');
    expect(entry?.image.ingestedAt?.toISOString()).toBe('2026-11-28T12:00:00.000Z');
    expect(tensorData(entry?.image.image).equals(pixels(42))).toBe(true);

    expect(await publishUnlabeled(js, names, 'camera-7', image)).toMatchObject({ seq: 1, duplicate: true });
    // Any NATS client: the protobuf bytes with a Nats-Msg-Id header, answered by JetStream's PubAck.
    const header = headers();
    header.set('Nats-Msg-Id', 'cam7/0001');
    const plain = await nc.request('tf.unlabeled.other-producer', UnlabeledImage.encode(image).finish(), {
      headers: header,
      timeout: 5_000,
    });
    expect(JSONCodec<PubAck>().decode(plain.data)).toMatchObject({ seq: 1, duplicate: true });
    const { client } = await startLabeler({ store: new UnlabeledStore(js, names) });
    const session = new IngestSession(client);
    session.write([{ sourceId: 'cam7/0001', image: tensorImage(42) }]);
    expect(storedAnswer((await session.end())[0])).toEqual({ sequence: 1, duplicate: true });
    expect((await jsm.streams.info(names.unlabeledStream)).state.messages).toBe(1);

    await expect(publishUnlabeled(js, names, 'camera-7', { ...image, sourceId: 'no spaces' })).rejects.toThrow(
      'source_id: expected letters, digits and -_.:/ only',
    );
  });
});
