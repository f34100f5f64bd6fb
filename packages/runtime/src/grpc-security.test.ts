// grpcSecurity: TLS from files, tokens from a file or a variable, and the rule that a service
// reachable from other machines is neither plaintext nor unchecked unless told `--insecure`.
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { GetStatusResponse, TrainerClient, TrainerService } from '@noisystudent/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { makeCertificates } from '../../../test/support/certificates.js';
import { newToken } from '@noisystudent/core';

import { startGrpcServer } from './grpc-server.js';
import { HealthClient } from './health-client.js';
import { grpcSecurity, isLoopback, type SecuritySettings } from './grpc-security.js';

let directory: string;
const file = (name: string): string => join(directory, name);
let tokenLine: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'ns-grpc-security-'));
  const pems = await makeCertificates(directory);
  await Promise.all([
    writeFile(file('server.crt'), pems.server.cert),
    writeFile(file('server.key'), pems.server.key),
    writeFile(file('ca.crt'), pems.ca.cert),
  ]);
  tokenLine = newToken('app', ['read']).line;
  await writeFile(file('tokens'), `${tokenLine}\n`);
  await chmod(file('tokens'), 0o600);
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

const base: SecuritySettings = { host: '127.0.0.1', insecure: false };

describe('grpcSecurity', () => {
  it('serves plaintext and unchecked on loopback by default', async () => {
    expect(await grpcSecurity(base)).toMatchObject({ tokens: undefined, summary: 'plaintext, calls unchecked' });
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) expect(isLoopback(host)).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.7', 'teacher.svc']) expect(isLoopback(host)).toBe(false);
  });

  it('refuses an address other machines reach without TLS and tokens, saying what to give', async () => {
    await expect(grpcSecurity({ ...base, host: '0.0.0.0' })).rejects.toThrow(
      '--host 0.0.0.0 is reachable from other machines, and this service has no TLS (--tls-cert and --tls-key) and no tokens (--tokens-file or --tokens): give them, listen on 127.0.0.1, or pass --insecure to serve it anyway',
    );
    await expect(
      grpcSecurity({ ...base, host: '0.0.0.0', tlsCert: file('server.crt'), tlsKey: file('server.key') }),
    ).rejects.toThrow('and this service has no tokens (--tokens-file or --tokens): give it');
    await expect(grpcSecurity({ ...base, host: '0.0.0.0', tokensFile: file('tokens') })).rejects.toThrow(
      'and this service has no TLS (--tls-cert and --tls-key): give it',
    );
    expect((await grpcSecurity({ ...base, host: '0.0.0.0', insecure: true })).summary).toBe(
      'plaintext, calls unchecked',
    );
    const secured = await grpcSecurity({
      ...base,
      host: '0.0.0.0',
      tlsCert: file('server.crt'),
      tlsKey: file('server.key'),
      tlsClientCa: file('ca.crt'),
      tokensFile: file('tokens'),
    });
    expect(secured.summary).toBe('TLS with client certificates, 1 token');
  });

  it('names the setting that is wrong', async () => {
    await expect(grpcSecurity({ ...base, tlsCert: file('server.crt') })).rejects.toThrow(
      '--tls-cert and --tls-key go together: give both or neither',
    );
    await expect(grpcSecurity({ ...base, tlsClientCa: file('ca.crt') })).rejects.toThrow(
      '--tls-client-ca needs --tls-cert and --tls-key',
    );
    await expect(grpcSecurity({ ...base, tlsCert: file('missing.crt'), tlsKey: file('server.key') })).rejects.toThrow(
      `--tls-cert ${file('missing.crt')}: cannot read it (ENOENT)`,
    );
    await expect(grpcSecurity({ ...base, tlsCert: file('tokens'), tlsKey: file('server.key') })).rejects.toThrow(
      '--tls-cert: expected a PEM certificate',
    );
    await expect(grpcSecurity({ ...base, tlsCert: file('server.crt'), tlsKey: file('server.crt') })).rejects.toThrow(
      '--tls-key: expected a PEM private key',
    );
    await expect(grpcSecurity({ ...base, tlsCert: file('ca.crt'), tlsKey: file('server.key') })).rejects.toThrow(
      '--tls-key: is not the key of the certificate in --tls-cert',
    );
    await expect(grpcSecurity({ ...base, tokensFile: file('tokens'), tokens: tokenLine })).rejects.toThrow(
      '--tokens-file and --tokens: give one of them',
    );
    await expect(grpcSecurity({ ...base, tokens: 'app read sha256:00' })).rejects.toThrow(
      'tokens: --tokens:1: expected "<name> <role,role,…> sha256:<64 hex digits> [expires=<ISO date>]"',
    );
    // Several lines in one variable, separated by ';'.
    const two = `${tokenLine};${newToken('other', ['admin']).line}`;
    expect((await grpcSecurity({ ...base, tokens: two })).summary).toBe('plaintext, 2 tokens');
  });

  it('serves TLS: a plaintext client is refused, one trusting the CA is answered, probes use the health port', async () => {
    const security = await grpcSecurity({ ...base, tlsCert: file('server.crt'), tlsKey: file('server.key') });
    const server = await startGrpcServer({ port: 0, security, healthPort: 0 }, [
      {
        name: 'noisystudent.v1.Trainer',
        definition: TrainerService,
        implementation: {
          getStatus: (_call: unknown, callback: (error: null, value: GetStatusResponse) => void) =>
            callback(null, GetStatusResponse.fromPartial({})),
        },
      },
    ]);
    const plaintext = new TrainerClient(`127.0.0.1:${server.port}`, credentials.createInsecure());
    const trusting = new TrainerClient(
      `127.0.0.1:${server.port}`,
      credentials.createSsl(await readFile(file('ca.crt'))),
    );
    const call = (client: TrainerClient): Promise<number> =>
      new Promise((resolve) =>
        client.getStatus({}, new Metadata(), { deadline: Date.now() + 5_000 }, (error: ServiceError | null) =>
          resolve(error?.code ?? status.OK),
        ),
      );
    // Probes that cannot speak TLS ask the plaintext health-only port.
    const probe = new HealthClient(`127.0.0.1:${server.healthPort ?? 0}`);
    try {
      expect(await call(plaintext)).toBe(status.UNAVAILABLE);
      expect(await call(trusting)).toBe(status.OK);
      expect(await probe.check('')).toBe('NOT_SERVING');
      server.setServing('SERVING');
      expect(await probe.check('')).toBe('SERVING');
      expect(await probe.check('noisystudent.v1.Trainer')).toBe('SERVING');
    } finally {
      probe.close();
      plaintext.close();
      trusting.close();
      server.server.forceShutdown();
    }
  });
});
