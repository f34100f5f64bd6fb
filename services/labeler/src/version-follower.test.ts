// The version follower on a real registry (nats-server, Object Store, KV): what it does when
// loading a new teacher version's information fails.
import { labelingConsumer, natsNames, Unavailable, type NatsNames } from '@noisystudent/core';
import { makeTestArtifact } from '@noisystudent/ml/testing';
import { ModelArtifact, type ModelMetadata } from '@noisystudent/proto';
import { openRegistry, type Registry, type TeacherSource } from '@noisystudent/registry';
import { startNatsServer, type NatsServer } from '@noisystudent/registry/testing';
import { connect, type JetStreamManager, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { LogLines } from '../../../test/support/log-lines.js';
import { LabelingWorker } from './labeling-worker.js';
import { DEFAULT_RETENTION, ensureStreams } from '@noisystudent/runtime';
import { TeacherPool } from './teacher-pool.js';
import { VersionFollower } from './version-follower.js';

const REFUSED = 'cannot label with this teacher version; keeping the previous one';

let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
/** The workers' teacher: never asked, the streams hold no images. */
let pool: TeacherPool;
/** An artifact per version as the trainer stores them: the follower reads their metadata. */
let artifactOf: (version: string) => Uint8Array;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  jsm = await nc.jetstreamManager();
  pool = TeacherPool.connect(['127.0.0.1:1']);
  const base = ModelArtifact.decode((await makeTestArtifact({ version: 'v1' })).bytes);
  artifactOf = (version) =>
    ModelArtifact.encode({ ...base, metadata: { ...(base.metadata as ModelMetadata), version } }).finish();
});

afterAll(async () => {
  await pool?.close();
  await nc?.close();
  await server?.stop();
});

/** A registry under its own prefix, with the labeler's streams. */
async function openLabelerRegistry(prefix: string): Promise<{ registry: Registry; names: NatsNames }> {
  const names = natsNames(prefix);
  await ensureStreams(jsm, names, DEFAULT_RETENTION);
  return { registry: await openRegistry(nc, { prefix }), names };
}

async function promote(registry: Registry, version: string): Promise<void> {
  const current = await registry.readTeacher();
  await registry.promote({ version, promotedBy: 'test', reason: 'test' }, current?.revision ?? 0);
}

/**
 * The registry as the follower sees it, with the Object Store that can be made unreachable (as
 * while NATS elects a new stream leader): artifact reads then fail, the pointer watch goes on.
 */
function withUnreachableArtifacts(registry: Registry): TeacherSource & {
  reachable: boolean;
  attempts: Map<string, number>;
} {
  const attempts = new Map<string, number>();
  const source = {
    reachable: true,
    attempts,
    watchTeacher: () => registry.watchTeacher(),
    getArtifact: (version: string, expectedSha256?: string) => {
      attempts.set(version, (attempts.get(version) ?? 0) + 1);
      return source.reachable
        ? registry.getArtifact(version, expectedSha256)
        : Promise.reject(new Unavailable(`loading artifact ${version}: object store unreachable (timeout)`));
    },
  };
  return source;
}

function startFollower(source: TeacherSource, names: NatsNames, logs: LogLines) {
  const follower = new VersionFollower(
    source,
    (teacherVersion, metadata) =>
      new LabelingWorker(
        nc.jetstream(),
        jsm,
        names,
        pool,
        {
          teacherVersion,
          classes: metadata.classNames.length,
          policy: { threshold: 0.5 },
          windowSize: 8,
          windowWaitMs: 100,
          maxPayloadBytes: 1024 * 1024,
          concurrentWindows: 1,
        },
        logs.log,
        () => undefined,
        () => nc.flush(),
      ),
    logs.log,
    { retryDelayMs: 50 },
  );
  const versions: string[] = [];
  const waiters: Array<{ version: string; resolve(): void }> = [];
  follower.onVersion((version) => {
    versions.push(version);
    for (const waiter of waiters.filter((candidate) => candidate.version === version)) waiter.resolve();
  });
  follower.start();
  return {
    follower,
    /** Every version labeling started with, in order. */
    versions,
    /** Resolves once labeling with `version` has started; fails after `timeoutMs`. */
    labelingWith: (version: string, timeoutMs = 10_000): Promise<void> =>
      versions.includes(version)
        ? Promise.resolve()
        : new Promise((resolve, reject) => {
            const timer = setTimeout(
              () => reject(new Error(`not labeling with ${version} after ${timeoutMs} ms (${versions.join(', ')})`)),
              timeoutMs,
            );
            waiters.push({
              version,
              resolve: () => {
                clearTimeout(timer);
                resolve();
              },
            });
          }),
  };
}

