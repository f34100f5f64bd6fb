import { AllowedRoots, NAME_PREFIX_PATTERN, parseAllowedRoots } from '@noisystudent/core';
import { z } from 'zod';

import { envName } from './config.js';

/** A TCP port setting; 0 lets the OS pick one (tests and benchmarks). */
export function portSetting(defaultPort: number, what: string): z.ZodDefault<z.ZodCoercedNumber> {
  return z.coerce.number().int().min(0).max(65_535).default(defaultPort).describe(`${what} (0: any free port)`);
}

/** Per-caller rate limits, for the services that take images (teacher, labeler). */
export const rateLimitSettings = {
  rateLimit: z.coerce
    .number()
    .min(0)
    .default(0)
    .describe('images a second each caller (token, else address) may send; 0: no limit'),
  rateBurst: z.coerce
    .number()
    .int()
    .min(1)
    .optional()
    .describe('images a caller may send at once; default 2 s worth of --rate-limit'),
};

/** For the services that read or write files (teacher, trainer): the folders those may lie in. */
export const allowedRootsSettings = {
  allowedRoots: z
    .string()
    .min(1)
    .optional()
    .describe(
      'folders the files this service reads and writes must lie in, links resolved, comma-separated (default: the working directory, the system temp folder, /usr/share/datasets)',
    ),
};

/** `--allowed-roots` opened: the given folders (each must exist) or the defaults; refusals name the flag and `NS_<SERVICE>_ALLOWED_ROOTS`. */
export function openAllowedRoots(given: string | undefined, envPrefix: string): Promise<AllowedRoots> {
  return AllowedRoots.open(parseAllowedRoots(given), `--allowed-roots (${envName('allowedRoots', envPrefix)})`);
}

/**
 * The settings every service has, spelled the same everywhere: `--host`, `--nats-url`,
 * `--nats-replicas`, `--prefix`,
 * `--shutdown-timeout-ms`, `--log-level` (and `NS_<SERVICE>_HOST`, …). Spread into a service's
 * schema: `z.object({ ...serviceSettings, port: portSetting(50051, 'gRPC port'), … })`.
 */
export const serviceSettings = {
  host: z
    .string()
    .min(1)
    .default('127.0.0.1')
    .describe('address to listen on, gRPC and metrics (0.0.0.0 in a container)'),
  natsUrl: z
    .string()
    .min(1)
    .default('nats://127.0.0.1:4222')
    .describe('NATS server URLs, comma-separated (every node of a cluster)'),
  natsReplicas: z.coerce
    .number()
    .int()
    .min(1)
    .max(5)
    .default(1)
    .describe(
      'replicas of each stream, KV bucket and object store this service creates or updates (1 on one nats-server, 3 on a 3-node JetStream cluster)',
    ),
  natsUser: z
    .string()
    .min(1)
    .optional()
    .describe("this service's NATS user, on a server with users (nsctl up makes them)"),
  natsPassword: z.string().min(1).optional().describe('its password (for a variable filled from a secret)'),
  natsPasswordFile: z.string().min(1).optional().describe('a file whose first line is its password'),
  natsTlsCa: z
    .string()
    .min(1)
    .optional()
    .describe("PEM CA bundle to verify the NATS servers' certificates with: NATS is reached over TLS"),
  natsTlsCert: z
    .string()
    .min(1)
    .optional()
    .describe('PEM client certificate for NATS servers that verify clients; with --nats-tls-key'),
  natsTlsKey: z.string().min(1).optional().describe('PEM private key of --nats-tls-cert'),
  prefix: z
    .string()
    .regex(NAME_PREFIX_PATTERN, 'expected letters, digits, - or _')
    .default('ns')
    .describe('prefix of every NATS name (NS_UNLABELED, NS_SHARDS, ns_models, ns_registry, ...)'),
  shutdownTimeoutMs: z.coerce
    .number()
    .int()
    .positive()
    .default(10_000)
    .describe('how long shutdown waits for work in progress, ms'),
  logLevel: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info')
    .describe('log level'),
  tlsCert: z
    .string()
    .min(1)
    .optional()
    .describe('PEM certificate (chain) the gRPC port serves TLS with; with --tls-key'),
  tlsKey: z.string().min(1).optional().describe('PEM private key of --tls-cert (kept out of logs; mode 0600)'),
  tlsClientCa: z
    .string()
    .min(1)
    .optional()
    .describe('PEM CA bundle: callers must present a certificate it signed (mutual TLS); needs --tls-cert'),
  tokensFile: z
    .string()
    .min(1)
    .optional()
    .describe(
      'callers allowed, one "<name> <role,…> sha256:<hex>" per line (`nsctl token create`); roles predict, ingest, read, admin',
    ),
  tokens: z
    .string()
    .min(1)
    .optional()
    .describe('the same lines inline, separated by newlines or ";" (for a variable filled from a secret)'),
  healthPort: z.coerce
    .number()
    .int()
    .min(0)
    .max(65_535)
    .optional()
    .describe(
      'also serve gRPC health alone, plaintext, on this port: for probes that cannot speak TLS (Kubernetes gRPC probes)',
    ),
  insecure: z
    .stringbool()
    .default(false)
    .describe('serve plaintext, or without tokens, on an address other than loopback (refused otherwise)'),
};
