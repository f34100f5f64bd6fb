// Per-item answers that say "not now" (UNAVAILABLE) are sent again after a backoff, against a
// scripted Labeler that refuses each image's first send, as one does while NATS elects a leader.
import { status, type ServerDuplexStream } from '@grpc/grpc-js';
import { LabelerService, type IngestRequest, type IngestResponse, type LabelerServer } from '@noisystudent/proto';
import { startGrpcServer, type GrpcServer } from '@noisystudent/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { connectLabeler } from './labeler.js';

const IMAGES = 120;
let server: GrpcServer;
/** Sends seen per source id; the first send of each is refused UNAVAILABLE (the next `refusals` times). */
const sends = new Map<string, number>();
let refusals = 1;
let stored = 0;

const scriptedLabeler: LabelerServer = {
  ingest(call: ServerDuplexStream<IngestRequest, IngestResponse>) {
    call.on('data', (request: IngestRequest) => {
      const seen = (sends.get(request.sourceId) ?? 0) + 1;
      sends.set(request.sourceId, seen);
      if (seen <= refusals) {
        call.write({
          sourceId: request.sourceId,
          result: { $case: 'rejected', value: { code: status.UNAVAILABLE, reason: 'nats: no response from stream' } },
        });
      } else {
        stored++;
        call.write({
          sourceId: request.sourceId,
          result: { $case: 'stored', value: { sequence: stored, duplicate: false } },
        });
      }
    });
    call.on('end', () => call.end());
  },
  getStats(_call, callback) {
    callback({ code: status.UNIMPLEMENTED, details: 'not scripted' });
  },
};

beforeAll(async () => {
  server = await startGrpcServer({ port: 0 }, [
    { name: 'noisystudent.v1.Labeler', definition: LabelerService, implementation: scriptedLabeler },
  ]);
});
afterAll(async () => {
  await server?.shutdown(1_000);
});

const items = (): Array<{ sourceId: string; image: { shape: number[]; dtype: 'uint8'; data: Uint8Array } }> =>
  Array.from({ length: IMAGES }, (_, i) => ({
    sourceId: `img-${i}`,
    image: { shape: [2, 2, 1], dtype: 'uint8', data: new Uint8Array(4) },
  }));

describe('ingest answers refused UNAVAILABLE', () => {
  it('are sent again and end stored: none rejected, none lost', async () => {
    sends.clear();
    refusals = 1;
    stored = 0;
    const labeler = connectLabeler({
      address: `127.0.0.1:${server.port}`,
      retry: { attempts: 4, initialBackoffMs: 5, maxBackoffMs: 20 },
    });
    try {
      const summary = await labeler.ingest(items(), { window: 32 });
      expect(summary).toMatchObject({ sent: IMAGES, stored: IMAGES, duplicates: 0, rejected: 0, resent: IMAGES });
      expect([...sends.values()].every((count) => count === 2)).toBe(true);
    } finally {
      labeler.close();
    }
  });

  it('count as rejected once the retries are spent, or with retries off', async () => {
    sends.clear();
    refusals = 10;
    stored = 0;
    for (const retry of [{ attempts: 3, initialBackoffMs: 5, maxBackoffMs: 10 }, false] as const) {
      const labeler = connectLabeler({ address: `127.0.0.1:${server.port}`, retry });
      try {
        const summary = await labeler.ingest(items().slice(0, 10));
        expect(summary).toMatchObject({ sent: 10, stored: 0, rejected: 10 });
        expect(summary.reasons).toEqual({ 'nats: no response from stream': 10 });
      } finally {
        labeler.close();
      }
    }
  });
});
