// Property-based: whatever a producer streams into Ingest — valid and invalid source ids, repeats,
// tensors of random shape, dtype and length with NaN and Infinity, random and mutated PNG bytes,
// requests without an image — every request is answered exactly once, each rejection is
// INVALID_ARGUMENT naming the field, the call ends OK, and NS_UNLABELED holds exactly one message
// per source id answered stored (nothing acknowledged is lost, nothing stored twice).
import { credentials, status } from '@grpc/grpc-js';
import { modelInputSpec, trainingPreprocessing } from '@noisystudent/ml';
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
import { natsNames } from '@noisystudent/core';
import { createLogger, DEFAULT_RETENTION, ensureStreams, startGrpcServer } from '@noisystudent/runtime';
import fc from 'fast-check';
import sharp from 'sharp';
import { connect, type JetStreamManager, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { handleIngest } from './ingest-stream.js';
import { UnlabeledStore } from './ingest.js';

const RUNS = 40;
const SIDE = 28;
const SPEC = modelInputSpec(
  ModelMetadata.fromPartial({
    inputShape: [SIDE, SIDE, 1],
    preprocessing: trainingPreprocessing({ height: SIDE, width: SIDE, channels: 1, classNames: [] }),
  }),
);

let nats: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  jsm = await nc.jetstreamManager();
});

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

/** A valid grayscale PNG of the model's size, so mutations start from something the decoder accepts. */
const PNG = await sharp(Buffer.alloc(SIDE * SIDE, 77), { raw: { width: SIDE, height: SIDE, channels: 1 } })
  .png()
  .toBuffer();

const sourceId = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 40 }).map((index) => `cam/${index}`) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.constantFrom('', 'x'.repeat(201), 'a b', 'a\r\nNats-Msg-Id: b', 'ünï') },
);

const floats = (count: number): fc.Arbitrary<Buffer> =>
  fc
    .array(fc.oneof(fc.float(), fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0)), {
      minLength: count,
      maxLength: count,
    })
    .map((values) => {
      const data = Buffer.alloc(values.length * 4);
      values.forEach((value, index) => data.writeFloatLE(value, index * 4));
      return data;
    });

const tensor: fc.Arbitrary<Image> = fc
  .record({
    shape: fc.oneof(
      fc.constant([SIDE, SIDE, 1]),
      fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 4 }),
      fc.constant([SIDE, SIDE, 3]),
    ),
    dtype: fc.constantFrom(Dtype.UINT8, Dtype.FLOAT32, 0 as Dtype, 99 as Dtype),
    extra: fc.integer({ min: -3, max: 3 }),
  })
  .chain(({ shape, dtype, extra }) => {
    const elements = Math.max(0, shape.reduce((product, side) => product * side, 1) + extra);
    const data =
      dtype === Dtype.FLOAT32
        ? floats(Math.min(elements, 4096))
        : fc.uint8Array({ minLength: Math.min(elements, 4096), maxLength: Math.min(elements, 4096) }).map(Buffer.from);
    return data.map((bytes): Image => ({ content: { $case: 'tensor', value: { shape, dtype, data: bytes } } }));
  });

const encoded: fc.Arbitrary<Image> = fc
  .oneof(
    fc.uint8Array({ maxLength: 512 }).map((bytes) => Buffer.from(bytes)),
    fc
      .tuple(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.option(fc.nat()))
      .map(([changes, cut]) => {
        const bytes = Buffer.from(PNG);
        for (const [at, value] of changes) bytes[at % bytes.length] = value;
        return cut === null ? bytes : bytes.subarray(0, cut % (bytes.length + 1));
      }),
  )
  .map((bytes): Image => ({ content: { $case: 'encoded', value: bytes } }));

/** Images the labeler must store: the model's exact tensor, or the unchanged PNG. */
const good: fc.Arbitrary<Image> = fc.oneof(
  fc.uint8Array({ minLength: SIDE * SIDE, maxLength: SIDE * SIDE }).map((data): Image => ({
    content: { $case: 'tensor', value: { shape: [SIDE, SIDE, 1], dtype: Dtype.UINT8, data: Buffer.from(data) } },
  })),
  fc.constant<Image>({ content: { $case: 'encoded', value: PNG } }),
);

