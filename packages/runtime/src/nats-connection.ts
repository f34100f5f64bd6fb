import { InvalidArgument } from '@noisystudent/core';
import { connect, type NatsConnection } from 'nats';

import { ConfigError, firstLineOf, flagName, readSettingFile } from './config.js';
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
  /** TLS towards the servers (`natsCredentials` reads it from the settings). */
  tls?: { caFile: string; certFile?: string; keyFile?: string };
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
      ...(options.tls === undefined ? {} : { tls: options.tls }),
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

/**
 * A service's NATS login from its settings: user and password (`--nats-user` with
 * `--nats-password` or `--nats-password-file`) and TLS (`--nats-tls-ca`, with a client
 * certificate `--nats-tls-cert` / `--nats-tls-key` for servers that verify clients).
 */
export async function natsCredentials(settings: {
  natsUser?: string | undefined;
  natsPassword?: string | undefined;
  natsPasswordFile?: string | undefined;
  natsTlsCa?: string | undefined;
  natsTlsCert?: string | undefined;
  natsTlsKey?: string | undefined;
}): Promise<{ user?: string; password?: string; tls?: { caFile: string; certFile?: string; keyFile?: string } }> {
  const tls = await natsTls(settings);
  const login = await natsLogin(settings);
  return { ...login, ...(tls === undefined ? {} : { tls }) };
}

async function natsTls(settings: {
  natsTlsCa?: string | undefined;
  natsTlsCert?: string | undefined;
  natsTlsKey?: string | undefined;
}): Promise<{ caFile: string; certFile?: string; keyFile?: string } | undefined> {
  const { natsTlsCa, natsTlsCert, natsTlsKey } = settings;
  if ((natsTlsCert === undefined) !== (natsTlsKey === undefined)) {
    throw new ConfigError(`${flagName('natsTlsCert')} and ${flagName('natsTlsKey')} go together`);
  }
  if (natsTlsCa === undefined) {
    if (natsTlsCert !== undefined) throw new ConfigError(`${flagName('natsTlsCert')} needs ${flagName('natsTlsCa')}`);
    return undefined;
  }
  for (const [key, path] of [
    ['natsTlsCa', natsTlsCa],
    ['natsTlsCert', natsTlsCert],
    ['natsTlsKey', natsTlsKey],
  ] as const) {
    if (path !== undefined) await readSettingFile(key, path);
  }
  return {
    caFile: natsTlsCa,
    ...(natsTlsCert === undefined ? {} : { certFile: natsTlsCert }),
    ...(natsTlsKey === undefined ? {} : { keyFile: natsTlsKey }),
  };
}

async function natsLogin(settings: {
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
  if (natsPasswordFile !== undefined) password = await firstLineOf('natsPasswordFile', natsPasswordFile);
  if (!password)
    throw new ConfigError(`${flagName('natsUser')} ${natsUser}: give its password (${flagName('natsPasswordFile')})`);
  return { user: natsUser, password };
}
