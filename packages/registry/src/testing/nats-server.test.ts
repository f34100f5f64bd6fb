import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { connect, StringCodec } from 'nats';
import { describe, expect, it } from 'vitest';

import { startNatsServer } from './nats-server.js';

/** Polls `condition` until it holds; fails with `what` after `ms`. */
async function waitUntil(condition: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function answersHealthz(monitorUrl: string): Promise<boolean> {
  try {
    const response = await fetch(`${monitorUrl}/healthz`, { signal: AbortSignal.timeout(1000) });
    return response.ok;
  } catch {
    return false;
  }
}

describe('startNatsServer', () => {
  it('explains how to install nats-server when the binary is missing', async () => {
    await expect(startNatsServer({ binary: '/nonexistent/nats-server' })).rejects.toThrow(
      "nats-server: no executable at /nonexistent/nats-server; install Debian's nats-server " +
        '(`apt-get install nats-server`, or `npm test` does it as root)',
    );
  });

  it('starts a JetStream server on loopback and removes its data on stop', async () => {
    const server = await startNatsServer();
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    const nc = await connect({ servers: server.url });
    try {
      const account = await (await nc.jetstreamManager()).getAccountInfo();
      expect(account.streams).toBe(0);
      expect(nc.info?.max_payload).toBe(1024 * 1024);
    } finally {
      await nc.close();
    }
    expect(existsSync(server.storeDir)).toBe(true);
    expect(server.log()).toContain('Server is ready');
    await server.stop();
    expect(existsSync(server.storeDir)).toBe(false);
    expect(await answersHealthz(server.monitorUrl)).toBe(false);
    await server.stop();
  });

  it('applies maxPayload', async () => {
    const server = await startNatsServer({ maxPayload: 2 * 1024 * 1024 });
    const nc = await connect({ servers: server.url });
    try {
      expect(nc.info?.max_payload).toBe(2 * 1024 * 1024);
      const ack = await nc
        .jetstream()
        .views.kv('payload')
        .then((kv) => kv.put('big', new Uint8Array(1_500_000)));
      expect(ack).toBe(1);
    } finally {
      await nc.close();
      await server.stop();
    }
  });

  it('restarts on the same store dir and port, keeping JetStream data', async () => {
    const storeDir = await mkdtemp(join(tmpdir(), 'ns-nats-test-'));
    const codec = StringCodec();
    try {
      const first = await startNatsServer({ storeDir });
      const writer = await connect({ servers: first.url });
      const kv = await writer.jetstream().views.kv('durable');
      await kv.put('teacher', codec.encode('v7'));
      await writer.close();
      await first.stop();
      expect(existsSync(storeDir)).toBe(true);

      const second = await startNatsServer({ storeDir, port: first.port });
      expect(second.url).toBe(first.url);
      const reader = await connect({ servers: second.url });
      try {
        const entry = await (await reader.jetstream().views.kv('durable')).get('teacher');
        expect(entry === null ? undefined : codec.decode(entry.value)).toBe('v7');
      } finally {
        await reader.close();
        await second.stop();
      }
    } finally {
      await rm(storeDir, { recursive: true, force: true });
    }
  });

  it('refuses an invalid maxPayload', async () => {
    await expect(startNatsServer({ maxPayload: 0 })).rejects.toThrow('maxPayload: expected a positive integer');
  });

  it('reports a server that exits during start, with its log', async () => {
    const blocker = await startNatsServer();
    try {
      await expect(startNatsServer({ port: blocker.port })).rejects.toThrow(
        /nats-server exited during start[\s\S]*\[FTL\]/,
      );
    } finally {
      await blocker.stop();
    }
  });

  it('takes its server down when the process that started it is killed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ns-nats-orphan-'));
    const harness = fileURLToPath(new URL('./nats-server.ts', import.meta.url));
    const script = join(dir, 'start.mjs');
    await writeFile(
      script,
      `import { startNatsServer } from ${JSON.stringify(harness)};\n` +
        'const server = await startNatsServer();\n' +
        'process.stdout.write(JSON.stringify({ monitorUrl: server.monitorUrl, storeDir: server.storeDir }) + "\\n");\n' +
        'setInterval(() => {}, 1000);\n',
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const started = await new Promise<string>((resolve, reject) => {
        let output = '';
        child.stdout.setEncoding('utf8');
        child.stdout.on('data', (chunk: string) => {
          output += chunk;
          const line = output.split('\n')[0];
          if (output.includes('\n') && line !== undefined) resolve(line);
        });
        child.once('exit', (code) =>
          reject(new Error(`the starting process exited (${code}) before the server was up`)),
        );
      });
      const { monitorUrl, storeDir } = JSON.parse(started) as { monitorUrl: string; storeDir: string };
      expect(await answersHealthz(monitorUrl)).toBe(true);
      expect(existsSync(storeDir)).toBe(true);
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      await waitUntil(async () => !(await answersHealthz(monitorUrl)), 10_000, 'the orphaned server to stop');
      await waitUntil(async () => !existsSync(storeDir), 10_000, "the orphaned server's data to be removed");
    } finally {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });
});
