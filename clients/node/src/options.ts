import { credentials, Metadata, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';

import { checkAddress } from './address.js';
import { InputError } from './errors.js';
import { retryPolicy, type RetryOptions, type RetryPolicy } from './retry.js';

/** TLS towards the service; absent or `false` connects without it. */
export interface TlsOptions {
  /** PEM certificates of the CAs to trust. @default Node's root certificates */
  rootCerts?: Buffer;
  /** PEM private key of a client certificate (mutual TLS); needs `certChain`. */
  privateKey?: Buffer;
  /** PEM client certificate chain (mutual TLS); needs `privateKey`. */
  certChain?: Buffer;
  /** The name to check the server's certificate against, when it is not the address's host. */
  serverNameOverride?: string;
}

/** How to reach a service, and what every call on the connection gets. */
export interface ConnectOptions {
  /**
   * `'host:port'`; a list (an array, or comma-separated) of them, balanced round-robin; or
   * `'dns:///name:port'`, round-robin over every address the name resolves to.
   * @default the service's local port: teacher '127.0.0.1:50051', labeler '127.0.0.1:50052', trainer '127.0.0.1:50053'
   */
  address?: string | readonly string[];
  /**
   * Deadline of each unary call (Predict, GetModelInfo, GetStats, GetStatus, ListRounds, health), in
   * ms, retries included; `Infinity` for none. A call's own `deadlineMs` overrides it.
   * @default 30000
   */
  deadlineMs?: number;
  /**
   * Deadline of a whole streaming call (predictMany, ingest), in ms, reconnects included.
   * @default Infinity (none)
   */
  streamDeadlineMs?: number;
  /**
   * Retries of idempotent calls (every unary call here; the streams reconnect and resend what
   * was unanswered) on UNAVAILABLE, with backoff and jitter, never past the deadline. `false`: none.
   * @default { attempts: 5, initialBackoffMs: 100, maxBackoffMs: 5000 }
   */
  retry?: RetryOptions | false;
  /** @default false (no TLS) */
  tls?: TlsOptions | false;
  /**
   * The bearer token every call carries (`authorization: Bearer <token>`), for services started
   * with tokens (`--tokens-file`); `nsctl token create` makes one. Never logged or put in errors.
   */
  token?: string;
  /** Sent with every call, e.g. `{ authorization: 'Bearer …' }`; a call's own metadata adds to it. Keys ending in `-bin` take Buffers. */
  metadata?: Record<string, string | Buffer>;
  /**
   * grpc-js channel options, applied last. By default the channel's reconnect backoff follows
   * `retry` (`grpc.initial_reconnect_backoff_ms`, `grpc.max_reconnect_backoff_ms`), so a retry
   * finds a service that came back; several endpoints get `grpc.service_config` round_robin.
   */
  channelOptions?: ChannelOptions;
}

/** What any one call may set for itself. */
export interface CallOptions {
  /** This call's deadline in ms, retries included; `Infinity` for none. @default the connection's */
  deadlineMs?: number;
  /** Metadata for this call, added to (and overriding keys of) the connection's. */
  metadata?: Record<string, string | Buffer>;
  /** Cancels the call (it rejects with CANCELLED). */
  signal?: AbortSignal;
}

export const DEFAULT_DEADLINE_MS = 30_000;

/** ConnectOptions checked, with every default applied. */
export interface ConnectionSettings {
  address: string | readonly string[];
  /** The address as messages show it. */
  displayAddress: string;
  deadlineMs: number;
  streamDeadlineMs: number;
  retry: RetryPolicy | undefined;
  credentials: ChannelCredentials;
  metadata: Record<string, string | Buffer>;
  /** Options for every channel, before the target's own (round_robin) are added. */
  channelOptions: ChannelOptions;
  /** The caller's channelOptions, which win over ours. */
  userChannelOptions: ChannelOptions;
}

/**
 * `options` (an address, or ConnectOptions) checked and completed with the defaults.
 * @throws InputError naming the option
 */
export function connectionSettings(
  options: string | readonly string[] | ConnectOptions | undefined,
  defaultAddress: string,
): ConnectionSettings {
  const given: ConnectOptions =
    typeof options === 'string' || isAddressList(options) ? { address: options } : (options ?? {});
  const address = given.address ?? defaultAddress;
  const displayAddress = checkAddress(address).join(',');
  const retry = retryPolicy(given.retry);
  const tls = given.tls === undefined || given.tls === false ? undefined : given.tls;
  const channelOptions: ChannelOptions = {};
  if (retry !== undefined) {
    channelOptions['grpc.initial_reconnect_backoff_ms'] = retry.initialBackoffMs;
    channelOptions['grpc.max_reconnect_backoff_ms'] = retry.maxBackoffMs;
  }
  if (tls?.serverNameOverride !== undefined) {
    channelOptions['grpc.ssl_target_name_override'] = tls.serverNameOverride;
    channelOptions['grpc.default_authority'] = tls.serverNameOverride;
  }
  return {
    address,
    displayAddress,
    deadlineMs: checkDeadline(given.deadlineMs ?? DEFAULT_DEADLINE_MS, 'deadlineMs'),
    streamDeadlineMs: checkDeadline(given.streamDeadlineMs ?? Infinity, 'streamDeadlineMs'),
    retry,
    credentials: tls === undefined ? credentials.createInsecure() : sslCredentials(tls),
    metadata: { ...given.metadata, ...(given.token === undefined ? {} : { authorization: bearer(given.token) }) },
    channelOptions,
    userChannelOptions: { ...given.channelOptions },
  };
}

function bearer(token: string): string {
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new InputError('token', 'expected printable ASCII without spaces (a token from `nsctl token create`)');
  }
  return `Bearer ${token}`;
}

