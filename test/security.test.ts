// Who may call what, on the real services: the teacher, the labeler and the trainer started with
// tokens (one per role, one expired), each role against each RPC through our client, a call
// without a token, one with an unknown or expired token; health open; refusals counted in
// /metrics. Then the teacher with TLS: a plaintext client is refused, a client trusting the CA is
// answered. Services off loopback without TLS and tokens refuse to start.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { connectLabeler, connectTeacher, connectTrainer, type ConnectOptions } from '@noisystudent/client';
import { newToken, type Role } from '@noisystudent/core';
import { labelerConfig, startLabeler, type Labeler } from '@noisystudent/labeler';
import { makeTestArtifact } from '@noisystudent/ml/testing';
import { openRegistry } from '@noisystudent/registry';
import { startNatsServer, type NatsServer } from '@noisystudent/registry/testing';
import { createLogger } from '@noisystudent/runtime';
import { startTeacher, teacherConfig, type Teacher } from '@noisystudent/teacher';
import { startTrainer, trainerConfig, type Trainer } from '@noisystudent/trainer';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { makeCertificates } from './support/certificates.js';

const silent = createLogger({ service: 'test', level: 'silent' });
const PIXELS = { shape: [28, 28, 1], dtype: 'uint8' as const, data: new Uint8Array(28 * 28).fill(128) };

let directory: string;
let server: NatsServer;
let nc: NatsConnection;
let teacher: Teacher;
let labeler: Labeler;
let trainer: Trainer;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'ns-security-'));
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  const registry = await openRegistry(nc, { prefix: 'sec' });
  const artifact = await makeTestArtifact({ version: 'v1', seed: 5 });
  await registry.putArtifact(artifact.bytes, 'v1');
  await registry.promote({ version: 'v1', promotedBy: 'test', reason: 'test' }, 0);

  const lines = (['predict', 'ingest', 'read', 'admin'] as Role[]).map((role) => {
    const created = newToken(`${role}-caller`, [role]);
    tokens[role] = created.token;
    return created.line;
  });
  const expired = newToken('expired-caller', ['admin'], new Date(Date.now() - 60_000));
  tokens['expired'] = expired.token;
  const tokensFile = join(directory, 'tokens');
  await writeFile(tokensFile, `# one line per caller\n${[...lines, expired.line].join('\n')}\n`, { mode: 0o600 });

  const common = { port: 0, metricsPort: 0, natsUrl: server.url, prefix: 'sec', tokensFile };
  teacher = await startTeacher(teacherConfig(common, {}), silent);
  await teacher.serving('v1');
  // The labeler calls the teacher with a token of its own (role predict).
  labeler = await startLabeler(
    labelerConfig({ ...common, teachers: `127.0.0.1:${teacher.port}`, teacherToken: tokens['predict'] }, {}),
    silent,
  );
  trainer = await startTrainer(
    trainerConfig({ ...common, stateDir: join(directory, 'trainer'), preset: 'smoke' }, {}),
    silent,
  );
}, 180_000);

afterAll(async () => {
  await trainer?.stop();
  await labeler?.stop();
  await teacher?.stop();
  await nc?.close();
  await server?.stop();
  await rm(directory, { recursive: true, force: true });
});

/** The gRPC status name a call ended with: OK, or its error's. */
async function outcome(call: () => Promise<unknown>): Promise<string> {
  try {
    await call();
    return 'OK';
  } catch (error) {
    return (error as { codeName?: string }).codeName ?? String(error);
  }
}

/** Every RPC of the three services, called with `token`. */
async function everyRpc(token: string | undefined): Promise<Record<string, string>> {
  const options = (port: number): ConnectOptions => ({
    address: `127.0.0.1:${port}`,
    retry: false,
    ...(token === undefined ? {} : { token }),
  });
  const teacherClient = connectTeacher(options(teacher.port));
  const labelerClient = connectLabeler(options(labeler.port));
  const trainerClient = connectTrainer(options(trainer.port));
  try {
    return {
      Predict: await outcome(() => teacherClient.predict(PIXELS)),
      PredictStream: await outcome(async () => {
        for await (const answer of teacherClient.predictMany([PIXELS])) if (answer.error) throw answer.error;
      }),
      GetModelInfo: await outcome(() => teacherClient.modelInfo()),
      Ingest: await outcome(() =>
        labelerClient.ingest([{ sourceId: `sec-${token?.slice(3, 9) ?? 'none'}`, image: PIXELS }]),
      ),
      GetStats: await outcome(() => labelerClient.stats()),
      GetStatus: await outcome(() => trainerClient.status()),
      ListRounds: await outcome(() => trainerClient.rounds()),
    };
  } finally {
    teacherClient.close();
    labelerClient.close();
    trainerClient.close();
  }
}

