// What every nsctl command needs: where the stack is (its stack.json, or flags), output mode,
// and clients made on first use and closed at the end.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';

import type { ConnectOptions } from '@noisystudent/client';
import { AllowedRoots, isNsError, parseAllowedRoots } from '@noisystudent/core';
import { connect, type NatsConnection } from 'nats';

import { CliError, EXIT } from './cli-error.js';
import { DEFAULT_PORTS, readStack, type ServiceName, type StackFile } from './stack.js';

export interface GlobalOptions {
  data: string;
  json: boolean;
  teacher?: string;
  labeler?: string;
  trainer?: string;
  natsUrl?: string;
  prefix?: string;
  tokenFile?: string;
  natsUser?: string;
  natsPasswordFile?: string;
  natsTlsCa?: string;
  allowedRoots?: string;
}

export const DEFAULT_DATA_DIR = '.noisystudent';

export interface Addresses {
  teacher: string;
  labeler: string;
  trainer: string;
  natsUrl: string;
  prefix: string;
  /** The NATS login (the stack's admin user, or --nats-user and --nats-password-file). */
  natsUser?: string;
  natsPasswordFile?: string;
  /** The CA to verify NATS servers that require TLS. */
  natsTlsCa?: string;
  /** The bearer token for services started with tokens (--token-file, else NS_TOKEN). */
  token?: string;
  /** The stack these came from, when nsctl started it. */
  stack?: StackFile;
}

/** How to reach `service`: its address and the token, for connectTeacher/Labeler/Trainer. */
export function target(addresses: Addresses, service: ServiceName): ConnectOptions {
  return { address: addresses[service], ...(addresses.token === undefined ? {} : { token: addresses.token }) };
}

function natsLoginOf(
  options: GlobalOptions,
  stack: StackFile | undefined,
): { natsUser?: string; natsPasswordFile?: string } {
  if (options.natsUser !== undefined) {
    return {
      natsUser: options.natsUser,
      ...(options.natsPasswordFile ? { natsPasswordFile: options.natsPasswordFile } : {}),
    };
  }
  // The stack's own login only when talking to the stack's NATS.
  if (options.natsUrl === undefined && stack?.nats.user !== undefined && stack.nats.passwordFile !== undefined) {
    return { natsUser: stack.nats.user, natsPasswordFile: stack.nats.passwordFile };
  }
  return {};
}

/** A NATS connection for the registry and the shards, with the login of `addresses`; errors say what to do. */
export async function connectStackNats(addresses: Addresses, name: string): Promise<NatsConnection> {
  const servers = addresses.natsUrl.split(',').map((url) => url.trim());
  const login = await natsLogin(addresses);
  try {
    const tls = addresses.natsTlsCa === undefined ? {} : { tls: { caFile: addresses.natsTlsCa } };
    return await connect({ servers, name, timeout: 3_000, ...login, ...tls });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    if (/authori[sz]ation/i.test(reason)) {
      throw new CliError(
        `NATS at ${servers.join(', ')} refused the login${login.user === undefined ? ' (none given)' : ` of user ${login.user}`}: give --nats-user and --nats-password-file (nsctl up keeps the admin login in <data>/secrets)`,
        EXIT.refused,
        { cause: error },
      );
    }
    throw new CliError(
      `no NATS at ${servers.join(', ')} (${reason}): run \`nsctl up\`, or give --nats-url`,
      EXIT.unavailable,
      {
        cause: error,
      },
    );
  }
}

