export { ConfigError, configOptions, envName, firstLineOf, flagName, parseConfig, readSettingFile } from './config.js';
export { toGrpcStatus, toServiceError, type GrpcStatus } from './grpc-errors.js';
export { startGrpcServer, type GrpcServer, type GrpcServerOptions, type ServiceRegistration } from './grpc-server.js';
export { createLogger, type Logger, type LoggerOptions } from './logger.js';
export { startMetricsServer, type MetricsServer } from './metrics-server.js';
export { onShutdownSignal } from './shutdown.js';
export { HealthClient, type HealthStatus } from './health-client.js';
export { runServiceMain, type ServiceMainSpec } from './service-main.js';
export { serveBoundedDuplex, type BoundedDuplexOptions, type BoundedDuplexState } from './bounded-duplex.js';
export { connectNats, natsCredentials, splitServers, type ConnectNatsOptions } from './nats-connection.js';
export { allowedRootsSettings, openAllowedRoots, portSetting, rateLimitSettings, serviceSettings } from './settings.js';
export {
  announceListening,
  spawnService,
  type ListeningMessage,
  type SpawnedService,
  type SpawnServiceOptions,
} from './service-process.js';
export { startModuleWorker } from './module-worker.js';
export { DEFAULT_RETENTION, ensureShardsStream, ensureStreams, type Retention } from './streams.js';
export { authInterceptor, type AuthOptions, type Refusal } from './auth.js';
export {
  grpcSecurity,
  isLoopback,
  rateLimitedCounter,
  rateLimitOf,
  refusalCounter,
  type GrpcSecurity,
  type SecuritySettings,
} from './grpc-security.js';
export { CALLER_METADATA_KEY, rateLimitInterceptor, TokenBucket, type RateLimitOptions } from './rate-limit.js';
