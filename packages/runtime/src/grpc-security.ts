import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';

import { ServerCredentials } from '@grpc/grpc-js';
import { isNsError } from '@noisystudent/core';
import { Counter, type Registry } from 'prom-client';

import { TokenTable } from '@noisystudent/core';

import type { Refusal } from './auth.js';
import { ConfigError, flagName, readSettingFile } from './config.js';

/** The settings of `serviceSettings` that decide who may call a service. */
export interface SecuritySettings {
  host: string;
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  tlsClientCa?: string | undefined;
  tokensFile?: string | undefined;
  tokens?: string | undefined;
  insecure: boolean;
}

/** How a gRPC server is reached: its credentials, and the callers it accepts (undefined: unchecked). */
export interface GrpcSecurity {
  credentials: ServerCredentials;
  tokens: TokenTable | undefined;
  /** For the start-up log line, e.g. "TLS with client certificates, 3 tokens". */
  summary: string;
}

/** True for an address only this machine reaches: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/**
 * Reads the TLS files and the tokens the settings name, and refuses a server anyone on the
 * network could call unchecked: off loopback, plaintext or no tokens need `--insecure`. Every
 * problem is a ConfigError naming the setting.
 */
export async function grpcSecurity(settings: SecuritySettings): Promise<GrpcSecurity> {
  const { tlsCert, tlsKey, tlsClientCa } = settings;
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    throw new ConfigError(`${flagName('tlsCert')} and ${flagName('tlsKey')} go together: give both or neither`);
  }
  if (tlsClientCa !== undefined && tlsCert === undefined) {
    throw new ConfigError(`${flagName('tlsClientCa')} needs ${flagName('tlsCert')} and ${flagName('tlsKey')}`);
  }
  let credentials = ServerCredentials.createInsecure();
  if (tlsCert !== undefined && tlsKey !== undefined) {
    const [cert, key, ca] = await Promise.all([
      readSettingFile('tlsCert', tlsCert),
      readSettingFile('tlsKey', tlsKey),
      tlsClientCa === undefined ? undefined : readSettingFile('tlsClientCa', tlsClientCa),
    ]);
    checkPem(cert, key, ca);
    credentials = ServerCredentials.createSsl(ca ?? null, [{ cert_chain: cert, private_key: key }], ca !== undefined);
  }

  if (settings.tokensFile !== undefined && settings.tokens !== undefined) {
    throw new ConfigError(`${flagName('tokensFile')} and ${flagName('tokens')}: give one of them`);
  }
  let tokens: TokenTable | undefined;
  try {
    if (settings.tokensFile !== undefined) {
      tokens = TokenTable.parse(
        (await readSettingFile('tokensFile', settings.tokensFile)).toString('utf8'),
        settings.tokensFile,
      );
    } else if (settings.tokens !== undefined) {
      tokens = TokenTable.parse(settings.tokens.replaceAll(';', '\n'), flagName('tokens'));
    }
  } catch (error) {
    if (isNsError(error)) throw new ConfigError(`tokens: ${error.message}`);
    throw error;
  }

  const tls = tlsCert !== undefined;
  if (!isLoopback(settings.host) && !settings.insecure) {
    const missing = [
      ...(tls ? [] : [`TLS (${flagName('tlsCert')} and ${flagName('tlsKey')})`]),
      ...(tokens !== undefined ? [] : [`tokens (${flagName('tokensFile')} or ${flagName('tokens')})`]),
    ];
    if (missing.length > 0) {
      throw new ConfigError(
        `${flagName('host')} ${settings.host} is reachable from other machines, and this service has no ${missing.join(' and no ')}: ` +
          `give ${missing.length > 1 ? 'them' : 'it'}, listen on 127.0.0.1, or pass ${flagName('insecure')} to serve it anyway`,
      );
    }
  }
  const summary = [
    tls ? (tlsClientCa !== undefined ? 'TLS with client certificates' : 'TLS') : 'plaintext',
    tokens === undefined
      ? 'calls unchecked'
      : `${tokens.entries.length} token${tokens.entries.length === 1 ? '' : 's'}`,
  ].join(', ');
  return { credentials, tokens, summary };
}

/** Parses the PEM files here, so that a wrong one stops the start naming it (grpc-js would fail at the first handshake). */
function checkPem(cert: Buffer, key: Buffer, ca: Buffer | undefined): void {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (error) {
    throw new ConfigError(`${flagName('tlsCert')}: expected a PEM certificate (${String(error)})`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw new ConfigError(`${flagName('tlsKey')}: expected a PEM private key (${String(error)})`);
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new ConfigError(`${flagName('tlsKey')}: is not the key of the certificate in ${flagName('tlsCert')}`);
  }
  if (ca !== undefined) {
    try {
      new X509Certificate(ca);
    } catch (error) {
      throw new ConfigError(`${flagName('tlsClientCa')}: expected PEM CA certificates (${String(error)})`);
    }
  }
}

/** `<prefix>_calls_refused_total{method, reason}` in `registry`, and the callback that counts into it. */
export function refusalCounter(registry: Registry, prefix: string): (method: string, refusal: Refusal) => void {
  const counter = new Counter({
    name: `${prefix}_calls_refused_total`,
    help: 'Calls refused before they ran: no or unknown token (unauthenticated), or a token without the role (permission_denied).',
    labelNames: ['method', 'reason'] as const,
    registers: [registry],
  });
  return (method, refusal) => counter.inc({ method, reason: refusal });
}

/** `<prefix>_calls_rate_limited_total{method}` in `registry`: refusals and pauses for a caller's rate limit. */
export function rateLimitedCounter(registry: Registry, prefix: string): (method: string) => void {
  const counter = new Counter({
    name: `${prefix}_calls_rate_limited_total`,
    help: 'Calls refused (unary) or stream reads paused because the caller was over its rate limit (--rate-limit).',
    labelNames: ['method'] as const,
    registers: [registry],
  });
  return (method) => counter.inc({ method });
}

/**
 * The `rateLimit` option of startGrpcServer from the rate-limit settings, to spread into its
 * options (nothing at 0). The burst defaults to 2 s worth, and at least `minimumBurst`.
 */
export function rateLimitOf(
  settings: { rateLimit: number; rateBurst?: number | undefined },
  minimumBurst: number,
  onLimited: (method: string) => void,
): { rateLimit?: { ratePerSecond: number; burst: number; onLimited: (method: string) => void } } {
  if (settings.rateLimit <= 0) return {};
  const burst = settings.rateBurst ?? Math.max(minimumBurst, Math.ceil(2 * settings.rateLimit));
  return { rateLimit: { ratePerSecond: settings.rateLimit, burst, onLimited } };
}