describe('tokens on the real services', () => {
  it('lets each role call exactly its RPCs', async () => {
    const matrix: Record<string, Record<string, string>> = {};
    for (const role of ['predict', 'ingest', 'read', 'admin']) matrix[role] = await everyRpc(tokens[role]);
    const DENIED = 'PERMISSION_DENIED';
    expect(matrix).toEqual({
      predict: {
        Predict: 'OK',
        PredictStream: 'OK',
        GetModelInfo: 'OK',
        Ingest: DENIED,
        GetStats: DENIED,
        GetStatus: DENIED,
        ListRounds: DENIED,
      },
      ingest: {
        Predict: DENIED,
        PredictStream: DENIED,
        GetModelInfo: DENIED,
        Ingest: 'OK',
        GetStats: DENIED,
        GetStatus: DENIED,
        ListRounds: DENIED,
      },
      read: {
        Predict: DENIED,
        PredictStream: DENIED,
        GetModelInfo: 'OK',
        Ingest: DENIED,
        GetStats: 'OK',
        GetStatus: 'OK',
        ListRounds: 'OK',
      },
      admin: {
        Predict: 'OK',
        PredictStream: 'OK',
        GetModelInfo: 'OK',
        Ingest: 'OK',
        GetStats: 'OK',
        GetStatus: 'OK',
        ListRounds: 'OK',
      },
    });
  }, 60_000);

  it('answers UNAUTHENTICATED to no token, an unknown one and an expired one, and counts the refusals', async () => {
    const unknown = newToken('nobody', ['admin']).token;
    for (const token of [undefined, unknown, tokens['expired']]) {
      expect(Object.values(await everyRpc(token))).toEqual(Array(7).fill('UNAUTHENTICATED'));
    }
    const metrics = await (await fetch(`http://127.0.0.1:${teacher.metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/teacher_calls_refused_total\{method="Predict",reason="unauthenticated"\} 3\b/);
    expect(metrics).toMatch(/teacher_calls_refused_total\{method="Predict",reason="permission_denied"\} 2\b/);
    // Health stays open to probes.
    const probe = connectTeacher({ address: `127.0.0.1:${teacher.port}` });
    expect(await probe.health()).toBe('SERVING');
    probe.close();
  }, 60_000);
});

describe('the labeler behind tokens', () => {
  it('labels what is ingested through a teacher that wants its token', async () => {
    const admin = connectLabeler({ address: `127.0.0.1:${labeler.port}`, token: tokens['admin'] ?? '' });
    try {
      const until = Date.now() + 30_000;
      let labeled = 0;
      while (labeled === 0 && Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        const stats = await admin.stats();
        labeled = stats.versions.find((entry) => entry.teacherVersion === 'v1')?.labeled ?? 0;
      }
      // Every image the matrix ingested (two tokens could) has an outcome.
      expect(labeled).toBe(2);
    } finally {
      admin.close();
    }
  });
});

describe('TLS on a real service', () => {
  it('refuses a plaintext client and answers one that trusts the CA', async () => {
    const pems = await makeCertificates(directory);
    const files = { cert: join(directory, 'server.crt'), key: join(directory, 'server.key') };
    await writeFile(files.cert, pems.server.cert);
    await writeFile(files.key, pems.server.key, { mode: 0o600 });
    const modelFile = join(directory, 'v1.nsmodel');
    await writeFile(modelFile, (await makeTestArtifact({ version: 'v1', seed: 5 })).bytes);
    const tls = await startTeacher(
      teacherConfig({ port: 0, metricsPort: 0, modelFile, tlsCert: files.cert, tlsKey: files.key }, {}),
      silent,
    );
    try {
      await tls.serving();
      const address = `127.0.0.1:${tls.port}`;
      const plaintext = connectTeacher({ address, retry: false, deadlineMs: 5_000 });
      const trusting = connectTeacher({ address, tls: { rootCerts: pems.ca.cert } });
      expect(await outcome(() => plaintext.predict(PIXELS))).toBe('UNAVAILABLE');
      expect((await trusting.predict(PIXELS)).modelVersion).toBe('v1');
      plaintext.close();
      trusting.close();
    } finally {
      await tls.stop();
    }
  }, 60_000);

  it('will not start off loopback without TLS and tokens unless told --insecure', async () => {
    const modelFile = join(directory, 'v1.nsmodel');
    await expect(
      startTeacher(teacherConfig({ port: 0, metricsPort: 0, modelFile, host: '0.0.0.0' }, {}), silent),
    ).rejects.toThrow('--host 0.0.0.0 is reachable from other machines, and this service has no TLS');
  });
});
