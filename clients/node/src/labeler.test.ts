// The labeler client against the real Labeler service (in this process) on a real nats-server:
// Ingest's accounting, duplicates on a second ingest, stats, and an ingest that survives the
// labeler restarting under it with every image stored exactly once.
import { natsNames } from '@noisystudent/core';
import { labelerConfig, startLabeler, type Labeler } from '@noisystudent/labeler';
import { startNatsServer, type NatsServer } from '@noisystudent/registry/testing';
import { createLogger } from '@noisystudent/runtime';
import { connect, type NatsConnection } from 'nats';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { RawImage } from './images.js';
import type { IngestProgress } from './ingest-tally.js';
import { connectLabeler, type IngestItem, type LabelerConnection } from './labeler.js';

const log = createLogger({ service: 'labeler', level: 'silent' });

/** A small 4×4 grayscale image, different for every index. */
function tinyImage(index: number): RawImage {
  return { shape: [4, 4, 1], dtype: 'uint8', data: Uint8Array.from({ length: 16 }, (_, at) => (index * 7 + at) % 256) };
}

let nats: NatsServer;
let nc: NatsConnection;
const stops: Array<() => Promise<void>> = [];

/** A labeler on its own prefix; `port` 0 picks one. Stopped at the end. */
async function labelerOn(prefix: string, port = 0): Promise<Labeler> {
  const labeler = await startLabeler(
    labelerConfig({ port, metricsPort: 0, natsUrl: nats.url, prefix, shutdownTimeoutMs: 1, logLevel: 'silent' }, {}),
    log,
  );
  stops.push(() => labeler.stop());
  return labeler;
}

async function storedMessages(prefix: string): Promise<number> {
  const jsm = await nc.jetstreamManager();
  return (await jsm.streams.info(natsNames(prefix).unlabeledStream)).state.messages;
}

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  await nc?.close();
  await nats?.stop();
});

describe('the labeler client', () => {
  let labeler: Labeler;
  let client: LabelerConnection;

  beforeAll(async () => {
    labeler = await labelerOn('ingest');
    client = connectLabeler(`127.0.0.1:${labeler.port}`);
  });

  afterAll(() => client?.close());

  it('ingests a few hundred images and accounts for every one; again, they are duplicates', async () => {
    const png = await sharp(Buffer.alloc(16, 200), { raw: { width: 4, height: 4, channels: 1 } })
      .png()
      .toBuffer();
    const items: IngestItem[] = [
      ...Array.from({ length: 298 }, (_, index) => ({ sourceId: `cam-1/img-${index}`, image: tinyImage(index) })),
      { sourceId: 'cam-1/png', image: png },
      { sourceId: 'cam-1/floats', image: { shape: [2, 2, 3], dtype: 'float32', data: new Float32Array(12).fill(0.5) } },
      // Source ids the labeler refuses (a space, a '#'): rejected, and the stream goes on.
      { sourceId: 'cam 1', image: tinyImage(1) },
      { sourceId: 'cam#2', image: tinyImage(2) },
    ];
    const progress: IngestProgress[] = [];
    const summary = await client.ingest(items, { window: 32, onProgress: (step) => progress.push(step) });
    expect(summary).toMatchObject({ sent: 302, stored: 300, duplicates: 0, rejected: 2, resent: 0 });
    expect(summary.rejections.map(({ sourceId, code, codeName }) => ({ sourceId, code, codeName }))).toEqual(
      expect.arrayContaining([
        { sourceId: 'cam 1', code: 3, codeName: 'INVALID_ARGUMENT' },
        { sourceId: 'cam#2', code: 3, codeName: 'INVALID_ARGUMENT' },
      ]),
    );
    expect(summary.rejections[0]?.reason).toMatch(/^source_id: expected letters, digits and -_\.:\/ only/);
    expect(Object.values(summary.reasons).reduce((sum, count) => sum + count, 0)).toBe(2);
    expect(summary.seconds).toBeGreaterThan(0);
    expect(progress).toHaveLength(302);
    expect(Math.max(...progress.map((step) => step.inFlight))).toBeLessThanOrEqual(32);
    expect(progress.at(-1)).toMatchObject({ sent: 302, stored: 300, duplicates: 0, rejected: 2, inFlight: 0 });
    expect(await storedMessages('ingest')).toBe(300);

    const again = await client.ingest(items.slice(0, 300));
    expect(again).toMatchObject({ sent: 300, stored: 0, duplicates: 300, rejected: 0, rejections: [], reasons: {} });
    expect(await storedMessages('ingest')).toBe(300);

    const stats = await client.stats();
    expect(stats).toMatchObject({ teacherVersion: '', ingested: 300, ingestDuplicates: 300, ingestRejected: 2 });
    expect(typeof stats.unlabeledStored).toBe('number');
    expect(stats.unlabeledStored).toBe(300);
    expect(await client.health()).toBe('SERVING');
  });

  it('ingests nothing from an empty input', async () => {
    expect(await client.ingest([])).toMatchObject({ sent: 0, stored: 0, duplicates: 0, rejected: 0 });
  });
});

describe('an ingest while the labeler restarts', () => {
  it('reconnects, resends what was unanswered, and stores and counts every image once', async () => {
    const first = await labelerOn('restart');
    const port = first.port;
    const count = 600;
    let restarted: Promise<Labeler> | undefined;
    const retries: number[] = [];
    const client = connectLabeler({
      address: `127.0.0.1:${port}`,
      retry: { attempts: 30, initialBackoffMs: 50, maxBackoffMs: 500, onRetry: ({ attempt }) => retries.push(attempt) },
    });
    async function* images(): AsyncGenerator<IngestItem> {
      for (let index = 0; index < count; index++) yield { sourceId: `restart-${index}`, image: tinyImage(index) };
    }
    try {
      const summary = await client.ingest(images(), {
        window: 64,
        onProgress: ({ stored }) => {
          // A third of the way in, with requests in flight: stop the labeler (its shutdown cuts the
          // stream at once) and start a new one on the same port.
          if (stored >= count / 3 && restarted === undefined) {
            restarted = first.stop().then(() => labelerOn('restart', port));
          }
        },
      });
      expect(restarted).toBeDefined();
      await restarted;
      expect(retries.length).toBeGreaterThanOrEqual(1);
      expect(summary).toMatchObject({ sent: count, stored: count, duplicates: 0, rejected: 0 });
      expect(summary.resent).toBeGreaterThanOrEqual(1);
      expect(await storedMessages('restart')).toBe(count);
    } finally {
      client.close();
    }
  });
});