/** nats.js options for the NATS login of `addresses` (none: connect without a user). */
async function natsLogin(addresses: Addresses): Promise<{ user?: string; pass?: string }> {
  if (addresses.natsUser === undefined) return {};
  if (addresses.natsPasswordFile === undefined) {
    throw new CliError(`--nats-user ${addresses.natsUser}: give --nats-password-file`, EXIT.usage);
  }
  let text: string;
  try {
    text = await readFile(addresses.natsPasswordFile, 'utf8');
  } catch (error) {
    throw new CliError(
      `--nats-password-file ${addresses.natsPasswordFile}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      EXIT.usage,
    );
  }
  return { user: addresses.natsUser, pass: text.split('\n')[0]?.trim() ?? '' };
}

/** The token from --token-file (its first line), else the NS_TOKEN variable. */
async function tokenOf(options: GlobalOptions): Promise<string | undefined> {
  if (options.tokenFile !== undefined) {
    let text: string;
    try {
      text = await readFile(options.tokenFile, 'utf8');
    } catch (error) {
      throw new CliError(
        `--token-file ${options.tokenFile}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
        EXIT.usage,
      );
    }
    const token = text.split('\n')[0]?.trim() ?? '';
    if (token === '')
      throw new CliError(`--token-file ${options.tokenFile}: expected the token on its first line`, EXIT.usage);
    return token;
  }
  return process.env['NS_TOKEN'] || undefined;
}

/** Flags first, then the stack started from --data, then the standard local ports. */
export async function resolveAddresses(options: GlobalOptions): Promise<Addresses> {
  const stack = await readStack(options.data);
  const token = await tokenOf(options);
  const fromStack = (service: ServiceName): string | undefined => stack?.services[service]?.address;
  return {
    teacher: options.teacher ?? fromStack('teacher') ?? `127.0.0.1:${DEFAULT_PORTS.teacher.grpc}`,
    labeler: options.labeler ?? fromStack('labeler') ?? `127.0.0.1:${DEFAULT_PORTS.labeler.grpc}`,
    trainer: options.trainer ?? fromStack('trainer') ?? `127.0.0.1:${DEFAULT_PORTS.trainer.grpc}`,
    natsUrl: options.natsUrl ?? stack?.nats.url ?? `nats://127.0.0.1:${DEFAULT_PORTS.nats}`,
    prefix: options.prefix ?? stack?.prefix ?? 'ns',
    ...natsLoginOf(options, stack),
    ...(options.natsTlsCa === undefined ? {} : { natsTlsCa: options.natsTlsCa }),
    ...(token === undefined ? {} : { token }),
    ...(stack === undefined ? {} : { stack }),
  };
}

/** Output helpers that respect --json: human lines go to stdout unless --json, then one JSON value. */
export interface Output {
  json: boolean;
  /** A human line (stdout), dropped with --json. */
  line(text: string): void;
  /** Progress and notes (stderr), kept with --json. */
  note(text: string): void;
  /** The command's result: printed as JSON with --json, else by `human`. */
  result<T>(value: T, human: (value: T) => void): void;
}

export function makeOutput(json: boolean): Output {
  return {
    json,
    line: (text) => {
      if (!json) process.stdout.write(`${text}\n`);
    },
    note: (text) => process.stderr.write(`${text}\n`),
    result: (value, human) => {
      if (json) process.stdout.write(`${JSON.stringify(value)}\n`);
      else human(value);
    },
  };
}

/** `--allowed-roots` (NS_ALLOWED_ROOTS) opened: the folders nsctl reads and writes files in. */
export async function allowedRootsOf(options: GlobalOptions): Promise<AllowedRoots> {
  return AllowedRoots.open(parseAllowedRoots(options.allowedRoots), '--allowed-roots (NS_ALLOWED_ROOTS)').catch(
    usageError,
  );
}

/**
 * `path` checked against the allowed roots, links resolved: an existing file or folder to read, or
 * where a file or folder to write lands. Outside them, or missing, is a usage error (exit 2).
 */
export async function allowedPath(
  roots: AllowedRoots,
  field: string,
  path: string,
  use: 'read' | 'write',
): Promise<string> {
  return (use === 'read' ? roots.readable(field, path) : roots.writable(field, path)).catch(usageError);
}

function usageError(error: unknown): never {
  if (isNsError(error)) throw new CliError(error.message, EXIT.usage, { cause: error });
  throw error;
}

export function dataDirOf(options: GlobalOptions): string {
  return resolve(options.data);
}

export function parseCount(flag: string, text: string, min = 0): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) {
    throw new CliError(`${flag}: expected an integer ≥ ${min}, got "${text}"`, EXIT.usage);
  }
  return value;
}