/** The durable consumers on the unlabeled stream: one per version being labeled. */
async function consumers(names: NatsNames): Promise<string[]> {
  const found: string[] = [];
  for await (const info of jsm.consumers.list(names.unlabeledStream)) found.push(info.name);
  return found.sort();
}

describe('VersionFollower', () => {
  it('reports a version it cannot load, keeps labeling with the previous one, and retries until it loads', async () => {
    const { registry, names } = await openLabelerRegistry('transient');
    await registry.putArtifact(artifactOf('v1'), 'v1');
    await registry.putArtifact(artifactOf('v2'), 'v2');
    const source = withUnreachableArtifacts(registry);
    const logs = new LogLines('labeler');
    await promote(registry, 'v1');
    const { follower, versions, labelingWith } = startFollower(source, names, logs);
    try {
      await labelingWith('v1');
      source.reachable = false;
      await promote(registry, 'v2');
      const reported = await logs.waitFor((line) => line.msg === REFUSED && line['version'] === 'v2', 'v2 refused');
      expect(reported).toMatchObject({
        level: 50,
        err: { message: 'loading artifact v2: object store unreachable (timeout)' },
      });
      expect(follower.teacherVersion).toBe('v1');
      expect(await consumers(names)).toEqual([labelingConsumer('v1')]);

      source.reachable = true;
      await labelingWith('v2');
      expect(source.attempts.get('v2')).toBeGreaterThanOrEqual(2);
      expect(versions).toEqual(['v1', 'v2']);
      expect(follower.teacherVersion).toBe('v2');
      // The previous version's consumer goes once the new one has taken over.
      await vi.waitFor(async () => expect(await consumers(names)).toEqual([labelingConsumer('v2')]));
    } finally {
      await follower.stop();
    }
  });

  it('keeps retrying a version it can never load, and follows the next promotion', async () => {
    const { registry, names } = await openLabelerRegistry('broken');
    await registry.putArtifact(artifactOf('v1'), 'v1');
    // Stored by the registry, sha256 and all, but not something a labeler can use.
    await registry.putArtifact(
      ModelArtifact.encode({ ...ModelArtifact.decode(artifactOf('v1')), metadata: undefined }).finish(),
      'v3',
    );
    await registry.putArtifact(artifactOf('v4'), 'v4');
    const logs = new LogLines('labeler');
    await promote(registry, 'v1');
    const { follower, versions, labelingWith } = startFollower(registry, names, logs);
    try {
      await labelingWith('v1');
      await promote(registry, 'v3');
      const refusedV3 = (line: { msg: string; [field: string]: unknown }): boolean =>
        line.msg === REFUSED && line['version'] === 'v3';
      const first = await logs.waitFor(refusedV3, 'v3 refused');
      expect(first).toMatchObject({ level: 50, err: { message: 'artifact v3: no metadata' } });
      // Tried again, and refused again.
      await logs.waitFor((line) => refusedV3(line) && line !== first, 'v3 refused a second time');
      expect(follower.teacherVersion).toBe('v1');

      await promote(registry, 'v4');
      await labelingWith('v4');
      expect(versions).toEqual(['v1', 'v4']);
      await vi.waitFor(async () => expect(await consumers(names)).toEqual([labelingConsumer('v4')]));
    } finally {
      await follower.stop();
    }
  });
});
