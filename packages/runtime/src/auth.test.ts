// Tokens and roles on a real grpc-js server: who may call which RPC, what a refusal says, what is
// counted, and what stays open (health).
import {
  credentials,
  Metadata,
  status,
  type sendUnaryData,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServiceError,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import {
  GetModelInfoResponse,
  ModelMetadata,
  PredictResponse,
  TeacherClient,
  TeacherService,
  type GetModelInfoRequest,
  PredictRequest,
  type PredictStreamRequest,
  type PredictStreamResponse,
} from '@noisystudent/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { newToken, TokenTable, type Role } from '@noisystudent/core';

import type { Refusal } from './auth.js';
import { startGrpcServer, type GrpcServer } from './grpc-server.js';
import { grpcSecurity } from './grpc-security.js';
import { HealthClient } from './health-client.js';

const calls: string[] = [];
const implementation: UntypedServiceImplementation = {
  predict(_call: ServerUnaryCall<PredictRequest, PredictResponse>, callback: sendUnaryData<PredictResponse>) {
    calls.push('Predict');
    callback(null, PredictResponse.fromPartial({ modelVersion: 'v1' }));
  },
  getModelInfo(
    _call: ServerUnaryCall<GetModelInfoRequest, GetModelInfoResponse>,
    callback: sendUnaryData<GetModelInfoResponse>,
  ) {
    calls.push('GetModelInfo');
    callback(null, GetModelInfoResponse.fromPartial({ metadata: ModelMetadata.fromPartial({ version: 'v1' }) }));
  },
  predictStream(call: ServerDuplexStream<PredictStreamRequest, PredictStreamResponse>) {
    calls.push('PredictStream');
    call.on('data', () => undefined);
    call.on('end', () => call.end());
  },
};

const tokens: Record<string, string> = {};
const refusals: Array<[string, Refusal]> = [];
let server: GrpcServer;
let client: TeacherClient;

beforeAll(async () => {
  const lines = (['predict', 'read', 'ingest', 'admin'] as Role[]).map((role) => {
    const { token, line } = newToken(`${role}-app`, [role]);
    tokens[role] = token;
    return line;
  });
  // An admin token that expired a second ago.
  const expired = newToken('old-app', ['admin'], new Date(Date.now() - 1_000));
  tokens['expired'] = expired.token;
  lines.push(expired.line);
  const security = await grpcSecurity({ host: '127.0.0.1', tokens: lines.join(';'), insecure: false });
  server = await startGrpcServer(
    { port: 0, security, onRefused: (method, refusal) => refusals.push([method, refusal]) },
    // PredictStream is left out of the roles: admin only.
    [
      {
        name: 'noisystudent.v1.Teacher',
        definition: TeacherService,
        implementation,
        roles: { Predict: ['predict'], GetModelInfo: ['predict', 'read'] },
      },
    ],
  );
  server.setServing('SERVING');
  client = new TeacherClient(`127.0.0.1:${server.port}`, credentials.createInsecure());
});

afterAll(() => {
  client?.close();
  server?.server.forceShutdown();
});

function withToken(token: string | undefined, scheme = 'Bearer'): Metadata {
  const metadata = new Metadata();
  if (token !== undefined) metadata.set('authorization', `${scheme} ${token}`);
  return metadata;
}

function predict(metadata: Metadata): Promise<{ code: number; details: string }> {
  return new Promise((resolve) =>
    client.predict(PredictRequest.fromPartial({}), metadata, (error: ServiceError | null) =>
      resolve({ code: error?.code ?? status.OK, details: error?.details ?? '' }),
    ),
  );
}

function modelInfo(metadata: Metadata): Promise<number> {
  return new Promise((resolve) =>
    client.getModelInfo({}, metadata, (error: ServiceError | null) => resolve(error?.code ?? status.OK)),
  );
}

function predictStream(metadata: Metadata): Promise<number> {
  return new Promise((resolve) => {
    const stream = client.predictStream(metadata);
    stream.on('data', () => undefined);
    stream.on('error', (error: ServiceError) => resolve(error.code));
    stream.on('end', () => resolve(status.OK));
    stream.end();
  });
}

describe('tokens and roles', () => {
  it('lets each role call what it may, and refuses the rest with PERMISSION_DENIED', async () => {
    const matrix: Record<string, Record<string, number>> = {};
    for (const role of ['predict', 'read', 'ingest', 'admin']) {
      const token = tokens[role];
      matrix[role] = {
        Predict: (await predict(withToken(token))).code,
        GetModelInfo: await modelInfo(withToken(token)),
        PredictStream: await predictStream(withToken(token)),
      };
    }
    const { OK, PERMISSION_DENIED: DENIED } = status;
    expect(matrix).toEqual({
      predict: { Predict: OK, GetModelInfo: OK, PredictStream: DENIED },
      read: { Predict: DENIED, GetModelInfo: OK, PredictStream: DENIED },
      ingest: { Predict: DENIED, GetModelInfo: DENIED, PredictStream: DENIED },
      admin: { Predict: OK, GetModelInfo: OK, PredictStream: OK },
    });
  });

  it('answers UNAUTHENTICATED without a token or with an unknown one, and never echoes a token', async () => {
    calls.length = 0;
    refusals.length = 0;
    const unknown = newToken('stranger', ['admin']).token;
    const answers = [
      await predict(withToken(undefined)),
      await predict(withToken(unknown)),
      await predict(withToken(tokens['predict'], 'Basic')),
      await predict(withToken(`${tokens['predict']}x`)),
      await predict(withToken(tokens['expired'])),
    ];
    expect(answers.map((answer) => answer.code)).toEqual(Array(5).fill(status.UNAUTHENTICATED));
    expect(answers[0]?.details).toBe('Predict: no token; send metadata "authorization: Bearer <token>"');
    expect(answers[1]?.details).toBe('Predict: unknown token');
    expect(answers[4]?.details).toMatch(/^Predict: token "old-app" expired at \d{4}-\d\d-\d\dT/);
    for (const answer of answers) expect(answer.details).not.toContain(unknown.slice(3, 20));
    // Refused before the handler ran, and counted.
    expect(calls).toEqual([]);
    expect(refusals).toEqual(Array(5).fill(['Predict', 'unauthenticated']));
  });

  it('names the token and the roles needed when it refuses one', async () => {
    const answer = await predict(withToken(tokens['read']));
    expect(answer).toEqual({
      code: status.PERMISSION_DENIED,
      details: 'Predict: token "read-app" has roles read; it needs predict or admin',
    });
  });

  it('keeps health open for probes', async () => {
    const health = new HealthClient(`127.0.0.1:${server.port}`);
    try {
      expect(await health.check('')).toBe('SERVING');
    } finally {
      health.close();
    }
  });
});

describe('TokenTable', () => {
  it('keeps only hashes and finds the entry of a token', () => {
    const { token, line } = newToken('app-1', ['predict', 'read', 'predict']);
    expect(line).toMatch(/^app-1 predict,read sha256:[0-9a-f]{64}$/);
    expect(line).not.toContain(token);
    const table = TokenTable.parse(`# callers\n\n${line}\n`, 'tokens.txt');
    expect(table.authenticate(token)?.name).toBe('app-1');
    expect([...(table.authenticate(token)?.roles ?? [])]).toEqual(['predict', 'read']);
    expect(table.authenticate('ns_other')).toBeUndefined();
  });

  it('refuses a bad line naming the file, the line and what was expected', () => {
    const good = newToken('a', ['read']).line;
    expect(() => TokenTable.parse(`${good}\nb read deadbeef`, 'tokens.txt')).toThrow(
      'tokens.txt:2: expected "<name> <role,role,…> sha256:<64 hex digits> [expires=<ISO date>]"',
    );
    expect(() => TokenTable.parse(`${good} expires=someday`, 'tokens.txt')).toThrow(
      'tokens.txt:1 expires: expected an ISO date, e.g. 2027-01-31T00:00:00Z, got "someday"',
    );
    expect(() => TokenTable.parse(good.replace('read', 'write'), 'tokens.txt')).toThrow(
      'tokens.txt:1 roles: expected roles from predict, ingest, read, admin, got "write"',
    );
    expect(() => TokenTable.parse(`${good}\n${good}`, 'tokens.txt')).toThrow('tokens.txt:2 name: "a" is given twice');
    expect(() => TokenTable.parse('# nothing\n', 'tokens.txt')).toThrow('expected at least one token line');
  });
});
