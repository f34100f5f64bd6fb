// The clients' `tls` option against grpc-js servers with certificates made here by `openssl`: a
// throwaway CA, a server certificate for localhost / 127.0.0.1 and a client certificate signed by
// it, and a second CA with a client certificate of its own. One server checks no client certificate,
// another requires one (mutual TLS). Every key lives in a temporary folder removed afterwards.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  Server,
  ServerCredentials,
  status,
  type Metadata,
  type sendUnaryData,
  type ServerUnaryCall,
} from '@grpc/grpc-js';
import {
  GetStatusResponse,
  TrainerPhase,
  TrainerService,
  type GetStatusRequest,
  type TrainerServer,
} from '@noisystudent/proto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { makeCertificates, type Pems } from '../../../test/support/certificates.js';
import { ClientError } from './errors.js';
import type { ConnectOptions } from './options.js';
import { connectTrainer, type TrainerConnection } from './trainer.js';

const STATUS: GetStatusResponse = GetStatusResponse.fromPartial({
  phase: TrainerPhase.EVALUATING,
  teacherVersion: 'v3',
  round: 3,
  step: 400,
  steps: 400,
  loss: 0.5,
});

/** What the fake trainers saw: one entry per GetStatus. */
let seen: Array<{ metadata: Metadata; auth: ReturnType<ServerUnaryCall<unknown, unknown>['getAuthContext']> }>;

const fakeTrainer: TrainerServer = {
  getStatus(call: ServerUnaryCall<GetStatusRequest, GetStatusResponse>, callback: sendUnaryData<GetStatusResponse>) {
    seen.push({ metadata: call.metadata, auth: call.getAuthContext() });
    callback(null, STATUS);
  },
  listRounds(_call, callback) {
    callback(null, { rounds: [] });
  },
};

/** A Trainer server on 127.0.0.1 with TLS; with `clientCa`, it requires client certificates signed by it. */
async function startTlsTrainer(server: Pems, clientCa?: Buffer): Promise<{ port: number; server: Server }> {
  const grpcServer = new Server();
  grpcServer.addService(TrainerService, fakeTrainer);
  const credentials = ServerCredentials.createSsl(
    clientCa ?? null,
    [{ private_key: server.key, cert_chain: server.cert }],
    clientCa !== undefined,
  );
  const port = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync('127.0.0.1:0', credentials, (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return { port, server: grpcServer };
}

let directory: string;
let pems: Awaited<ReturnType<typeof makeCertificates>>;
let tlsServer: { port: number; server: Server };
let mtlsServer: { port: number; server: Server };
const clients: TrainerConnection[] = [];

/** A trainer client, closed after the tests. */
function trainer(options: ConnectOptions): TrainerConnection {
  const client = connectTrainer(options);
  clients.push(client);
  return client;
}

/** How a call that cannot get through fails: fast, with no retries. */
const FAILING = { retry: false, deadlineMs: 2_000 } as const;

async function statusError(client: TrainerConnection): Promise<ClientError> {
  const error = await client.status().then(
    (answer) => {
      throw new Error(`expected the call to fail, it answered ${JSON.stringify(answer)}`);
    },
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(ClientError);
  return error as ClientError;
}

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'ns-client-tls-'));
  pems = await makeCertificates(directory);
  tlsServer = await startTlsTrainer(pems.server);
  mtlsServer = await startTlsTrainer(pems.server, pems.ca.cert);
});

beforeEach(() => {
  seen = [];
});

afterAll(async () => {
  for (const client of clients) client.close();
  tlsServer?.server.forceShutdown();
  mtlsServer?.server.forceShutdown();
  if (directory !== undefined) await rm(directory, { recursive: true, force: true });
});

