// The local stack `nsctl up` starts and `nsctl down` stops: nats-server with JetStream, then the
// trainer, teacher and labeler, each a detached process logging to <data>/logs, described by
// <data>/stack.json so that every later nsctl command finds them.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { natsAuthorizationConfig, NATS_USERS, type NatsUser } from '@noisystudent/core';

import { CliError, EXIT } from './cli-error.js';

export const SERVICES = ['trainer', 'teacher', 'labeler'] as const;
export type ServiceName = (typeof SERVICES)[number];

export const DEFAULT_PORTS = {
  nats: 4222,
  teacher: { grpc: 50051, metrics: 9464 },
  labeler: { grpc: 50052, metrics: 9465 },
  trainer: { grpc: 50053, metrics: 9466 },
} as const;

export interface StackProcess {
  pid: number;
  log: string;
}

export interface StackService extends StackProcess {
  address: string;
  metricsPort: number;
  args: string[];
}

export interface StackFile {
  dataDir: string;
  startedAt: string;
  prefix: string;
  /** `user` and `passwordFile`: the admin login nsctl uses (each service has a user of its own). */
  nats: StackProcess & { url: string; storeDir: string; user?: string; passwordFile?: string };
  services: Partial<Record<ServiceName, StackService>>;
}

export interface UpOptions {
  dataDir: string;
  /** Pick free ports instead of the standard ones (tests, or a second stack beside a first). */
  freePorts: boolean;
  prefix: string;
  /** Extra flags per service (e.g. the trainer's --preset). */
  extraArgs: Partial<Record<ServiceName, string[]>>;
  /** How long each part may take to answer. */
  readyTimeoutMs: number;
  /** The folders the teacher and the trainer may read and write files in (real paths; the data folder lies in them). */
  allowedRoots: readonly string[];
  say: (line: string) => void;
}

const STACK_FILE = 'stack.json';

export function stackFilePath(dataDir: string): string {
  return join(resolve(dataDir), STACK_FILE);
}

/** The stack recorded in `dataDir`, or undefined when none was started there (or it was stopped). */
export async function readStack(dataDir: string): Promise<StackFile | undefined> {
  let text: string;
  try {
    text = await readFile(stackFilePath(dataDir), 'utf8');
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as StackFile;
  } catch (error) {
    throw new CliError(`${stackFilePath(dataDir)}: not a stack file (delete it if no stack runs)`, EXIT.failed, {
      cause: error,
    });
  }
}

/** Whether `pid` runs and its command line contains `marker` (a pid reused by another program is not ours). */
export function isRunning(pid: number, marker: string): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
  } catch {
    return true;
  }
}

function serviceEntry(service: ServiceName): string {
  // The services are workspaces of this repository: src/ and dist/ sit at the same depth.
  return fileURLToPath(new URL(`../../../services/${service}/dist/main.js`, import.meta.url));
}

export function natsServerBinary(): string {
  const configured = process.env['NS_NATS_SERVER'];
  if (configured !== undefined && configured !== '') return configured;
  for (const dir of (process.env['PATH'] ?? '').split(':').concat(['/usr/sbin', '/usr/local/sbin'])) {
    const candidate = join(dir, 'nats-server');
    if (dir !== '' && existsSync(candidate)) return candidate;
  }
  throw new CliError(
    'nats-server not found (PATH, /usr/sbin): install it with `apt-get install nats-server` (npm test and npm run demo do it when run as root), or set NS_NATS_SERVER',
    EXIT.unavailable,
  );
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

async function portTaken(port: number): Promise<boolean> {
  return new Promise((answer) => {
    const server = createServer();
    server.once('error', () => answer(true));
    server.listen(port, '127.0.0.1', () => server.close(() => answer(false)));
  });
}

async function canConnect(port: number): Promise<boolean> {
  return new Promise((answer) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      answer(true);
    });
    socket.once('error', () => answer(false));
  });
}

async function tail(path: string, lines = 8): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

