import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { natsNames, shardSubject, trainingConsumer } from '@noisystudent/core';
import { Shard } from '@noisystudent/proto';
import { startNatsServer, type NatsServer } from '@noisystudent/registry/testing';
import { createLogger } from '@noisystudent/runtime';
import { connect, headers, type JetStreamManager, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ShardCollector } from './shard-collector.js';

const names = natsNames('collect');
const log = createLogger({ service: 'trainer', level: 'silent' });

let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let directory: string;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name: names.shardsStream, subjects: [names.shardsSubjects] });
  directory = await mkdtemp(join(tmpdir(), 'ns-shards-'));
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
  await rm(directory, { recursive: true, force: true });
});

function shard(teacherVersion: string, shardId: string, labels: number[]): Shard {
  return Shard.fromPartial({
    shardId,
    teacherVersion,
    windowId: shardId,
    partCount: 1,
    examples: labels.map((hardLabel, index) => ({ sourceId: `${shardId}-${index}`, hardLabel, copyCount: 2 })),
  });
}

async function publish(subject: string, data: Uint8Array, id: string): Promise<void> {
  const messageHeaders = headers();
  messageHeaders.set('Nats-Msg-Id', id);
  await nc.jetstream().publish(subject, data, { headers: messageHeaders });
}

/** Resolves once the collector's consumer has nothing left to deliver or acknowledge. */
async function drained(version: string): Promise<void> {
  for (;;) {
    const info = await jsm.consumers.info(names.shardsStream, trainingConsumer(version));
    if (info.num_pending + info.num_ack_pending === 0 && info.delivered.stream_seq > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('ShardCollector', () => {
  it("keeps its version's shards on disk before acknowledging them, skips what is not one, and resumes after a restart", async () => {
    const v1 = shardSubject(names, 'v1');
    await publish(v1, Shard.encode(shard('v1', 'w1.0', [0, 1, 1])).finish(), 'w1.0');
    await publish(v1, Shard.encode(shard('v1', 'w2.0', [2])).finish(), 'w2.0');
    await publish(shardSubject(names, 'v2'), Shard.encode(shard('v2', 'x1.0', [3])).finish(), 'x1.0');
    await publish(v1, new TextEncoder().encode('not a shard'), 'garbage');
    await publish(v1, Shard.encode(shard('v0', 'w3.0', [4])).finish(), 'w3.0');

    const folder = join(directory, 'v1');
    const skipped: string[] = [];
    const collector = new ShardCollector(
      nc.jetstream(),
      jsm,
      names,
      { directory: folder, teacherVersion: 'v1', onSkipped: (reason) => skipped.push(reason) },
      log,
    );
    await collector.start();
    await drained('v1');
    await collector.stop();
    expect(collector.collected).toEqual({ shards: 2, examples: 8, perClass: [2, 4, 2] });
    expect(skipped).toEqual(['not_a_shard', 'wrong_version']);
    expect((await readdir(folder)).sort()).toEqual(['w1.0.shard', 'w2.0.shard']);
    expect(Shard.decode(await readFile(join(folder, 'w1.0.shard')))).toEqual(shard('v1', 'w1.0', [0, 1, 1]));

    // A new collector for the same version starts from disk and takes only what is new.
    await publish(v1, Shard.encode(shard('v1', 'w4.0', [1])).finish(), 'w4.0');
    const again = new ShardCollector(nc.jetstream(), jsm, names, { directory: folder, teacherVersion: 'v1' }, log);
    await again.start();
    await drained('v1');
    await again.stop();
    expect(again.collected).toEqual({ shards: 3, examples: 10, perClass: [2, 6, 2] });
    const info = await jsm.consumers.info(names.shardsStream, trainingConsumer('v1'));
    // Five messages on v1's subject, each delivered once: nothing acknowledged came back.
    expect(info.delivered.consumer_seq).toBe(5);
  });
});
