// NATS over TLS: a nats-server that requires TLS, a teacher that reaches it with --nats-tls-ca and
// serves the registry's model, and one without it that does not start.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { makeTestArtifact } from '@noisystudent/ml/testing';
import { openRegistry } from '@noisystudent/registry';
import { startNatsServer, type NatsServer } from '@noisystudent/registry/testing';
import { createLogger } from '@noisystudent/runtime';
import { startTeacher, teacherConfig } from '@noisystudent/teacher';
import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { makeCertificates } from './support/certificates.js';

const silent = createLogger({ service: 'test', level: 'silent' });
let directory: string;
let server: NatsServer;
const files = { ca: '', cert: '', key: '' };

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'ns-nats-tls-'));
  const pems = await makeCertificates(directory);
  files.ca = join(directory, 'ca.crt');
  files.cert = join(directory, 'server.crt');
  files.key = join(directory, 'server.key');
  await writeFile(files.ca, pems.ca.cert);
  await writeFile(files.cert, pems.server.cert);
  await writeFile(files.key, pems.server.key, { mode: 0o600 });
  server = await startNatsServer({ tls: { certFile: files.cert, keyFile: files.key } });
  const nc = await connect({ servers: server.url, tls: { caFile: files.ca } });
  const registry = await openRegistry(nc, { prefix: 'tls' });
  await registry.putArtifact((await makeTestArtifact({ version: 'v1', seed: 4 })).bytes, 'v1');
  await registry.promote({ version: 'v1', promotedBy: 'test', reason: 'test' }, 0);
  await nc.close();
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await rm(directory, { recursive: true, force: true });
});

describe('NATS over TLS', () => {
  it('serves the registry model when given the CA of the server', async () => {
    const teacher = await startTeacher(
      teacherConfig({ port: 0, metricsPort: 0, natsUrl: server.url, prefix: 'tls', natsTlsCa: files.ca }, {}),
      silent,
    );
    try {
      await teacher.serving('v1');
    } finally {
      await teacher.stop();
    }
  }, 60_000);

  it('does not start without it, saying why', async () => {
    await expect(
      startTeacher(teacherConfig({ port: 0, metricsPort: 0, natsUrl: server.url, prefix: 'tls' }, {}), silent),
    ).rejects.toThrow(/NATS at nats:\/\/127\.0\.0\.1:\d+: .*(certificate|TLS|tls)/);
  }, 60_000);

  it('names a CA file it cannot read', async () => {
    await expect(
      startTeacher(
        teacherConfig({ port: 0, metricsPort: 0, natsUrl: server.url, natsTlsCa: join(directory, 'missing.crt') }, {}),
        silent,
      ),
    ).rejects.toThrow(`--nats-tls-ca ${join(directory, 'missing.crt')}: cannot read it (ENOENT)`);
  });
});
