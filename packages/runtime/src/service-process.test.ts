import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { HealthClient } from './health-client.js';
import { connectNats } from './nats-connection.js';
import { createLogger } from './logger.js';
import { spawnService, type SpawnedService } from './service-process.js';

const FIXTURE = fileURLToPath(new URL('../test-fixtures/fixture-service.ts', import.meta.url));
// The fixture runs from its TypeScript source, with workspace packages resolved to theirs.
const EXEC_ARGV = ['--import', 'tsx', '--conditions', 'source'];

const start = (args: string[]): Promise<SpawnedService> =>
  spawnService(FIXTURE, { args, execArgv: EXEC_ARGV, timeoutMs: 30_000 });

describe('spawnService and the readiness signal', () => {
  it('resolves with the ports the service bound, then its health turns SERVING, and stop() is graceful', async () => {
    const service = await start(['--serve-after-ms', '200']);
    expect(service.port).toBeGreaterThan(0);
    expect(service.metricsPort).toBeGreaterThan(0);
    const health = new HealthClient(service.address);
    try {
      await health.waitFor('SERVING', '', 10_000);
      expect(await health.check()).toBe('SERVING');
    } finally {
      health.close();
    }
    const metrics = await fetch(`http://127.0.0.1:${service.metricsPort}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await service.stop()).toBe(0);
  });

  it('waitFor gives up after its timeout naming the last status', async () => {
    const service = await start(['--serve-after-ms', '0']);
    const health = new HealthClient(service.address);
    try {
      await expect(health.waitFor('SERVING', '', 500)).rejects.toThrow(
        'health of "": not SERVING after 500 ms (last NOT_SERVING)',
      );
    } finally {
      health.close();
      await service.stop();
    }
  });

  it('rejects when the service exits before listening: a start that throws (1), a bad setting (2)', async () => {
    await expect(start(['--fail-start', 'yes'])).rejects.toThrow(/exited \(code 1\) before it was listening/);
    await expect(start(['--port', 'eighty'])).rejects.toThrow(/exited \(code 2\) before it was listening/);
  });
});

describe('connectNats', () => {
  it('says where it tried and what to run when no server answers', async () => {
    const log = createLogger({ service: 'test', level: 'silent' });
    // Port 1 on loopback: nothing listens there.
    await expect(connectNats({ servers: 'nats://127.0.0.1:1', name: 'test', log })).rejects.toThrow(
      /NATS at nats:\/\/127\.0\.0\.1:1: .*is nats-server running with -js\?/,
    );
    await expect(connectNats({ servers: ' , ', name: 'test', log })).rejects.toThrow(
      'natsUrl: expected one or more NATS URLs, got " , "',
    );
  });
});
