// The streams and buckets at R3 on a real 3-node JetStream cluster, and the registry working on
// through the loss of a node (docs/architecture.md: cluster mode).
import { natsNames } from '@noisystudent/core';
import { openRegistry } from '@noisystudent/registry';
import { startNatsCluster, startNatsServer, type NatsCluster } from '@noisystudent/registry/testing';
import { DEFAULT_RETENTION, ensureStreams } from '@noisystudent/runtime';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

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
    // The cluster may still be electing stream leaders right after start: retry briefly.
    for (let attempt = 0; ; attempt++) {
      try {
        await ensureStreams(jsm, names, DEFAULT_RETENTION, 3);
        break;
      } catch (error) {
        if (attempt >= 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
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
    // Quorum (2 of 3) stays: the client reconnects to another node, and writes still commit.
    const until = Date.now() + 20_000;
    let second;
    for (;;) {
      try {
        await registry.putArtifact(bytes, 'v2');
        second = await registry.promote({ version: 'v2', promotedBy: 'test', reason: 'node 0 down' }, first.revision);
        break;
      } catch (error) {
        if (Date.now() > until) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
    expect(second.pointer.version).toBe('v2');
    expect((await registry.readTeacher())?.pointer.version).toBe('v2');
    expect(Buffer.from((await registry.getArtifact('v1')).bytes).toString()).toBe(Buffer.from(bytes).toString());

    // The node comes back on its data and catches up.
    await cluster.restart(0);
    expect((await registry.history()).map((record) => record.pointer.version)).toEqual(['v1', 'v2']);
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
