import { spawn, type ChildProcess } from 'node:child_process';
import { constants, rmSync } from 'node:fs';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where Debian's `nats-server` package installs the binary. */
export const DEFAULT_NATS_SERVER_BINARY = '/usr/sbin/nats-server';

export interface StartNatsServerOptions {
  /**
   * The nats-server executable.
   * @default '/usr/sbin/nats-server'
   */
  binary?: string;
  /**
   * JetStream storage directory. Pass the `storeDir` of a stopped server to restart on the same
   * data; a directory passed here is never removed by `stop()`.
   * @default a fresh temporary directory, removed by `stop()`
   */
  storeDir?: string;
  /**
   * Largest message the server accepts, in bytes (nats-server's `max_payload`, at most 64 MiB).
   * @default 1048576 (the server's own default)
   */
  maxPayload?: number;
  /**
   * Client port on 127.0.0.1, e.g. the `port` of a stopped server so that reconnecting clients
   * find the restarted one.
   * @default a free port
   */
  port?: number;
  /**
   * How long to wait for the server to report healthy, in milliseconds.
   * @default 10000
   */
  startTimeoutMs?: number;
  /** More nats-server configuration, e.g. an `authorization` block (`natsAuthorizationConfig`). */
  config?: string;
  /** Require TLS from clients, with this PEM certificate and key (files). */
  tls?: { certFile: string; keyFile: string };
  /** Join a JetStream cluster (see `startNatsCluster`): this node's name, route port and the others' routes. */
  cluster?: { name: string; serverName: string; port: number; routes: string[] };
}

/** A private nats-server with JetStream on loopback, owned by the test that started it. */
export interface NatsServer {
  /** `nats://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** `http://127.0.0.1:<monitorPort>` (`/healthz`, `/jsz`, `/varz`). */
  monitorUrl: string;
  storeDir: string;
  /** What the server logged so far (its stderr), for failing tests to print. */
  log(): string;
  /**
   * Shuts the server down gracefully (SIGTERM; SIGKILL after 10 s), waits for it to exit and removes
   * the directories this harness created. Safe to call more than once.
   */
  stop(): Promise<void>;
  /**
   * SIGKILLs the server (a crash: no goodbye to clients or the cluster) and waits for it to exit.
   * A `storeDir` given in the options keeps its data; `stop()` afterwards removes the rest.
   */
  kill(): Promise<void>;
}

const DEFAULT_START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;
const HEALTH_POLL_MS = 25;
const LOG_LIMIT_CHARS = 64 * 1024;
const PORT_ATTEMPTS = 3;

/**
 * The server runs under a small shell watchdog in its own process group: the watchdog holds the
 * read end of a pipe whose write end only this process has, so when this process dies for any
 * reason (a test runner killing its worker with a signal included) the pipe closes, the server is
 * terminated and the harness's temporary directory removed. `stop()` closes the pipe on purpose.
 * Without it, a killed test worker would leave orphan servers holding ports and disk.
 * Arguments: the directory to remove afterwards ("" for none), then the server command line.
 */
const WATCHDOG_SCRIPT = [
  'owned_dir=$1',
  'shift',
  // sh gives background jobs /dev/null as stdin, so the pipe travels to the watcher as fd 3.
  'exec 3<&0',
  '"$@" </dev/null 3<&- &',
  'server=$!',
  '{ cat >/dev/null; kill -TERM "$server" 2>/dev/null; } <&3 &',
  'exec 3<&-',
  'wait "$server"',
  'status=$?',
  'if [ -n "$owned_dir" ]; then rm -rf "$owned_dir"; fi',
  'exit $status',
].join('\n');

/** Every server still running, killed when this process exits even if a test forgot `stop()`. */
const running = new Map<ChildProcess, string | undefined>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [child, ownedDir] of running) {
      killGroup(child, 'SIGKILL');
      if (ownedDir !== undefined) rmSync(ownedDir, { recursive: true, force: true });
    }
  });
}

/**
 * Starts `nats-server -js` on 127.0.0.1 with free client and monitoring ports and waits until its
 * `/healthz` answers ok. Throws, with the server's log, if it exits or is not healthy in time.
 */
export async function startNatsServer(options: StartNatsServerOptions = {}): Promise<NatsServer> {
  const binary = options.binary ?? DEFAULT_NATS_SERVER_BINARY;
  try {
    await access(binary, constants.X_OK);
  } catch (error) {
    throw new Error(
      `nats-server: no executable at ${binary}; install Debian's nats-server ` +
        '(`apt-get install nats-server`, or `npm test` does it as root)',
      { cause: error },
    );
  }
  if (options.maxPayload !== undefined && !(Number.isSafeInteger(options.maxPayload) && options.maxPayload > 0)) {
    throw new Error(`maxPayload: expected a positive integer number of bytes, got ${options.maxPayload}`);
  }
  // A port found free can be taken before the server binds it; then start again on new ones. Each
  // attempt gets its own directory: a failed one is removed with everything in it.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(binary, options);
    } catch (error) {
      const portTaken = error instanceof Error && /address already in use/i.test(error.message);
      if (!portTaken || attempt >= PORT_ATTEMPTS) throw error;
    }
  }
}