describe('the client over TLS', () => {
  it('gets the status from a server whose certificate chains to rootCerts', async () => {
    const client = trainer({ address: `127.0.0.1:${tlsServer.port}`, tls: { rootCerts: pems.ca.cert } });
    expect(await client.status()).toEqual({ ...STATUS, phase: 'evaluating' });
    // By name too: the certificate's DNS name rather than its IP address is checked.
    const byName = trainer({ address: `localhost:${tlsServer.port}`, tls: { rootCerts: pems.ca.cert } });
    expect((await byName.status()).phase).toBe('evaluating');
    expect(seen).toHaveLength(2);
  });

  it("sends the connection's metadata over TLS", async () => {
    const client = trainer({
      address: `127.0.0.1:${tlsServer.port}`,
      tls: { rootCerts: pems.ca.cert },
      metadata: { authorization: 'Bearer t' },
    });
    await client.status({ metadata: { 'x-request-id': 'r1' } });
    expect(seen[0]?.metadata.get('authorization')).toEqual(['Bearer t']);
    expect(seen[0]?.metadata.get('x-request-id')).toEqual(['r1']);
  });

  it('checks the certificate against serverNameOverride instead of the address', async () => {
    const address = `127.0.0.1:${tlsServer.port}`;
    const named = trainer({ address, tls: { rootCerts: pems.ca.cert, serverNameOverride: 'localhost' } });
    expect((await named.status()).phase).toBe('evaluating');

    const wrong = trainer({
      address,
      ...FAILING,
      tls: { rootCerts: pems.ca.cert, serverNameOverride: 'elsewhere.test' },
    });
    const error = await statusError(wrong);
    expect(error).toMatchObject({ code: status.UNAVAILABLE, address });
    expect(seen).toHaveLength(1);
  });

  it('fails UNAVAILABLE, naming the address, without tls against a TLS server', async () => {
    const address = `127.0.0.1:${tlsServer.port}`;
    const error = await statusError(trainer({ address, ...FAILING }));
    expect(error).toMatchObject({ code: status.UNAVAILABLE, codeName: 'UNAVAILABLE', service: 'trainer', address });
    expect(error.message).toContain(address);
    expect(seen).toEqual([]);
  });

  it("fails when the server's certificate does not chain to rootCerts", async () => {
    const address = `127.0.0.1:${tlsServer.port}`;
    const error = await statusError(trainer({ address, ...FAILING, tls: { rootCerts: pems.otherCa.cert } }));
    expect(error).toMatchObject({ code: status.UNAVAILABLE, address });
    expect(error.message).toContain(address);
    // It says the handshake failed, not that nothing runs there.
    expect(error.message).toContain('the TLS handshake failed: check the tls option');
    expect(error.message).not.toContain('is it running?');
    expect(seen).toEqual([]);
  });

  it('fails against the default roots when the CA is not among them', async () => {
    const address = `127.0.0.1:${tlsServer.port}`;
    const error = await statusError(trainer({ address, ...FAILING, tls: {} }));
    expect(error).toMatchObject({ code: status.UNAVAILABLE, address });
    expect(seen).toEqual([]);
  });
});

describe('the client over mutual TLS', () => {
  it('gets the status with a client certificate, which the server sees', async () => {
    const client = trainer({
      address: `127.0.0.1:${mtlsServer.port}`,
      tls: { rootCerts: pems.ca.cert, privateKey: pems.client.key, certChain: pems.client.cert },
      metadata: { authorization: 'Bearer t' },
    });
    expect(await client.status()).toEqual({ ...STATUS, phase: 'evaluating' });
    expect(seen[0]?.auth.transportSecurityType).toBe('ssl');
    expect(seen[0]?.auth.sslPeerCertificate?.subject.CN).toBe('tls-test-client');
    expect(seen[0]?.metadata.get('authorization')).toEqual(['Bearer t']);
  });

  it('fails without a client certificate', async () => {
    const address = `127.0.0.1:${mtlsServer.port}`;
    const error = await statusError(trainer({ address, ...FAILING, tls: { rootCerts: pems.ca.cert } }));
    expect(error).toMatchObject({ code: status.UNAVAILABLE, address });
    expect(seen).toEqual([]);
  });

  it('fails with a client certificate from another CA', async () => {
    const address = `127.0.0.1:${mtlsServer.port}`;
    const error = await statusError(
      trainer({
        address,
        ...FAILING,
        tls: { rootCerts: pems.ca.cert, privateKey: pems.stranger.key, certChain: pems.stranger.cert },
      }),
    );
    expect(error).toMatchObject({ code: status.UNAVAILABLE, address });
    expect(seen).toEqual([]);
  });
});
