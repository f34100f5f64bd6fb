import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { loadSync } from '@grpc/proto-loader';
import { HealthImplementation, protoPath as healthProtoPath, type ServingStatus } from 'grpc-health-check';
import { PROTO_DIR, PROTO_FILES } from '@noisystudent/proto';

import type { Role } from '@noisystudent/core';

import { authInterceptor, type Refusal } from './auth.js';
import { badFrameInterceptor, withTotalDecoders } from './bad-frames.js';
import { rateLimitInterceptor } from './rate-limit.js';
import type { GrpcSecurity } from './grpc-security.js';

export interface GrpcServerOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 lets the OS pick one. */
  port: number;
  /** Largest request accepted, in bytes; bigger ones get RESOURCE_EXHAUSTED. @default 4 MiB */
  maxReceiveMessageBytes?: number;
  /** @default 4 MiB */
  maxSendMessageBytes?: number;
  /** Server keepalive pings to idle clients, ms. @default 30000 */
  keepaliveTimeMs?: number;
  /** @default 10000 */
  keepaliveTimeoutMs?: number;
  /** TLS and tokens (`grpcSecurity`). @default plaintext, calls unchecked */
  security?: GrpcSecurity;
  /** Told of every call refused for its token (metrics; `refusalCounter`). */
  onRefused?: (method: string, refusal: Refusal) => void;
  /** Per-caller limits on the RPCs services mark `rateLimited` (images/s and burst); none when absent or 0. */
  rateLimit?: { ratePerSecond: number; burst: number; onLimited?: (method: string, caller: string) => void };
  /**
   * Also serve the health service alone, plaintext, on this port (0: any free one): for
   * probes that cannot speak TLS (Kubernetes' gRPC probes). @default none
   */
  healthPort?: number;
}

export interface ServiceRegistration {
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
  /** The fully qualified name health reports under, e.g. `noisystudent.v1.Teacher`. */
  name: string;
  /**
   * RPC name (as in the proto, e.g. `Predict`) → the roles a token needs for it. With tokens, an
   * RPC not listed is for `admin` only (who may call anything).
   */
  roles?: Readonly<Record<string, readonly Role[]>>;
  /** RPC name → how its messages count against the caller's rate limit (`rateLimitInterceptor`). */
  rateLimited?: Readonly<Record<string, { kind: 'unary' | 'stream'; units: (message: unknown) => number }>>;
}

/** A started gRPC server with health checking (grpc.health.v1) and server reflection. */
export interface GrpcServer {
  server: Server;
  port: number;
  /** The plaintext health-only port, when asked for. */
  healthPort?: number;
  /** Sets one service's health and the overall (`''`) status with it. */
  setServing(status: ServingStatus): void;
  /** Stops accepting calls and waits for running ones, up to `timeoutMs`; then cancels the rest. */
  shutdown(timeoutMs: number): Promise<'graceful' | 'forced'>;
}

/**
 * Starts a server with our services, `grpc.health.v1.Health` (all NOT_SERVING until the service
 * says otherwise: grpc-node's health example) and reflection over every noisystudent.v1 proto and grpc.health.v1.
 * With tokens, every call to one of the services' RPCs needs a token with a role it lists; health
 * and reflection stay open (probes, grpcurl).
 */
export async function startGrpcServer(
  options: GrpcServerOptions,
  services: ServiceRegistration[],
): Promise<GrpcServer> {
  const tokens = options.security?.tokens;
  const methodRoles = new Map<string, readonly Role[]>(
    services.flatMap((service) =>
      Object.values(service.definition).map(({ path }) => {
        const rpc = path.slice(path.lastIndexOf('/') + 1);
        return [rpc, service.roles?.[rpc] ?? []] as const;
      }),
    ),
  );
  const interceptors = [
    badFrameInterceptor(),
    ...(tokens === undefined
      ? []
      : [authInterceptor({ tokens, methodRoles, ...(options.onRefused ? { onRefused: options.onRefused } : {}) })]),
  ];
  const limit = options.rateLimit;
  if (limit !== undefined && limit.ratePerSecond > 0) {
    interceptors.push(
      rateLimitInterceptor({
        ratePerSecond: limit.ratePerSecond,
        burst: limit.burst,
        methods: new Map(services.flatMap((service) => Object.entries(service.rateLimited ?? {}))),
        byToken: tokens !== undefined,
        ...(limit.onLimited ? { onLimited: limit.onLimited } : {}),
      }),
    );
  }
  const server = new Server({
    interceptors,
    'grpc.max_receive_message_length': options.maxReceiveMessageBytes ?? 4 * 1024 * 1024,
    'grpc.max_send_message_length': options.maxSendMessageBytes ?? 4 * 1024 * 1024,
    'grpc.keepalive_time_ms': options.keepaliveTimeMs ?? 30_000,
    'grpc.keepalive_timeout_ms': options.keepaliveTimeoutMs ?? 10_000,
    'grpc.keepalive_permit_without_calls': 1,
  });
  for (const service of services) server.addService(withTotalDecoders(service.definition), service.implementation);
  const names = ['', ...services.map((service) => service.name)];
  const health = new HealthImplementation(Object.fromEntries(names.map((name) => [name, 'NOT_SERVING'])));
  health.addToServer(server);
  new ReflectionService(loadSync([...PROTO_FILES, healthProtoPath], { includeDirs: [PROTO_DIR] })).addToServer(server);
  const host = options.host ?? '127.0.0.1';
  const port = await bind(
    server,
    host,
    options.port,
    options.security?.credentials ?? ServerCredentials.createInsecure(),
  );
  let healthServer: Server | undefined;
  let healthPort: number | undefined;
  if (options.healthPort !== undefined) {
    healthServer = new Server();
    health.addToServer(healthServer);
    healthPort = await bind(healthServer, host, options.healthPort, ServerCredentials.createInsecure());
  }
  const servers = healthServer === undefined ? [server] : [server, healthServer];
  return {
    server,
    port,
    ...(healthPort === undefined ? {} : { healthPort }),
    setServing: (status) => {
      for (const name of names) health.setStatus(name, status);
    },
    shutdown: async (timeoutMs) => {
      const outcomes = await Promise.all(servers.map((each) => shutdownOne(each, timeoutMs)));
      return outcomes.includes('forced') ? 'forced' : 'graceful';
    },
  };
}

function bind(server: Server, host: string, port: number, credentials: ServerCredentials): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${port}`, credentials, (error, bound) =>
      error === null ? resolve(bound) : reject(new Error(`listen ${host}:${port}: ${error.message}`, { cause: error })),
    );
  });
}

/** Stops accepting calls and waits for running ones, up to `timeoutMs`; then cancels the rest. */
function shutdownOne(server: Server, timeoutMs: number): Promise<'graceful' | 'forced'> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve('forced');
    }, timeoutMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve('graceful');
    });
  });
}
