import { createHash } from 'node:crypto';

import { Conflict, FailedPrecondition, InvalidArgument, NotFound, sha256Hex, Unavailable } from '@noisystudent/core';
import type { EvaluationMetrics } from '@noisystudent/proto';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SHA256_HEADER } from './artifact-store.js';
import { openRegistry } from './registry.js';
import { startNatsServer, type NatsServer } from './testing/index.js';
import type { Registry, TeacherRecord } from './types.js';

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

let registryCount = 0;
/** A registry on a prefix no other test uses. */
async function freshRegistry(): Promise<Registry> {
  registryCount += 1;
  return openRegistry(nc, { prefix: `test${registryCount}` });
}

/** Deterministic stand-in for an encoded ModelArtifact; the registry treats bytes as opaque. */
function artifactBytes(seed: number, length = 1000): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let block = 0; block * 32 < length; block++) {
    const digest = createHash('sha256').update(`${seed}:${block}`).digest();
    bytes.set(digest.subarray(0, Math.min(32, length - block * 32)), block * 32);
  }
  return bytes;
}

const METRICS: EvaluationMetrics = {
  dataset: 'fashion-mnist/test',
  exampleCount: 10_000,
  top1Accuracy: 0.9128,
  loss: 0.2531,
  expectedCalibrationError: 0.0213,
  eceBinCount: 15,
  perClassAccuracy: [0.86, 0.98, 0.87, 0.91, 0.85, 0.98, 0.74, 0.97, 0.98, 0.96],
};

