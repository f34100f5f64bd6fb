// The shared record of which images already have an outcome for a teacher version, read from the
// shards stream (the look-up that keeps an image delivered again from a second outcome).
import { natsNames, shardSubject } from '@noisystudent/core';
import { Shard } from '@noisystudent/proto';
import { startNatsServer, type NatsServer } from '@noisystudent/registry/testing';
import { DEFAULT_RETENTION, ensureStreams } from '@noisystudent/runtime';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { LabeledIndex } from './labeled-index.js';

let server: NatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});
afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

describe('LabeledIndex', () => {
  it("finds ids in every outcome of its version's shards, read up to the last one at each look-up", async () => {
    const jsm = await nc.jetstreamManager();
    const js = nc.jetstream();
    const names = natsNames('index');
    await ensureStreams(jsm, names, DEFAULT_RETENTION);
    const publish = (version: string, shard: Partial<Shard>) =>
      js.publish(shardSubject(names, version), Shard.encode(Shard.fromPartial(shard)).finish());
    const index = new LabeledIndex(js, jsm, names.shardsStream, shardSubject(names, 'v1'));

    expect(await index.labeled(['a'])).toEqual(new Set());
    await publish('v2', { belowThresholdIds: ['a'] });
    await publish('v1', {
      examples: [{ sourceId: 'b' }],
      belowThresholdIds: ['c'],
      cutByBalancingIds: ['d'],
      rejected: [{ sourceId: 'e', reason: 'image: bad' }],
    } as Partial<Shard>);
    const started = Date.now();
    expect(await index.labeled(['a', 'b', 'c', 'd', 'e', 'f'])).toEqual(new Set(['b', 'c', 'd', 'e']));
    // It stops reading at the last shard instead of waiting out a pull.
    expect(Date.now() - started).toBeLessThan(900);
    await publish('v1', { belowThresholdIds: ['f'] });
    expect(await index.labeled(['a', 'f'])).toEqual(new Set(['f']));
    expect(index.size).toBe(5);
  });
});