/** Starts `command` detached (it outlives nsctl), its output appended to `log`. */
function startDetached(command: string, args: string[], log: string): number {
  const fd = openSync(log, 'a');
  try {
    const child = spawn(command, args, { detached: true, stdio: ['ignore', fd, fd], env: process.env });
    if (child.pid === undefined) throw new CliError(`could not start ${command}`, EXIT.failed);
    child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

async function writeStack(stack: StackFile): Promise<void> {
  const path = stackFilePath(stack.dataDir);
  await writeFile(`${path}.tmp`, `${JSON.stringify(stack, null, 2)}\n`);
  await rename(`${path}.tmp`, path);
}

interface Ports {
  nats: number;
  grpc: Record<ServiceName, number>;
  metrics: Record<ServiceName, number>;
}

async function choosePorts(freePorts: boolean): Promise<Ports> {
  if (freePorts) {
    const pick = async (): Promise<Record<ServiceName, number>> => ({
      trainer: await freePort(),
      teacher: await freePort(),
      labeler: await freePort(),
    });
    return { nats: await freePort(), grpc: await pick(), metrics: await pick() };
  }
  const ports: Ports = {
    nats: DEFAULT_PORTS.nats,
    grpc: {
      trainer: DEFAULT_PORTS.trainer.grpc,
      teacher: DEFAULT_PORTS.teacher.grpc,
      labeler: DEFAULT_PORTS.labeler.grpc,
    },
    metrics: {
      trainer: DEFAULT_PORTS.trainer.metrics,
      teacher: DEFAULT_PORTS.teacher.metrics,
      labeler: DEFAULT_PORTS.labeler.metrics,
    },
  };
  for (const port of [ports.nats, ...Object.values(ports.grpc), ...Object.values(ports.metrics)]) {
    if (await portTaken(port)) {
      throw new CliError(
        `port ${port} on 127.0.0.1 is taken (another stack or nats-server?): \`nsctl status\` to see, \`nsctl down\` to stop ours, or \`nsctl up --free-ports\``,
        EXIT.refused,
      );
    }
  }
  return ports;
}

/**
 * Starts nats-server and the three services and waits until each answers; records them in
 * <data>/stack.json as they start, so that a failed start can be stopped with `nsctl down`.
 * `isUp(service, address)` says whether a service answers its health check yet.
 */
export async function startStack(
  options: UpOptions,
  isUp: (service: ServiceName, address: string) => Promise<boolean>,
): Promise<StackFile> {
  const dataDir = resolve(options.dataDir);
  const existing = await readStack(dataDir);
  if (existing !== undefined && stackRunning(existing)) {
    throw new CliError(
      `a stack already runs from ${dataDir} (NATS ${existing.nats.url}): \`nsctl status --data ${options.dataDir}\`, or \`nsctl down --data ${options.dataDir}\` first`,
      EXIT.refused,
    );
  }
  const logs = join(dataDir, 'logs');
  const storeDir = join(dataDir, 'nats');
  await mkdir(logs, { recursive: true });
  await mkdir(storeDir, { recursive: true });
  const ports = await choosePorts(options.freePorts);
  const natsLog = join(logs, 'nats-server.log');
  const natsUrl = `nats://127.0.0.1:${ports.nats}`;
  const login = await natsLogins(dataDir, options.prefix);
  const natsPid = startDetached(
    natsServerBinary(),
    [
      ...['-c', login.configFile, '-js', '-a', '127.0.0.1', '-p', String(ports.nats)],
      ...['-sd', storeDir, '-n', `nsctl-${ports.nats}`],
    ],
    natsLog,
  );
  const stack: StackFile = {
    dataDir,
    startedAt: new Date().toISOString(),
    prefix: options.prefix,
    nats: {
      pid: natsPid,
      log: natsLog,
      url: natsUrl,
      storeDir,
      user: 'admin',
      passwordFile: login.passwordFiles.admin,
    },
    services: {},
  };
  await writeStack(stack);
  try {
    await waitFor(
      () => canConnect(ports.nats),
      () => isRunning(natsPid, 'nats-server'),
      options.readyTimeoutMs,
      `nats-server on port ${ports.nats}`,
      natsLog,
    );
    options.say(`nats-server  ${natsUrl}  (JetStream in ${storeDir})`);
    for (const service of SERVICES) {
      const address = `127.0.0.1:${ports.grpc[service]}`;
      const args = [
        '--port',
        String(ports.grpc[service]),
        '--metrics-port',
        String(ports.metrics[service]),
        '--nats-url',
        natsUrl,
        '--prefix',
        options.prefix,
        ...['--nats-user', service, '--nats-password-file', login.passwordFiles[service]],
        ...(service === 'labeler' ? [] : ['--allowed-roots', options.allowedRoots.join(',')]),
        ...(service === 'trainer' ? ['--state-dir', join(dataDir, 'trainer')] : []),
        ...(service === 'labeler' ? ['--teachers', `127.0.0.1:${ports.grpc.teacher}`, '--balance', 'none'] : []),
        ...(options.extraArgs[service] ?? []),
      ];
      const log = join(logs, `${service}.log`);
      const entry = serviceEntry(service);
      if (!existsSync(entry)) {
        throw new CliError(`${entry} is missing: build first (npm run build)`, EXIT.failed);
      }
      const pid = startDetached(process.execPath, [entry, ...args], log);
      stack.services[service] = { pid, log, address, metricsPort: ports.metrics[service], args };
      await writeStack(stack);
      await waitFor(
        () => isUp(service, address),
        () => isRunning(pid, entry),
        options.readyTimeoutMs,
        `the ${service} at ${address}`,
        log,
      );
      options.say(`${service.padEnd(11)}  ${address}  (metrics :${ports.metrics[service]}, log ${log})`);
    }
    return stack;
  } catch (error) {
    await stopStack(stack, { timeoutMs: 10_000, say: options.say });
    throw error;
  }
}

/**
 * One NATS user per service and `admin` for nsctl, each with a password in
 * `<data>/secrets/nats-<user>.password` (made once, mode 0600), and the nats-server
 * configuration granting each only its own subjects (`natsAuthorizationConfig`).
 */
async function natsLogins(
  dataDir: string,
  prefix: string,
): Promise<{ configFile: string; passwordFiles: Record<NatsUser, string> }> {
  const secrets = join(dataDir, 'secrets');
  await mkdir(secrets, { recursive: true, mode: 0o700 });
  const passwords = {} as Record<NatsUser, string>;
  const passwordFiles = {} as Record<NatsUser, string>;
  for (const user of NATS_USERS) {
    const file = join(secrets, `nats-${user}.password`);
    let password = existsSync(file) ? (await readFile(file, 'utf8')).trim() : '';
    if (password === '') {
      password = randomBytes(24).toString('base64url');
      await writeFile(file, `${password}\n`, { mode: 0o600 });
    }
    passwords[user] = password;
    passwordFiles[user] = file;
  }
  const configFile = join(secrets, 'nats-server.conf');
  await writeFile(configFile, natsAuthorizationConfig(prefix, passwords), { mode: 0o600 });
  return { configFile, passwordFiles };
}

async function waitFor(
  ready: () => Promise<boolean>,
  alive: () => boolean,
  timeoutMs: number,
  what: string,
  log: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (!alive()) throw new CliError(`${what} exited while starting; the end of ${log}:\n${await tail(log)}`);
    if (Date.now() > deadline) {
      throw new CliError(`${what} did not answer within ${timeoutMs / 1000} s; the end of ${log}:\n${await tail(log)}`);
    }
    await sleep(200);
  }
}

/** Whether any process of the stack still runs. */
export function stackRunning(stack: StackFile): boolean {
  return (
    isRunning(stack.nats.pid, 'nats-server') ||
    Object.values(stack.services).some((service) => isRunning(service.pid, 'main.js'))
  );
}

async function stopProcess(pid: number, marker: string, timeoutMs: number): Promise<'stopped' | 'killed' | 'gone'> {
  if (!isRunning(pid, marker)) return 'gone';
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isRunning(pid, marker)) return 'stopped';
    await sleep(100);
  }
  process.kill(pid, 'SIGKILL');
  return 'killed';
}

/**
 * Stops the three services together (the trainer checkpoints a round in progress), then
 * nats-server; each gets SIGTERM and `timeoutMs` before SIGKILL. Removes stack.json.
 */
export async function stopStack(
  stack: StackFile,
  options: { timeoutMs: number; say: (line: string) => void },
): Promise<void> {
  await Promise.all(
    SERVICES.map(async (name) => {
      const service = stack.services[name];
      if (service === undefined) return;
      const outcome = await stopProcess(service.pid, 'main.js', options.timeoutMs);
      if (outcome === 'killed') options.say(`${name}: did not stop within ${options.timeoutMs / 1000} s, killed`);
      else if (outcome === 'stopped') options.say(`${name}: stopped`);
    }),
  );
  const outcome = await stopProcess(stack.nats.pid, 'nats-server', options.timeoutMs);
  if (outcome !== 'gone') options.say(`nats-server: ${outcome}`);
  await rm(stackFilePath(stack.dataDir), { force: true });
}
