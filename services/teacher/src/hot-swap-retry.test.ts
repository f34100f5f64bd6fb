// Hot swap when the registry cannot hand over a promoted version for a while: the teacher keeps
// serving the previous version, tries again, and serves the new one once it can be read.
import { EventEmitter, once } from 'node:events';

import { Unavailable } from '@noisystudent/core';
import { makeTestArtifact } from '@noisystudent/ml/testing';
import { openRegistry, type Registry, type TeacherSource } from '@noisystudent/registry';
import { startNatsServer, type NatsServer } from '@noisystudent/registry/testing';
import { createLogger } from '@noisystudent/runtime';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { HotSwap } from './hot-swap.js';
import { ModelHost } from './model-host.js';
import { ModelSlot, type ServingModel } from './model-slot.js';

let server: NatsServer;
let nc: NatsConnection;
let registry: Registry;
let host: ModelHost;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  registry = await openRegistry(nc, { prefix: 'retry' });
  for (const [version, seed] of [
    ['v1', 1],
    ['v2', 2],
  ] as const) {
    await registry.putArtifact((await makeTestArtifact({ version, seed })).bytes, version);
  }
  host = await ModelHost.start(undefined);
});

afterAll(async () => {
  await host?.close();
  await nc?.close();
  await server?.stop();
});

async function promote(version: string): Promise<void> {
  const current = await registry.readTeacher();
  await registry.promote({ version, promotedBy: 'test', reason: 'test' }, current?.revision ?? 0);
}

describe('hot swap with the registry unreachable', () => {
  it('keeps serving the previous version, retries the new one, and swaps once it is readable', async () => {
    const attempts = new Map<string, number>();
    let reachable = true;
    let thirdTry = (): void => undefined;
    const triedThrice = new Promise<void>((resolve) => (thirdTry = resolve));
    const source: TeacherSource = {
      watchTeacher: () => registry.watchTeacher(),
      getArtifact: (version, expectedSha256) => {
        attempts.set(version, (attempts.get(version) ?? 0) + 1);
        if (attempts.get(version) === 3) thirdTry();
        return reachable
          ? registry.getArtifact(version, expectedSha256)
          : Promise.reject(new Unavailable(`loading artifact ${version}: object store unreachable (timeout)`));
      },
    };
    const slot = new ModelSlot(host);
    const swaps: string[] = [];
    const refused: string[] = [];
    const swapped = new EventEmitter();
    const hotSwap = new HotSwap(
      source,
      host,
      slot,
      4,
      createLogger({ service: 'test', level: 'silent' }),
      {
        swapped: (model: ServingModel) => {
          swaps.push(model.version);
          swapped.emit('swapped', model.version);
        },
        refused: (version) => refused.push(version),
      },
      { retryFailedAfterMs: 50 },
    );
    try {
      await promote('v1');
      hotSwap.start();
      await once(swapped, 'swapped');
      reachable = false;
      await promote('v2');
      // Tried, failed, tried again: still v1, and nothing counted as refused.
      await triedThrice;
      expect(slot.model?.version).toBe('v1');
      expect(refused).toEqual([]);
      reachable = true;
      const [version] = (await once(swapped, 'swapped')) as [string];
      expect(version).toBe('v2');
      expect(swaps).toEqual(['v1', 'v2']);
    } finally {
      await hotSwap.stop();
    }
  });
});
