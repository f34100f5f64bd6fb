// A minimal service for the runtime's process tests: runServiceMain wiring, a gRPC server with
// health, /metrics; SERVING after --serve-after-ms (0: never); --fail-start makes start throw.
import { Registry } from 'prom-client';
import { z } from 'zod';

import {
  parseConfig,
  portSetting,
  runServiceMain,
  serviceSettings,
  startGrpcServer,
  startMetricsServer,
} from '../src/index.js';

const schema = z.object({
  ...serviceSettings,
  port: portSetting(0, 'gRPC port'),
  metricsPort: portSetting(0, 'metrics port'),
  serveAfterMs: z.coerce.number().int().min(0).default(100).describe('SERVING after this long (0: never)'),
  failStart: z.enum(['yes', 'no']).default('no').describe('throw from start'),
});

await runServiceMain({
  name: 'fixture',
  description: 'runtime test fixture',
  schema,
  envPrefix: 'NS_FIXTURE_',
  config: (flags) => parseConfig(schema, flags, process.env, 'NS_FIXTURE_'),
  start: async (config) => {
    if (config.failStart === 'yes') throw new Error('port 1 is taken');
    const grpc = await startGrpcServer({ port: config.port }, []);
    const metrics = await startMetricsServer(new Registry(), config.host, config.metricsPort);
    if (config.serveAfterMs > 0) setTimeout(() => grpc.setServing('SERVING'), config.serveAfterMs);
    return {
      port: grpc.port,
      metricsPort: metrics.port,
      stop: async () => {
        await grpc.shutdown(1_000);
        await metrics.close();
      },
    };
  },
});
