import { EventEmitter } from 'node:events';

import { LabelerService } from '@noisystudent/proto';
import { openRegistry } from '@noisystudent/registry';
import {
  connectNats,
  natsCredentials,
  grpcSecurity,
  rateLimitedCounter,
  rateLimitOf,
  refusalCounter,
  startGrpcServer,
  startMetricsServer,
  type Logger,
} from '@noisystudent/runtime';
import type { NatsConnection } from 'nats';

import { targetPerClass, type LabelerConfig } from './config.js';
import { UnlabeledStore } from './ingest.js';
import { handleIngest } from './ingest-stream.js';
import { LabelingWorker } from './labeling-worker.js';
import { LabelerMetrics } from './metrics.js';
import { natsNames } from '@noisystudent/core';
import { labelerHandlers } from './server.js';
import { LabelerStats } from './stats.js';
import { ensureStreams } from '@noisystudent/runtime';
import { teacherCredentials } from './teacher-credentials.js';
import { TeacherPool } from './teacher-pool.js';
import { VersionFollower } from './version-follower.js';

export const LABELER_SERVICE_NAME = 'noisystudent.v1.Labeler';

/** A running labeler; `stop()` shuts it down gracefully. */
export interface Labeler {
  port: number;
  metricsPort: number;
  stats: LabelerStats;
  metrics: LabelerMetrics;
  /** 'window' (teacherVersion) after each labeled window is published and acknowledged. */
  events: EventEmitter<{ window: [teacherVersion: string] }>;
  /** The teacher version being labeled with ('' before any). */
  teacherVersion(): string;
  /** Resolves when labeling with `version` has started (at once if it has). */
  labelingWith(version: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Builds and starts the labeler (main.ts and the tests call this): streams, Ingest, the teacher
 * pool, the version follower with its labeling worker, gRPC with health and reflection, /metrics.
 */
export async function startLabeler(config: LabelerConfig, log: Logger): Promise<Labeler> {
  // TLS files, tokens and the loopback rule first: a bad setting stops the start before it opens anything.
  const security = await grpcSecurity(config);
  const natsLogin = await natsCredentials(config);
  const towardTeachers = await teacherCredentials(config);
  const names = natsNames(config.prefix);
  const nats: NatsConnection = await connectNats({ servers: config.natsUrl, name: 'labeler', log, ...natsLogin });
  const jsm = await nats.jetstreamManager();
  const js = nats.jetstream();
  await ensureStreams(
    jsm,
    names,
    {
      maxAgeHours: config.retentionMaxAgeHours,
      maxMessages: config.retentionMaxMessages,
      maxBytes: config.retentionMaxBytes,
    },
    config.natsReplicas,
  );
  const registry = await openRegistry(nats, { prefix: config.prefix, replicas: config.natsReplicas });
  const stats = new LabelerStats();
  const events = new EventEmitter<{ window: [teacherVersion: string] }>();
  const metrics = new LabelerMetrics();
  const pool = TeacherPool.connect(
    config.teachers
      .split(',')
      .map((address) => address.trim())
      .filter((address) => address !== ''),
    { maxInFlight: config.maxPredictInFlight, log, ...towardTeachers },
  );
  const policy = {
    threshold: config.threshold,
    mode: config.labelMode,
    temperature: config.temperature,
    seed: config.seed,
    ...(targetPerClass(config.balance) === undefined ? {} : { targetPerClass: targetPerClass(config.balance) }),
  };
  const maxPayloadBytes = nats.info?.max_payload ?? 1024 * 1024;
  const follower = new VersionFollower(
    registry,
    (teacherVersion, metadata) =>
      new LabelingWorker(
        js,
        jsm,
        names,
        pool,
        {
          teacherVersion,
          classes: metadata.classNames.length,
          policy,
          windowSize: config.windowSize,
          windowWaitMs: config.windowWaitMs,
          maxPayloadBytes,
          concurrentWindows: config.concurrentWindows,
          ...(config.ackWaitMs === undefined ? {} : { ackWaitMs: config.ackWaitMs }),
        },
        log,
        (counts, shards) => {
          stats.window(teacherVersion, counts, shards);
          events.emit('window', teacherVersion);
          metrics.windowImages.observe(counts.labeled);
          metrics.shards.inc({ version: teacherVersion }, shards);
          metrics.labeled.inc({ version: teacherVersion, outcome: 'in_shard' }, counts.inShards);
          metrics.labeled.inc({ version: teacherVersion, outcome: 'cut_by_balancing' }, counts.cutByBalancing);
          metrics.labeled.inc({ version: teacherVersion, outcome: 'below_threshold' }, counts.belowThreshold);
          metrics.labeled.inc({ version: teacherVersion, outcome: 'rejected' }, counts.rejected);
          counts.copiesPerClass.forEach((copies, label) =>
            metrics.copies.inc({ version: teacherVersion, class: String(label) }, copies),
          );
        },
        () => nats.flush(),
        (images) => metrics.alreadyLabeled.inc({ version: teacherVersion }, images),
      ),
    log,
  );
  const unlabeledCount = async (): Promise<number> => (await jsm.streams.info(names.unlabeledStream)).state.messages;
  const pending = async (): Promise<number> => (await follower.currentWorker?.pending()) ?? (await unlabeledCount());
  metrics.observe({ pending, teacherVersion: () => follower.teacherVersion });

  const store = new UnlabeledStore(js, names, { source: 'grpc' });
  const grpc = await startGrpcServer(
    {
      host: config.host,
      port: config.port,
      security,
      onRefused: refusalCounter(metrics.registry, 'labeler'),
      ...rateLimitOf(config, 1, rateLimitedCounter(metrics.registry, 'labeler')),
      ...(config.healthPort === undefined ? {} : { healthPort: config.healthPort }),
      maxReceiveMessageBytes: config.maxMessageBytes,
      maxSendMessageBytes: config.maxMessageBytes,
    },
    [
      {
        name: LABELER_SERVICE_NAME,
        definition: LabelerService,
        roles: { Ingest: ['ingest'], GetStats: ['read'] },
        rateLimited: { Ingest: { kind: 'stream', units: () => 1 } },
        implementation: labelerHandlers({
          ingest: (call) =>
            handleIngest(call, {
              store,
              inputSpec: () => follower.inputSpec,
              maxInFlight: config.maxIngestInFlight,
              counters: {
                stored: (duplicate) => {
                  stats.stored(duplicate);
                  metrics.ingested.inc({ outcome: duplicate ? 'duplicate' : 'stored' });
                },
                rejected: () => {
                  stats.rejected();
                  metrics.ingested.inc({ outcome: 'rejected' });
                },
              },
              log,
            }),
          stats: async () => stats.response(follower.teacherVersion, await unlabeledCount(), await pending()),
        }),
      },
    ],
  );
  const metricsServer = await startMetricsServer(metrics.registry, config.host, config.metricsPort);
  // Ingest works from the start (images wait in NS_UNLABELED for a teacher); labeling begins with the first version.
  grpc.setServing('SERVING');
  follower.start();
  log.info(
    {
      port: grpc.port,
      metricsPort: metricsServer.port,
      teachers: config.teachers,
      security: security.summary,
      healthPort: grpc.healthPort,
    },
    'labeler listening',
  );

  const waiters: Array<{ version: string; resolve(): void }> = [];
  follower.onVersion((version) => {
    for (const waiter of waiters.splice(0)) {
      if (waiter.version === version) waiter.resolve();
      else waiters.push(waiter);
    }
  });

  let stopped: Promise<void> | undefined;
  return {
    port: grpc.port,
    metricsPort: metricsServer.port,
    stats,
    metrics,
    events,
    teacherVersion: () => follower.teacherVersion,
    labelingWith: (version) =>
      follower.teacherVersion === version
        ? Promise.resolve()
        : new Promise((resolve) => waiters.push({ version, resolve })),
    stop: () => {
      stopped ??= (async () => {
        grpc.setServing('NOT_SERVING');
        const shutdown = await grpc.shutdown(config.shutdownTimeoutMs);
        // A window in progress is finished, unless the teachers cannot answer it in time (away, or
        // refusing this labeler): closing the pool then fails it, and it is delivered again.
        const finished = follower.stop();
        const timedOut = await Promise.race([
          finished.then(() => false),
          new Promise<boolean>((resolve) => setTimeout(() => resolve(true), config.shutdownTimeoutMs).unref()),
        ]);
        await pool.close();
        await finished;
        if (timedOut)
          log.warn('a labeling window was not finished within the shutdown timeout; it will be delivered again');
        await metricsServer.close();
        await nats.drain();
        log.info({ shutdown }, 'labeler stopped');
      })();
      return stopped;
    },
  };
}
