// The cluster drill (drill.ts) at a test's size: a 3-node JetStream cluster at R3, 2 teachers,
// 2 labelers and a trainer, each its own process; one NATS node, one teacher and one labeler
// SIGKILLed and restarted while images stream in, the trainer SIGKILLed mid-round. Asserted from
// the shards, the registry and the round records.
import { describe, expect, it } from 'vitest';

import { runClusterDrill } from './drill.js';

const IMAGES = 600;

describe('faults on a replicated cluster', () => {
  it('loses nothing, labels each image once per teacher version, fails no call and promotes once', async () => {
    const result = await runClusterDrill({
      images: IMAGES,
      serviceOutput: process.env['NS_TEST_SERVICE_LOGS'] === '1' ? 'stderr' : 'ignore',
      log: (line) => console.log(`drill: ${line}`),
    });
    console.log(`drill: ${JSON.stringify({ ...result, failures: result.failures.slice(0, 5) })}`);
    expect(result.faults.map((fault) => fault.what).sort()).toEqual(['labeler', 'nats', 'teacher', 'trainer']);
    expect(result.ingested).toBe(IMAGES);
    expect(result.failures).toEqual([]);
    expect(result.rounds).toEqual([{ round: 1, teacherVersion: 'v1', decision: 'promoted', studentVersion: 'v2' }]);
    expect(result.promotions).toBe(1);
    expect(result.outcomes).toEqual({ v1: IMAGES, v2: IMAGES });
    expect(result.lost).toBe(0);
    expect(result.duplicated).toBe(0);
  }, 900_000);
});
