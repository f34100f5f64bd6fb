import { EventEmitter, once } from 'node:events';

import { TeacherService, type PredictRequest } from '@noisystudent/proto';
import { fileTeacherSource, openRegistry, type TeacherSource } from '@noisystudent/registry';
import {
  connectNats,
  natsCredentials,
  grpcSecurity,
  openAllowedRoots,
  rateLimitedCounter,
  rateLimitOf,
  refusalCounter,
  startGrpcServer,
  startMetricsServer,
  type Logger,
} from '@noisystudent/runtime';
import type { Role } from '@noisystudent/core';
import type { NatsConnection } from 'nats';

import { TEACHER_ENV_PREFIX, type TeacherConfig } from './config.js';
import { HotSwap } from './hot-swap.js';
import { TeacherMetrics } from './metrics.js';
import { ModelHost } from './model-host.js';
import { ModelSlot, type ServingModel } from './model-slot.js';
import { Predictor } from './predictor.js';
import { teacherHandlers } from './server.js';

export interface TeacherEvents {
  swapped: [model: ServingModel];
  refused: [version: string, error: unknown];
}

export const TEACHER_SERVICE_NAME = 'noisystudent.v1.Teacher';

/** The roles a token needs per RPC (with tokens configured; `admin` may call anything). */
export const TEACHER_ROLES: Record<string, readonly Role[]> = {
  Predict: ['predict'],
  PredictStream: ['predict'],
  GetModelInfo: ['predict', 'read'],
};

/** A running teacher service; `stop()` shuts it down gracefully. */
export interface Teacher {
  port: number;
  metricsPort: number;
  backend: string;
  slot: ModelSlot;
  metrics: TeacherMetrics;
  host: ModelHost;
  /** 'swapped' (model: ServingModel) when a version starts serving; 'refused' (version, error) when one is refused. */
  events: EventEmitter<TeacherEvents>;
  /** Images waiting in the batcher queue. */
  queuedImages(): number;
  /** Resolves when `version` is served (or at once if it already is). */
  serving(version?: string): Promise<ServingModel>;
  stop(): Promise<void>;
}

/**
 * Builds and starts the whole service (main.ts and the tests both call this): the model worker,
 * the batcher, the gRPC server with health and reflection, /metrics, then the model source: a
 * file (`modelFile`) or the registry's teacher pointer, followed for hot swaps.
 */
export async function startTeacher(config: TeacherConfig, log: Logger): Promise<Teacher> {
  // TLS files, tokens and the loopback rule first: a bad setting stops the start before it opens anything.
  const security = await grpcSecurity(config);
  const natsLogin = await natsCredentials(config);
  const modelFile =
    config.modelFile === undefined
      ? undefined
      : await (
          await openAllowedRoots(config.allowedRoots, TEACHER_ENV_PREFIX)
        ).readable('--model-file', config.modelFile);
  const metrics = new TeacherMetrics();
  // The native kernels' OpenMP threads share the cores with the gRPC thread (and, on small
  // machines, with the callers): spinning while they wait for work starves it. Measured with
  // bench:serve on 2 cores: stream 0.30 → 0.71 of in-process throughput. Read by libgomp when
  // the worker loads the addon, so it must be set before the worker starts.
  process.env['OMP_WAIT_POLICY'] ??= 'PASSIVE';
  if (config.modelThreads > 0) process.env['OMP_NUM_THREADS'] = String(config.modelThreads);
  const host = await ModelHost.start(config.backend, config.modelThreadNice);
  log.info({ backend: host.backend }, 'model worker ready');
  const slot = new ModelSlot(host);
  const predictor = new Predictor(
    host,
    slot,
    {
      maxBatchSize: config.maxBatchSize,
      maxQueueDelayMs: config.maxQueueDelayMs,
      waitWhenIdle: config.waitWhenIdle,
      maxQueueSize: config.maxQueueSize,
      maxInFlightBatches: config.maxInFlightBatches,
    },
    {
      batch: (images, computeMs) => {
        metrics.batchSize.observe(images);
        metrics.computeSeconds.observe(computeMs / 1000);
      },
      queued: (ms) => metrics.queueSeconds.observe(ms / 1000),
    },
  );
  metrics.observe({
    queuedImages: () => predictor.batcher.queuedImageCount,
    tensors: async () => (await host.memory()).numTensors,
  });
  const grpc = await startGrpcServer(
    {
      host: config.host,
      port: config.port,
      security,
      onRefused: refusalCounter(metrics.registry, 'teacher'),
      ...rateLimitOf(config, config.maxImagesPerRequest, rateLimitedCounter(metrics.registry, 'teacher')),
      ...(config.healthPort === undefined ? {} : { healthPort: config.healthPort }),
      maxReceiveMessageBytes: config.maxMessageBytes,
      maxSendMessageBytes: config.maxMessageBytes,
      keepaliveTimeMs: config.keepaliveTimeMs,
    },
    [
      {
        name: TEACHER_SERVICE_NAME,
        definition: TeacherService,
        roles: TEACHER_ROLES,
        rateLimited: {
          Predict: { kind: 'unary', units: (request) => (request as PredictRequest).images.length },
          PredictStream: { kind: 'stream', units: () => 1 },
        },
        implementation: teacherHandlers({
          predictor,
          slot,
          metrics,
          log,
          limits: { maxImagesPerRequest: config.maxImagesPerRequest, maxStreamInFlight: config.maxStreamInFlight },
        }),
      },
    ],
  );
  const metricsServer = await startMetricsServer(metrics.registry, config.host, config.metricsPort);
  log.info(
    { port: grpc.port, metricsPort: metricsServer.port, security: security.summary, healthPort: grpc.healthPort },
    'teacher listening (NOT_SERVING until a model loads)',
  );

  slot.onSwitch((model) => {
    metrics.setServing(model.version);
    metrics.swaps.inc();
    grpc.setServing('SERVING');
  });

  let nats: NatsConnection | undefined;
  let source: TeacherSource;
  if (modelFile !== undefined) {
    source = await fileTeacherSource(modelFile);
  } else {
    nats = await connectNats({ servers: config.natsUrl, name: 'teacher', log, ...natsLogin });
    source = await openRegistry(nats, { prefix: config.prefix, replicas: config.natsReplicas });
  }
  const events = new EventEmitter<TeacherEvents>();
  const hotSwap = new HotSwap(source, host, slot, config.maxBatchSize, log, {
    swapped: (model) => events.emit('swapped', model),
    refused: (version, error) => {
      metrics.refusedModels.inc();
      events.emit('refused', version, error);
    },
  });
  hotSwap.start();

  let stopped: Promise<void> | undefined;
  return {
    port: grpc.port,
    metricsPort: metricsServer.port,
    backend: host.backend,
    slot,
    metrics,
    host,
    events,
    queuedImages: () => predictor.batcher.queuedImageCount,
    serving: async (version) => {
      let model = slot.model;
      while (model === undefined || (version !== undefined && model.version !== version)) {
        [model] = await once(events, 'swapped');
      }
      return model;
    },
    stop: () => {
      stopped ??= (async () => {
        grpc.setServing('NOT_SERVING');
        await hotSwap.stop();
        const drained = await Promise.race([
          predictor.batcher.drain().then(() => true),
          new Promise<boolean>((resolve) => setTimeout(() => resolve(false), config.shutdownTimeoutMs).unref()),
        ]);
        const shutdown = await grpc.shutdown(config.shutdownTimeoutMs);
        log.info({ drained, shutdown }, 'teacher stopped');
        await metricsServer.close();
        await nats?.close();
        await host.close();
      })();
      return stopped;
    },
  };
}
