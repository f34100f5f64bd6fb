// Hostile messages on NATS, with the services under their least-privilege users: a producer
// publishes random and mutated messages on the unlabeled subject (each gets exactly one outcome,
// rejected with a reason or labeled) and cannot touch the registry; random bytes written to the
// teacher pointer (by admin) leave the teacher serving and the labeler labeling the last good version.
import { randomBytes } from 'node:crypto';

import { connectTeacher } from '@noisystudent/client';
import { natsAuthorizationConfig, natsNames, NATS_USERS, shardSubject, type NatsUser } from '@noisystudent/core';
import { labelerConfig, startLabeler, type Labeler } from '@noisystudent/labeler';
import { readShards, shardOutcomes } from '@noisystudent/labeler/testing';
import { makeTestArtifact } from '@noisystudent/ml/testing';
import { Dtype, UnlabeledImage } from '@noisystudent/proto';
import { openRegistry } from '@noisystudent/registry';
import { startNatsServer, type NatsServer } from '@noisystudent/registry/testing';
import { createLogger } from '@noisystudent/runtime';
import { startTeacher, teacherConfig, type Teacher } from '@noisystudent/teacher';
import fc from 'fast-check';
import { connect, headers, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const PREFIX = 'hostile';
const MESSAGES = 200;
const names = natsNames(PREFIX);
const silent = createLogger({ service: 'test', level: 'silent' });
const passwords = Object.fromEntries(NATS_USERS.map((user) => [user, randomBytes(18).toString('base64url')])) as Record<
  NatsUser,
  string
>;
const login = (user: NatsUser) => ({ natsUser: user, natsPassword: passwords[user] });

let server: NatsServer;
let admin: NatsConnection;
let producer: NatsConnection;
let teacher: Teacher;
let labeler: Labeler;

const goodImage = (seed: number): UnlabeledImage =>
  UnlabeledImage.fromPartial({
    sourceId: `good-${seed}`,
    image: {
      content: {
        $case: 'tensor',
        value: { shape: [28, 28, 1], dtype: Dtype.UINT8, data: Buffer.alloc(28 * 28, seed % 256) },
      },
    },
  });

beforeAll(async () => {
  server = await startNatsServer({ config: natsAuthorizationConfig(PREFIX, passwords) });
  admin = await connect({ servers: server.url, user: 'admin', pass: passwords.admin });
  producer = await connect({ servers: server.url, user: 'producer', pass: passwords.producer });
  const asTrainer = await connect({ servers: server.url, user: 'trainer', pass: passwords.trainer });
  const trainerRegistry = await openRegistry(asTrainer, { prefix: PREFIX });
  await trainerRegistry.putArtifact((await makeTestArtifact({ version: 'v1', seed: 2 })).bytes, 'v1');
  await trainerRegistry.promote({ version: 'v1', promotedBy: 'trainer', reason: 'test' }, 0);
  await asTrainer.close();
  const common = { port: 0, metricsPort: 0, natsUrl: server.url, prefix: PREFIX };
  teacher = await startTeacher(teacherConfig({ ...common, ...login('teacher') }, {}), silent);
  await teacher.serving('v1');
  labeler = await startLabeler(
    labelerConfig(
      { ...common, ...login('labeler'), teachers: `127.0.0.1:${teacher.port}`, windowWaitMs: 200, balance: 'none' },
      {},
    ),
    silent,
  );
  await labeler.labelingWith('v1');
}, 120_000);

afterAll(async () => {
  await labeler?.stop();
  await teacher?.stop();
  await producer?.close();
  await admin?.close();
  await server?.stop();
});

/** Random bytes, a good message with bytes changed or cut, or a good message with a bad image. */
const hostileMessage: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 1024 }),
  fc
    .tuple(fc.nat(1000), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.nat())
    .map(([seed, changes, cut]) => {
      const bytes = Buffer.from(UnlabeledImage.encode(goodImage(seed)).finish());
      for (const [at, value] of changes) bytes[at % bytes.length] = value;
      return bytes.subarray(0, bytes.length - (cut % 8));
    }),
  fc
    .tuple(fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 4 }), fc.uint8Array({ maxLength: 4000 }))
    .map(([shape, data]) =>
      UnlabeledImage.encode(
        UnlabeledImage.fromPartial({
          image: { content: { $case: 'tensor', value: { shape, dtype: Dtype.UINT8, data: Buffer.from(data) } } },
        }),
      ).finish(),
    ),
);