function isAddressList(options: readonly string[] | ConnectOptions | undefined): options is readonly string[] {
  return Array.isArray(options);
}

/** The channel options for a target: ours, round_robin when it has several endpoints, then the caller's. */
export function channelOptionsFor(settings: ConnectionSettings, roundRobin: boolean): ChannelOptions {
  return {
    ...settings.channelOptions,
    ...(roundRobin ? { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) } : {}),
    ...settings.userChannelOptions,
  };
}

/** The metadata of one call: the connection's, then the call's own. */
export function callMetadata(
  connection: Record<string, string | Buffer>,
  call: Record<string, string | Buffer> | undefined,
): Metadata {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries({ ...connection, ...call })) {
    try {
      metadata.set(key, value);
    } catch (error) {
      const kind = key.endsWith('-bin') ? 'a Buffer (keys ending in -bin are binary)' : 'a string';
      throw new InputError(`metadata.${key}`, `expected ${kind} under a valid header name, got ${typeof value}`, {
        cause: error,
      });
    }
  }
  return metadata;
}

/** A deadline in ms from now as grpc-js takes it: ms since the epoch, or Infinity. */
export function deadlineAt(deadlineMs: number, now = Date.now()): number {
  return deadlineMs === Infinity ? Infinity : now + deadlineMs;
}

export function checkDeadline(deadlineMs: number, field: string): number {
  if (!(deadlineMs > 0)) throw new InputError(field, `expected a number of ms > 0 (or Infinity), got ${deadlineMs}`);
  return deadlineMs;
}

function sslCredentials(tls: TlsOptions): ChannelCredentials {
  if ((tls.privateKey === undefined) !== (tls.certChain === undefined)) {
    throw new InputError(
      tls.privateKey === undefined ? 'tls.privateKey' : 'tls.certChain',
      'expected privateKey and certChain together (a client certificate), or neither',
    );
  }
  return credentials.createSsl(tls.rootCerts ?? null, tls.privateKey ?? null, tls.certChain ?? null);
}