const request: fc.Arbitrary<IngestRequest> = fc.record({
  sourceId,
  image: fc.oneof(
    { weight: 4, arbitrary: good },
    { weight: 3, arbitrary: tensor },
    { weight: 3, arbitrary: encoded },
    { weight: 1, arbitrary: fc.constant(undefined) },
  ),
});

/** Sends `requests` on one Ingest call and returns the answers once the server ends it OK. */
function ingest(client: LabelerClient, requests: IngestRequest[]): Promise<IngestResponse[]> {
  return new Promise((resolve, reject) => {
    const answers: IngestResponse[] = [];
    const call = client.ingest();
    call.on('data', (answer: IngestResponse) => answers.push(answer));
    call.on('error', reject);
    call.on('status', (result) =>
      result.code === status.OK
        ? resolve(answers)
        : reject(new Error(`Ingest ended ${result.code}: ${result.details}`)),
    );
    for (const entry of requests) call.write(entry);
    call.end();
  });
}

describe('Ingest under random input', () => {
  it(`answers every request once, rejects with the field named, stores each accepted source id once (${RUNS} calls)`, async () => {
    let run = 0;
    const counted = { stored: 0, duplicates: 0, rejected: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 30 }), async (requests) => {
        const names = natsNames(`fz${run++}`);
        await ensureStreams(jsm, names, DEFAULT_RETENTION);
        const server = await startGrpcServer({ port: 0 }, [
          {
            definition: LabelerService,
            name: 'noisystudent.v1.Labeler',
            implementation: {
              ingest: (call: Parameters<LabelerServer['ingest']>[0]) =>
                handleIngest(call, {
                  store: new UnlabeledStore(nc.jetstream(), names),
                  inputSpec: () => SPEC,
                  maxInFlight: 8,
                  counters: {
                    stored: (duplicate) => (duplicate ? counted.duplicates++ : counted.stored++),
                    rejected: () => counted.rejected++,
                  },
                  log: createLogger({ service: 'labeler-fuzz', level: 'silent' }),
                }),
              getStats: (_call, callback) => callback({ code: status.UNIMPLEMENTED, details: 'not in this test' }),
            } satisfies LabelerServer,
          },
        ]);
        const client = new LabelerClient(`127.0.0.1:${server.port}`, credentials.createInsecure());
        try {
          const answers = await ingest(client, requests);
          // One answer per request, in any order: the multiset of source ids matches.
          expect(answers.map((answer) => answer.sourceId).sort()).toEqual(
            requests.map((entry) => entry.sourceId).sort(),
          );
          const storedIds = new Set<string>();
          for (const answer of answers) {
            const result = answer.result;
            if (result?.$case === 'rejected') {
              expect(result.value.code, result.value.reason).toBe(status.INVALID_ARGUMENT);
              expect(result.value.reason).toMatch(/^(source_id|image[a-z_.[\]0-9]*): /);
            } else {
              expect(result?.$case).toBe('stored');
              storedIds.add(answer.sourceId);
            }
          }
          const { state } = await jsm.streams.info(names.unlabeledStream);
          expect(state.messages).toBe(storedIds.size);
          const held = new Set<string>();
          for (let seq = state.first_seq; state.messages > 0 && seq <= state.last_seq; seq++) {
            held.add(
              UnlabeledImage.decode((await jsm.streams.getMessage(names.unlabeledStream, { seq })).data).sourceId,
            );
          }
          expect(held).toEqual(storedIds);
        } finally {
          client.close();
          await server.shutdown(5_000);
          await jsm.streams.delete(names.unlabeledStream);
          await jsm.streams.delete(names.shardsStream).catch(() => undefined);
        }
      }),
      { numRuns: RUNS, seed: 19 },
    );
    // Enough of each outcome that the property was exercised both ways.
    expect(counted.stored).toBeGreaterThan(RUNS);
    expect(counted.rejected).toBeGreaterThan(RUNS);
  }, 120_000);
});