async function startOnce(binary: string, options: StartNatsServerOptions): Promise<NatsServer> {
  const ownedDir = await mkdtemp(join(tmpdir(), 'ns-nats-'));
  try {
    const storeDir = options.storeDir ?? join(ownedDir, 'store');
    const args: string[] = [];
    if (options.maxPayload !== undefined || options.config !== undefined) {
      const configPath = join(ownedDir, 'nats-server.conf');
      const maxPayload = options.maxPayload === undefined ? '' : `max_payload: ${options.maxPayload}\n`;
      await writeFile(configPath, `${maxPayload}${options.config ?? ''}`, { mode: 0o600 });
      args.push('-c', configPath);
    }
    const port = options.port ?? (await freePort());
    const monitorPort = await freePort();
    args.push('-js', '-a', '127.0.0.1', '-p', `${port}`, '-m', `${monitorPort}`, '-sd', storeDir);
    if (options.tls !== undefined)
      args.push('--tls', '--tlscert', options.tls.certFile, '--tlskey', options.tls.keyFile);
    const { cluster } = options;
    if (cluster !== undefined) {
      args.push(
        '-n',
        cluster.serverName,
        '--cluster_name',
        cluster.name,
        '--cluster',
        `nats://127.0.0.1:${cluster.port}`,
      );
      args.push('--routes', cluster.routes.join(','));
    }
    return await launch(binary, args, { port, monitorPort, storeDir, ownedDir }, options);
  } catch (error) {
    await rm(ownedDir, { recursive: true, force: true });
    throw error;
  }
}

interface Placement {
  port: number;
  monitorPort: number;
  storeDir: string;
  ownedDir: string;
}

async function launch(
  binary: string,
  args: string[],
  placement: Placement,
  options: StartNatsServerOptions,
): Promise<NatsServer> {
  const { port, monitorPort, storeDir, ownedDir } = placement;
  const child = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT, 'nats-server', ownedDir, binary, ...args], {
    stdio: ['pipe', 'ignore', 'pipe'],
    detached: true,
  });
  installExitHook();
  // The temporary dir is removed on exit only when this server keeps no data the caller asked for.
  running.set(child, options.storeDir === undefined ? ownedDir : undefined);
  let log = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    log = (log + chunk).slice(-LOG_LIMIT_CHARS);
  });
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      child.stdin?.destroy();
      resolve(signal === null ? `exit code ${code}` : `signal ${signal}`);
    });
  });
  let exitStatus: string | undefined;
  void exited.then((status) => (exitStatus = status));
  const monitorUrl = `http://127.0.0.1:${monitorPort}`;

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exitStatus === undefined) {
        child.stdin?.end();
        const forced = setTimeout(() => killGroup(child, 'SIGKILL'), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(forced);
      }
      await rm(ownedDir, { recursive: true, force: true });
    })();
    return stopping;
  };

  const timeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exitStatus !== undefined) {
      await stop();
      throw new Error(`nats-server exited during start (${exitStatus}): ${binary} ${args.join(' ')}\n${log}`);
    }
    if (await isHealthy(monitorUrl)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`nats-server: not healthy after ${timeoutMs} ms: ${binary} ${args.join(' ')}\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, HEALTH_POLL_MS));
  }
  const kill = async (): Promise<void> => {
    if (exitStatus === undefined) {
      killGroup(child, 'SIGKILL');
      await exited;
    }
  };
  return { url: `nats://127.0.0.1:${port}`, port, monitorUrl, storeDir, log: () => log, stop, kill };
}

async function isHealthy(monitorUrl: string): Promise<boolean> {
  try {
    const response = await fetch(`${monitorUrl}/healthz`, { signal: AbortSignal.timeout(1000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/** A TCP port on 127.0.0.1 that nothing listened on a moment ago. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error(`expected a TCP address, got ${String(address)}`));
      });
    });
  });
}

/** A JetStream cluster of nats-servers on loopback: every node's client URL, and each node to stop or restart. */
export interface NatsCluster {
  /** Every node's client URL, comma-separated (what `--nats-url` takes). */
  url: string;
  nodes: NatsServer[];
  /** Restarts node `index` on its ports and data (stopping it first if it runs); it rejoins the cluster. */
  restart(index: number): Promise<NatsServer>;
  stop(): Promise<void>;
}

/**
 * Starts `size` nats-servers (at least 3 for JetStream's quorum) routed to each other as one
 * cluster with file storage, and waits until every node is healthy (JetStream ready, which needs
 * the cluster's meta leader).
 */
export async function startNatsCluster(
  size = 3,
  options: Pick<StartNatsServerOptions, 'binary' | 'startTimeoutMs'> = {},
): Promise<NatsCluster> {
  const name = `ns-test-${process.pid}`;
  const clientPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const storeRoot = await mkdtemp(join(tmpdir(), 'ns-nats-cluster-'));
  const nodeOptions = (index: number): StartNatsServerOptions => ({
    ...options,
    port: clientPorts[index] ?? 0,
    storeDir: join(storeRoot, `node-${index}`),
    startTimeoutMs: options.startTimeoutMs ?? 30_000,
    cluster: {
      name,
      serverName: `node-${index}`,
      port: routePorts[index] ?? 0,
      routes: routePorts.filter((_, other) => other !== index).map((port) => `nats://127.0.0.1:${port}`),
    },
  });
  const nodes = await Promise.all(Array.from({ length: size }, (_, index) => startNatsServer(nodeOptions(index))));
  return {
    url: nodes.map((node) => node.url).join(','),
    nodes,
    restart: async (index) => {
      await nodes[index]?.stop();
      const node = await startNatsServer(nodeOptions(index));
      nodes[index] = node;
      return node;
    },
    stop: async () => {
      await Promise.all(nodes.map((node) => node.stop()));
      await rm(storeRoot, { recursive: true, force: true });
    },
  };
}
