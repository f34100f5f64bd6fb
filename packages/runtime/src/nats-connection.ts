import { readFile } from 'node:fs/promises';

import { InvalidArgument } from '@noisystudent/core';
import { connect, type NatsConnection } from 'nats';

import { ConfigError, flagName } from './config.js';
import type { Logger } from './logger.js';

export interface ConnectNatsOptions {
  /** One URL or several, comma-separated (the nodes of a cluster). */
  servers: string;
  /** The connection's name, as nats-server's monitoring shows it: the service name. */
  name: string;
  log: Logger;
  /** The NATS user and password, for a server with users (`natsAuthorizationConfig`). */
  user?: string;
  password?: string;
}

/**
 * The one way a service connects to NATS: every server of the list, reconnecting forever (a
 * service rides out a NATS restart instead of exiting), and each disconnect and reconnect
 * logged. The caller owns the connection and closes (or drains) it on stop.
 */
export async function connectNats(options: ConnectNatsOptions): Promise<NatsConnection> {
  const servers = splitServers(options.servers);
  let nats: NatsConnection;
  try {
    nats = await connect({
      servers,
      name: options.name,
      maxReconnectAttempts: -1,
      ...(options.user === undefined ? {} : { user: options.user, pass: options.password ?? '' }),
    });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`NATS at ${servers.join(', ')}: ${reason} (is nats-server running with -js?)`, { cause: error });
  }
  void (async () => {
    for await (const status of nats.status()) {
      if (status.type === 'disconnect' || status.type === 'reconnect') {
        options.log.warn({ nats: status.type, server: status.data }, `NATS ${status.type}`);
      }
    }
  })();
  return nats;
}

/** `nats://a:4222, nats://b:4222` as a list; an empty list is an error naming the setting. */
export function splitServers(servers: string): string[] {
  const list = servers
    .split(',')
    .map((server) => server.trim())
    .filter((server) => server !== '');
  if (list.length === 0) {
    throw new InvalidArgument('natsUrl', `expected one or more NATS URLs, got ${JSON.stringify(servers)}`);
  }
  return list;
}

/** A service's NATS user and password from its settings (`--nats-user` with `--nats-password` or `--nats-password-file`). */
export async function natsCredentials(settings: {
  natsUser?: string | undefined;
  natsPassword?: string | undefined;
  natsPasswordFile?: string | undefined;
}): Promise<{ user?: string; password?: string }> {
  const { natsUser, natsPassword, natsPasswordFile } = settings;
  if (natsPassword !== undefined && natsPasswordFile !== undefined) {
    throw new ConfigError(`${flagName('natsPassword')} and ${flagName('natsPasswordFile')}: give one of them`);
  }
  if (natsUser === undefined) {
    if (natsPassword !== undefined || natsPasswordFile !== undefined) {
      throw new ConfigError(`${flagName('natsPassword')} needs ${flagName('natsUser')}`);
    }
    return {};
  }
  let password = natsPassword;
  if (natsPasswordFile !== undefined) {
    try {
      password = (await readFile(natsPasswordFile, 'utf8')).split('\n')[0]?.trim();
    } catch (error) {
      throw new ConfigError(
        `${flagName('natsPasswordFile')} ${natsPasswordFile}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      );
    }
  }
  if (!password)
    throw new ConfigError(`${flagName('natsUser')} ${natsUser}: give its password (${flagName('natsPasswordFile')})`);
  return { user: natsUser, password };
}
