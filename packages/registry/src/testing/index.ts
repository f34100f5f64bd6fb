// Test helpers, exported as @noisystudent/registry/testing: a private nats-server per test file.
export {
  DEFAULT_NATS_SERVER_BINARY,
  startNatsCluster,
  startNatsServer,
  type NatsCluster,
  type NatsServer,
  type StartNatsServerOptions,
} from './nats-server.js';
