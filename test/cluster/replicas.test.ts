// The streams and buckets at R3 on a real 3-node JetStream cluster, and the registry working on
// through the loss of a node (docs/architecture.md: cluster mode).
import { natsNames } from '@noisystudent/core';
import { openRegistry } from '@noisystudent/registry';
import { startNatsCluster, startNatsServer, type NatsCluster } from '@noisystudent/registry/testing';
import { DEFAULT_RETENTION, ensureStreams } from '@noisystudent/runtime';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** `call`, asked again for up to 30 s while it fails (a cluster electing leaders answers Unavailable). */
async function eventually<T>(call: () => Promise<T>): Promise<T> {
  const until = Date.now() + 30_000;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (Date.now() > until) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

describe('a 3-node JetStream cluster with --nats-replicas 3', () => {
  let cluster: NatsCluster;
  let nc: NatsConnection;
  const names = natsNames('cl');

  beforeAll(async () => {
    cluster = await startNatsCluster(3);
    nc = await connect({ servers: cluster.url.split(','), maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  });
  afterAll(async () => {
    await nc?.close();
    await cluster?.stop();
  });

  it('creates every stream, the KV bucket and the object store with 3 replicas', async () => {
    const jsm = await nc.jetstreamManager();
    // The cluster may still be electing stream leaders right after start.
    await eventually(() => ensureStreams(jsm, names, DEFAULT_RETENTION, 3));
    await openRegistry(nc, { prefix: 'cl', replicas: 3 });
    for (const stream of [
      names.unlabeledStream,
      names.shardsStream,
      `KV_${names.registryBucket}`,
      `OBJ_${names.modelsBucket}`,
    ]) {
      const info = await jsm.streams.info(stream);
      expect(info.config.num_replicas, stream).toBe(3);
      expect(info.cluster?.replicas ?? [], stream).toHaveLength(2);
    }
  });

  it('keeps serving the registry (reads, artifacts, compare-and-set) with one node down', async () => {
    const registry = await openRegistry(nc, { prefix: 'cl', replicas: 3 });
    const bytes = new TextEncoder().encode('not a real model, only bytes to replicate');
    await registry.putArtifact(bytes, 'v1');
    const first = await registry.promote({ version: 'v1', promotedBy: 'test', reason: 'first' }, 0);

    await cluster.nodes[0]?.stop();
    // Quorum (2 of 3) stays: the client reconnects to another node, and writes still commit. While
    // the cluster moves leaders a call may answer Unavailable (as documented): ask again.
    await eventually(() => registry.putArtifact(bytes, 'v2'));
    const second = await eventually(() =>
      registry
        .promote({ version: 'v2', promotedBy: 'test', reason: 'node 0 down' }, first.revision)
        .catch(async (error: unknown) => {
          // A promote whose answer was lost may have committed: then the pointer already says v2.
          const now = await registry.readTeacher();
          if (now?.pointer.version === 'v2') return now;
          throw error;
        }),
    );
    expect(second.pointer.version).toBe('v2');
    expect((await eventually(() => registry.readTeacher()))?.pointer.version).toBe('v2');
    const artifact = await eventually(() => registry.getArtifact('v1'));
    expect(Buffer.from(artifact.bytes).toString()).toBe(Buffer.from(bytes).toString());

    // The node comes back on its data and catches up.
    await cluster.restart(0);
    const history = await eventually(() => registry.history());
    expect(history.map((record) => record.pointer.version)).toEqual(['v1', 'v2']);
  });
});

describe('--nats-replicas above what the servers can hold', () => {
  it('says the setting needs a cluster of that many nodes', async () => {
    const server = await startNatsServer();
    const nc = await connect({ servers: server.url });
    try {
      const error = await ensureStreams(await nc.jetstreamManager(), natsNames('one'), DEFAULT_RETENTION, 3).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(String(error)).toContain('--nats-replicas 3 needs a JetStream cluster of at least 3 nodes');
    } finally {
      await nc.close();
      await server.stop();
    }
  });
});