/** Stores one artifact per version and promotes them in order from an empty pointer. */
async function promoteInOrder(registry: Registry, versions: string[]): Promise<TeacherRecord[]> {
  const records: TeacherRecord[] = [];
  for (const [index, version] of versions.entries()) {
    await registry.putArtifact(artifactBytes(100 + index), version);
    const expectedRevision = records.at(-1)?.revision ?? 0;
    records.push(
      await registry.promote({ version, promotedBy: 'test', reason: 'student beat teacher' }, expectedRevision),
    );
  }
  return records;
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection, got a result');
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe('artifacts', () => {
  it('round-trips bytes larger than one Object Store chunk, with their sha256', async () => {
    const registry = await freshRegistry();
    const bytes = artifactBytes(1, 300_000);
    const before = Date.now();
    const info = await registry.putArtifact(bytes, 'v1');
    expect(info).toEqual({
      name: 'model-v1',
      version: 'v1',
      sha256: sha256Hex(bytes),
      size: 300_000,
      storedAt: info.storedAt,
    });
    expect(info.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(info.storedAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(info.storedAt.getTime()).toBeLessThanOrEqual(Date.now() + 1000);

    const loaded = await registry.getArtifact('v1', info.sha256);
    expect(loaded.info).toEqual(info);
    expect(Buffer.from(loaded.bytes).equals(Buffer.from(bytes))).toBe(true);
    const again = await registry.getArtifact('v1', info.sha256.toUpperCase());
    expect(again.info).toEqual(info);
    expect(Buffer.from(again.bytes).equals(Buffer.from(bytes))).toBe(true);
  });

  it('treats putting the same bytes again as a no-op', async () => {
    const registry = await freshRegistry();
    const bytes = artifactBytes(2);
    const first = await registry.putArtifact(bytes, 'v1');
    const second = await registry.putArtifact(Uint8Array.from(bytes), 'v1');
    expect(second).toEqual(first);
    expect(await registry.listVersions()).toEqual([first]);
  });

  it('refuses different bytes under a stored version with Conflict and keeps the first', async () => {
    const registry = await freshRegistry();
    const first = await registry.putArtifact(artifactBytes(3), 'v1');
    const other = artifactBytes(4);
    const error = await rejectionOf(registry.putArtifact(other, 'v1'));
    expect(error).toBeInstanceOf(Conflict);
    expect((error as Error).message).toContain(first.sha256);
    expect((error as Error).message).toContain(sha256Hex(other));
    expect((await registry.getArtifact('v1')).info).toEqual(first);
  });

  it('lets exactly one of two writers racing on one version with different bytes win', async () => {
    const registry = await freshRegistry();
    const candidates = [artifactBytes(5), artifactBytes(6)];
    const results = await Promise.allSettled(candidates.map((bytes) => registry.putArtifact(bytes, 'v1')));
    const fulfilled = results.filter((result) => result.status === 'fulfilled');
    const rejected = results.filter((result) => result.status === 'rejected');
    expect(fulfilled).toHaveLength(1);
    expect(rejected).toHaveLength(1);
    expect(rejected[0]?.reason).toBeInstanceOf(Conflict);
    const stored = await registry.getArtifact('v1');
    expect(stored.info).toEqual(fulfilled[0]?.value);
  });

  it('reports a missing version as NotFound', async () => {
    const registry = await freshRegistry();
    const error = await rejectionOf(registry.getArtifact('v404'));
    expect(error).toBeInstanceOf(NotFound);
    expect((error as Error).message).toBe(`version: no artifact model-v404 in ${registry.names.modelsBucket}`);
  });

  it('refuses stored bytes that no longer match the recorded sha256, naming both hashes', async () => {
    const registry = await freshRegistry();
    const original = await registry.putArtifact(artifactBytes(7), 'v1');
    // Corrupt the object behind the registry's back: new bytes, the old metadata (and recorded sha256).
    const objectStore = await nc.jetstream().views.os(registry.names.modelsBucket);
    const stored = await objectStore.info('model-v1');
    expect(stored?.headers?.get(SHA256_HEADER)).toBe(original.sha256);
    const corrupt = artifactBytes(8);
    await objectStore.putBlob(
      { name: 'model-v1', description: stored?.description, headers: stored?.headers },
      corrupt,
    );

    const error = await rejectionOf(registry.getArtifact('v1'));
    expect(error).toBeInstanceOf(FailedPrecondition);
    expect((error as Error).message).toBe(
      `version v1: expected sha256 ${original.sha256} (recorded when stored), got ${sha256Hex(corrupt)}: ` +
        'the stored artifact is corrupt',
    );
  });

  it('refuses an artifact whose sha256 is not the one the caller expects', async () => {
    const registry = await freshRegistry();
    const info = await registry.putArtifact(artifactBytes(9), 'v1');
    const expected = sha256Hex(artifactBytes(10));
    const error = await rejectionOf(registry.getArtifact('v1', expected));
    expect(error).toBeInstanceOf(FailedPrecondition);
    expect((error as Error).message).toContain('version v1');
    expect((error as Error).message).toContain(`expected sha256 ${expected}, got ${info.sha256}`);
  });

  it('lists stored versions in the order they were stored', async () => {
    const registry = await freshRegistry();
    expect(await registry.listVersions()).toEqual([]);
    const stored = [
      await registry.putArtifact(artifactBytes(11), 'v2'),
      await registry.putArtifact(artifactBytes(12), 'v10'),
      await registry.putArtifact(artifactBytes(13), 'v1'),
    ];
    const listed = await registry.listVersions();
    expect(listed.map((info) => info.version).sort()).toEqual(['v1', 'v10', 'v2']);
    expect(new Set(listed.map((info) => info.sha256))).toEqual(new Set(stored.map((info) => info.sha256)));
    const times = listed.map((info) => info.storedAt.getTime());
    expect(times).toEqual([...times].sort((a, b) => a - b));
    for (const info of listed) expect(info).toEqual(stored.find((candidate) => candidate.version === info.version));
  });
});

describe('teacher pointer', () => {
  it('promotes the first teacher from an empty registry with revision 0', async () => {
    const registry = await freshRegistry();
    expect(await registry.readTeacher()).toBeUndefined();
    const artifact = await registry.putArtifact(artifactBytes(20), 'v1');
    const before = Date.now();
    const record = await registry.promote(
      { version: 'v1', metrics: METRICS, promotedBy: 'trainer', reason: 'bootstrap' },
      0,
    );
    expect(record.revision).toBeGreaterThan(0);
    expect(record.pointer).toEqual({
      version: 'v1',
      artifactName: 'model-v1',
      sha256: artifact.sha256,
      metrics: METRICS,
      parentVersion: '',
      promotedAt: record.pointer.promotedAt,
      promotedBy: 'trainer',
      reason: 'bootstrap',
    });
    expect(record.pointer.promotedAt?.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(await registry.readTeacher()).toEqual(record);
  });

  it('promotes with the current revision and records the parent', async () => {
    const registry = await freshRegistry();
    const [first] = await promoteInOrder(registry, ['v1']);
    await registry.putArtifact(artifactBytes(21), 'v2');
    const second = await registry.promote(
      { version: 'v2', promotedBy: 'trainer', reason: 'student beat teacher' },
      first?.revision ?? -1,
    );
    expect(second.revision).toBeGreaterThan(first?.revision ?? Infinity);
    expect(second.pointer.parentVersion).toBe('v1');
    expect(await registry.readTeacher()).toEqual(second);
  });

  it('refuses a stale revision with Conflict naming where the pointer is', async () => {
    const registry = await freshRegistry();
    const [first, second] = await promoteInOrder(registry, ['v1', 'v2']);
    await registry.putArtifact(artifactBytes(22), 'v3');
    const candidate = { version: 'v3', promotedBy: 'trainer', reason: 'student beat teacher' };

    const stale = await rejectionOf(registry.promote(candidate, first?.revision ?? -1));
    expect(stale).toBeInstanceOf(Conflict);
    expect((stale as Error).message).toBe(
      `teacher: expected revision ${first?.revision}, but the pointer is at revision ${second?.revision} (v2); re-read and retry`,
    );
    const fromEmpty = await rejectionOf(registry.promote(candidate, 0));
    expect(fromEmpty).toBeInstanceOf(Conflict);
    expect((fromEmpty as Error).message).toBe(
      `teacher: expected revision 0 (no teacher yet), but the pointer is at revision ${second?.revision} (v2); re-read and retry`,
    );
    expect(await registry.readTeacher()).toEqual(second);
  });

  it('refuses a revision when there is no teacher yet', async () => {
    const registry = await freshRegistry();
    await registry.putArtifact(artifactBytes(23), 'v1');
    const error = await rejectionOf(registry.promote({ version: 'v1', promotedBy: 'trainer', reason: 'bootstrap' }, 7));
    expect(error).toBeInstanceOf(Conflict);
    expect((error as Error).message).toBe(
      'teacher: expected revision 7, but there is no teacher yet; re-read and retry',
    );
  });

  it('refuses to promote a version with no stored artifact', async () => {
    const registry = await freshRegistry();
    const error = await rejectionOf(registry.promote({ version: 'v1', promotedBy: 'trainer', reason: 'bootstrap' }, 0));
    expect(error).toBeInstanceOf(NotFound);
    expect(await registry.readTeacher()).toBeUndefined();
  });

  it('lets exactly one of concurrent promoters with the same expected revision win', async () => {
    const registry = await freshRegistry();
    const versions = ['a1', 'a2', 'a3', 'a4'];
    for (const [index, version] of versions.entries()) await registry.putArtifact(artifactBytes(30 + index), version);
    let expectedRevision = 0;
    // Several rounds, from empty (create) and from a pointer (update).
    for (let round = 0; round < 3; round++) {
      const results = await Promise.allSettled(
        versions.map((version) =>
          registry.promote({ version, promotedBy: `promoter-${version}`, reason: `round ${round}` }, expectedRevision),
        ),
      );
      const winners = results.filter((result) => result.status === 'fulfilled');
      const losers = results.filter((result) => result.status === 'rejected');
      expect(winners).toHaveLength(1);
      expect(losers).toHaveLength(versions.length - 1);
      for (const loser of losers) expect(loser.reason).toBeInstanceOf(Conflict);
      const winner = winners[0]?.value;
      expect(await registry.readTeacher()).toEqual(winner);
      expectedRevision = winner?.revision ?? -1;
    }
    expect(await registry.history()).toHaveLength(3);
  });

  it('keeps the history oldest first', async () => {
    const registry = await freshRegistry();
    expect(await registry.history()).toEqual([]);
    const records = await promoteInOrder(registry, ['v1', 'v2', 'v3']);
    const history = await registry.history();
    expect(history).toEqual(records);
    expect(history.map((record) => record.pointer.parentVersion)).toEqual(['', 'v1', 'v2']);
    const revisions = history.map((record) => record.revision);
    expect(revisions).toEqual([...revisions].sort((a, b) => a - b));
  });

  it('keeps only `history` pointers when asked for fewer', async () => {
    registryCount += 1;
    const registry = await openRegistry(nc, { prefix: `test${registryCount}`, history: 2 });
    await promoteInOrder(registry, ['v1', 'v2', 'v3']);
    expect((await registry.history()).map((record) => record.pointer.version)).toEqual(['v2', 'v3']);
  });

  it('rolls back by compare-and-set to a version that was teacher before', async () => {
    const registry = await freshRegistry();
    const [first, , third] = await promoteInOrder(registry, ['v1', 'v2', 'v3']);
    const rolledBack = await registry.rollback('v1', third?.revision ?? -1, 'operator');
    expect(rolledBack.pointer).toEqual({
      version: 'v1',
      artifactName: 'model-v1',
      sha256: first?.pointer.sha256,
      metrics: undefined,
      parentVersion: 'v3',
      promotedAt: rolledBack.pointer.promotedAt,
      promotedBy: 'operator',
      reason: 'rollback to v1',
    });
    expect(await registry.readTeacher()).toEqual(rolledBack);
    expect((await registry.history()).map((record) => record.pointer.version)).toEqual(['v1', 'v2', 'v3', 'v1']);

    const stale = await rejectionOf(registry.rollback('v2', third?.revision ?? -1, 'operator'));
    expect(stale).toBeInstanceOf(Conflict);
    const current = await rejectionOf(registry.rollback('v1', rolledBack.revision, 'operator'));
    expect(current).toBeInstanceOf(FailedPrecondition);
    expect((current as Error).message).toBe('toVersion: v1 is the current teacher; nothing to roll back');
  });

  it('refuses to roll back to a version that was never teacher', async () => {
    const registry = await freshRegistry();
    const [, second] = await promoteInOrder(registry, ['v1', 'v2']);
    await registry.putArtifact(artifactBytes(40), 'v9');
    const error = await rejectionOf(registry.rollback('v9', second?.revision ?? -1, 'operator'));
    expect(error).toBeInstanceOf(FailedPrecondition);
    expect((error as Error).message).toBe(
      'toVersion: v9 was never teacher in the kept history (v1, v2); promote it instead',
    );
    expect(await registry.readTeacher()).toEqual(second);
  });

  it('watches: the current pointer first, then each promotion, until stopped', async () => {
    const registry = await freshRegistry();
    const [first] = await promoteInOrder(registry, ['v1']);
    await registry.putArtifact(artifactBytes(50), 'v2');
    const watch = registry.watchTeacher();
    const updates = watch.updates[Symbol.asyncIterator]();
    try {
      const initial = await withTimeout(updates.next(), 10_000, 'the initial pointer');
      expect(initial).toEqual({ done: false, value: first });
      const second = await registry.promote(
        { version: 'v2', promotedBy: 'trainer', reason: 'student beat teacher' },
        first?.revision ?? -1,
      );
      const next = await withTimeout(updates.next(), 10_000, 'the promotion');
      expect(next).toEqual({ done: false, value: second });
      const ended = updates.next();
      watch.stop();
      expect(await withTimeout(ended, 10_000, 'the end of the watch')).toEqual({ done: true, value: undefined });
    } finally {
      watch.stop();
    }
  });

  it('watches an empty registry until the first promotion', async () => {
    const registry = await freshRegistry();
    await registry.putArtifact(artifactBytes(51), 'v1');
    const watch = registry.watchTeacher();
    const updates = watch.updates[Symbol.asyncIterator]();
    try {
      const pending = updates.next();
      const record = await registry.promote({ version: 'v1', promotedBy: 'trainer', reason: 'bootstrap' }, 0);
      expect(await withTimeout(pending, 10_000, 'the first pointer')).toEqual({ done: false, value: record });
    } finally {
      watch.stop();
    }
    expect(await withTimeout(updates.next(), 10_000, 'the end of the watch')).toEqual({ done: true, value: undefined });
  });
});

describe('names and validation', () => {
  it('keeps registries with different prefixes apart', async () => {
    const left = await openRegistry(nc, { prefix: 'left' });
    const right = await openRegistry(nc, { prefix: 'right' });
    expect(left.names).toMatchObject({
      prefix: 'left',
      modelsBucket: 'left_models',
      registryBucket: 'left_registry',
      teacherKey: 'teacher',
    });
    await promoteInOrder(left, ['v1']);
    expect(await rejectionOf(right.getArtifact('v1'))).toBeInstanceOf(NotFound);
    expect(await right.listVersions()).toEqual([]);
    expect(await right.readTeacher()).toBeUndefined();
    expect(await right.history()).toEqual([]);
    const streams = (await (await nc.jetstreamManager()).streams.names().next()).filter(
      (name) => name.includes('left') || name.includes('right'),
    );
    expect(streams.sort()).toEqual(['KV_left_registry', 'KV_right_registry', 'OBJ_left_models', 'OBJ_right_models']);
  });

  it('uses the ns prefix by default and reopens existing buckets', async () => {
    const registry = await openRegistry(nc);
    expect(registry.names.modelsBucket).toBe('ns_models');
    expect(registry.names.registryBucket).toBe('ns_registry');
    const info = await registry.putArtifact(artifactBytes(60), 'v1');
    const reopened = await openRegistry(nc);
    expect(await reopened.listVersions()).toEqual([info]);
  });

  it('reports a closed connection as Unavailable', async () => {
    const connection = await connect({ servers: server.url });
    const registry = await openRegistry(connection, { prefix: `test${++registryCount}` });
    await connection.close();
    const error = await rejectionOf(registry.readTeacher());
    expect(error).toBeInstanceOf(Unavailable);
    expect((error as Error).message).toMatch(/^reading the teacher pointer: NATS CONNECTION_CLOSED/);
  });

  it('refuses malformed versions and options with InvalidArgument naming the field', async () => {
    const registry = await freshRegistry();
    const bytes = artifactBytes(70);
    const cases: Array<[() => Promise<unknown>, string]> = [
      [() => registry.putArtifact(bytes, 'v/1'), 'version'],
      [() => registry.putArtifact(bytes, ''), 'version'],
      [() => registry.putArtifact(new Uint8Array(0), 'v1'), 'bytes'],
      [() => registry.getArtifact('v 1'), 'version'],
      [() => registry.getArtifact('v1', 'abc'), 'expectedSha256'],
      [() => registry.promote({ version: 'v.1', promotedBy: 'trainer', reason: 'bootstrap' }, 0), 'version'],
      [() => registry.rollback('v*', 1, 'operator'), 'toVersion'],
      [() => openRegistry(nc, { prefix: 'a.b' }), 'prefix'],
      [() => openRegistry(nc, { history: 65 }), 'history'],
      [() => openRegistry(nc, { history: 0 }), 'history'],
    ];
    for (const [call, field] of cases) {
      const error = await rejectionOf(call());
      expect(error).toBeInstanceOf(InvalidArgument);
      expect((error as InvalidArgument).field).toBe(field);
    }
    await registry.putArtifact(bytes, 'v1');
    for (const [candidate, field] of [
      [{ version: 'v1', promotedBy: '', reason: 'bootstrap' }, 'promotedBy'],
      [{ version: 'v1', promotedBy: 'trainer', reason: ' ' }, 'reason'],
    ] as const) {
      const error = await rejectionOf(registry.promote(candidate, 0));
      expect((error as InvalidArgument).field).toBe(field);
    }
    const negative = await rejectionOf(registry.promote({ version: 'v1', promotedBy: 'trainer', reason: 'x' }, -1));
    expect((negative as InvalidArgument).field).toBe('expectedRevision');
  });
});