describe('hostile messages on NATS', () => {
  it('gives every message a producer publishes exactly one outcome, and keeps labeling', async () => {
    const js = producer.jetstream();
    const messages = fc.sample(hostileMessage, { numRuns: MESSAGES, seed: 19 });
    const ids: string[] = [];
    for (const [index, data] of messages.entries()) {
      const id = `fuzz-${index}`;
      const header = headers();
      header.set('Nats-Msg-Id', id);
      await js.publish(`${PREFIX}.unlabeled.fuzz`, data, { headers: header });
      // A message that still decodes names its own source id.
      let decoded: string | undefined;
      try {
        decoded = UnlabeledImage.decode(data).sourceId || undefined;
      } catch {
        decoded = undefined;
      }
      ids.push(decoded ?? id);
    }
    const expected = new Set(ids);
    const jsm = await admin.jetstreamManager();
    const deadline = Date.now() + 60_000;
    let outcomes = shardOutcomes([]);
    while (Date.now() < deadline) {
      outcomes = shardOutcomes(await readShards(jsm, names.shardsStream, shardSubject(names, 'v1')));
      if (new Set(outcomes.everyId).size >= expected.size) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    // Several messages may carry the same decoded id (a mutated copy of one good message): each
    // delivered message still has one outcome.
    expect(outcomes.everyId).toHaveLength(MESSAGES);
    expect(new Set(outcomes.everyId)).toEqual(expected);
    expect(outcomes.rejected.length).toBeGreaterThan(0);
    for (const entry of outcomes.rejected)
      expect(entry.reason).toMatch(/^(message|image)[\w.[\]]*: expected |not an UnlabeledImage/);
    const stats = labeler.stats.versionStats().find((entry) => entry.teacherVersion === 'v1');
    expect(stats?.labeled).toBe(MESSAGES);
  }, 90_000);

  it('does not let a producer write the registry or another subject', async () => {
    const registry = await openRegistry(producer, { prefix: PREFIX }).catch((error: Error) => error);
    expect(String(registry)).toMatch(/permission/i);
    await expect(producer.jetstream().publish(`${PREFIX}.shards.v1`, new Uint8Array(8))).rejects.toThrow(/permission/i);
  });

  it('keeps serving and labeling the last good version when the pointer holds random bytes', async () => {
    await admin.jetstream().publish(`$KV.${names.registryBucket}.${names.teacherKey}`, randomBytes(64));
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const client = connectTeacher(`127.0.0.1:${teacher.port}`);
    try {
      expect(await client.health()).toBe('SERVING');
      const answer = await client.predict({ shape: [28, 28, 1], dtype: 'uint8', data: new Uint8Array(784) });
      expect(answer.modelVersion).toBe('v1');
    } finally {
      client.close();
    }
    const before = labeler.stats.versionStats().find((entry) => entry.teacherVersion === 'v1')?.labeled ?? 0;
    await producer.jetstream().publish(`${PREFIX}.unlabeled.fuzz`, UnlabeledImage.encode(goodImage(5000)).finish(), {
      msgID: 'after-garbage',
    });
    const deadline = Date.now() + 30_000;
    let after = before;
    while (after === before && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      after = labeler.stats.versionStats().find((entry) => entry.teacherVersion === 'v1')?.labeled ?? 0;
    }
    expect(after).toBe(before + 1);
  }, 60_000);
});
