// NATS users with least privilege, enforced by a real nats-server (`natsAuthorizationConfig`):
// only the trainer's user writes the registry (pointer and artifacts); the labeler's and the
// teacher's users are refused by the server. Then the three services run under their own users:
// the teacher serves the registry's model, the labeler stores and labels images, the trainer
// collects the shards.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { connectLabeler, connectTrainer } from '@noisystudent/client';
import { natsAuthorizationConfig, NATS_USERS, type NatsUser } from '@noisystudent/core';
import { labelerConfig, startLabeler } from '@noisystudent/labeler';
import { makeTestArtifact } from '@noisystudent/ml/testing';
import { openRegistry, type Registry } from '@noisystudent/registry';
import { startNatsServer, type NatsServer } from '@noisystudent/registry/testing';
import { createLogger } from '@noisystudent/runtime';
import { startTeacher, teacherConfig } from '@noisystudent/teacher';
import { startTrainer, trainerConfig } from '@noisystudent/trainer';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const PREFIX = 'perm';
const silent = createLogger({ service: 'test', level: 'silent' });
const passwords = Object.fromEntries(NATS_USERS.map((user) => [user, randomBytes(18).toString('base64url')])) as Record<
  NatsUser,
  string
>;

let server: NatsServer;
const connections: NatsConnection[] = [];

async function as(user: NatsUser): Promise<NatsConnection> {
  const nc = await connect({ servers: server.url, user, pass: passwords[user] });
  connections.push(nc);
  return nc;
}

async function registryAs(user: NatsUser): Promise<Registry> {
  return openRegistry(await as(user), { prefix: PREFIX });
}

beforeAll(async () => {
  server = await startNatsServer({ config: natsAuthorizationConfig(PREFIX, passwords) });
});

afterAll(async () => {
  for (const nc of connections) await nc.close();
  await server?.stop();
});

describe('NATS users', () => {
  it('refuses a connection without a user or with a wrong password', async () => {
    await expect(connect({ servers: server.url })).rejects.toThrow(/Authorization/i);
    await expect(connect({ servers: server.url, user: 'labeler', pass: 'wrong' })).rejects.toThrow(/Authorization/i);
  });

  it('lets only the trainer write the registry', async () => {
    const artifact = await makeTestArtifact({ version: 'v1', seed: 3 });
    const trainer = await registryAs('trainer');
    await trainer.putArtifact(artifact.bytes, 'v1');
    const first = await trainer.promote({ version: 'v1', promotedBy: 'trainer', reason: 'test' }, 0);

    for (const user of ['labeler', 'teacher'] as const) {
      const registry = await registryAs(user);
      // Reading is allowed.
      expect((await registry.readTeacher())?.pointer.version, user).toBe('v1');
      expect((await registry.getArtifact('v1')).info.version, user).toBe('v1');
      // Writing the pointer or an artifact is refused by the server.
      await expect(
        registry.promote({ version: 'v1', promotedBy: user, reason: 'not allowed' }, first.revision),
        `${user} promote`,
      ).rejects.toThrow(/permission/i);
      await expect(registry.putArtifact(artifact.bytes, `${user}-model`), `${user} put`).rejects.toThrow(/permission/i);
    }
    const pointer = await (await registryAs('admin')).readTeacher();
    expect(pointer).toMatchObject({ revision: first.revision, pointer: { version: 'v1', promotedBy: 'trainer' } });
    expect((await (await registryAs('admin')).listVersions()).map((info) => info.version)).toEqual(['v1']);
  }, 60_000);

  it('runs each service under its own user', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'ns-nats-users-'));
    const login = (user: NatsUser) => ({ natsUser: user, natsPassword: passwords[user] });
    const common = { port: 0, metricsPort: 0, natsUrl: server.url, prefix: PREFIX };
    const teacher = await startTeacher(teacherConfig({ ...common, ...login('teacher') }, {}), silent);
    const labeler = await startLabeler(
      labelerConfig({ ...common, ...login('labeler'), teachers: `127.0.0.1:${teacher.port}`, windowWaitMs: 200 }, {}),
      silent,
    );
    const trainer = await startTrainer(
      trainerConfig({ ...common, ...login('trainer'), stateDir: join(directory, 'trainer'), preset: 'smoke' }, {}),
      silent,
    );
    const ingest = connectLabeler(`127.0.0.1:${labeler.port}`);
    const status = connectTrainer(`127.0.0.1:${trainer.port}`);
    try {
      await teacher.serving('v1');
      const pixels = new Uint8Array(28 * 28).fill(90);
      const images = Array.from({ length: 20 }, (_, index) => ({
        sourceId: `u-${index}`,
        image: { shape: [28, 28, 1], dtype: 'uint8' as const, data: pixels },
      }));
      expect(await ingest.ingest(images)).toMatchObject({ stored: 20, rejected: 0 });
      // The labeler labels them with v1 and the trainer collects the shards.
      const deadline = Date.now() + 60_000;
      let waiting = 0;
      while (waiting < 20 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        waiting = (await status.status()).imagesWaiting;
      }
      expect(waiting).toBe(20);
    } finally {
      ingest.close();
      status.close();
      await trainer.stop();
      await labeler.stop();
      await teacher.stop();
      await rm(directory, { recursive: true, force: true });
    }
  }, 120_000);
});
