import { isTransientNatsError, retryTransient, type NatsNames, Unavailable } from '@noisystudent/core';
import { DiscardPolicy, nanos, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from 'nats';

/** How long NS_UNLABELED keeps images: what relabeling with a new teacher can reach back to. */
export interface Retention {
  /** Hours; 0 = no age limit. @default 168 (a week) */
  maxAgeHours: number;
  /** Messages; 0 = no limit. @default 1,000,000 */
  maxMessages: number;
  /** Bytes; 0 = no limit. @default 4 GiB */
  maxBytes: number;
}

export const DEFAULT_RETENTION: Retention = { maxAgeHours: 168, maxMessages: 1_000_000, maxBytes: 4 * 1024 ** 3 };

/** How long JetStream remembers message ids to drop a resent image or shard. */
const DUPLICATE_WINDOW_MS = 10 * 60_000;

/**
 * Creates NS_UNLABELED and NS_SHARDS when missing and brings the retention of an existing
 * unlabeled stream to the configured one (nats-server 2.9 features only). When the retention
 * limit is hit the oldest images go first: producers are never refused for space.
 */
export async function ensureStreams(
  jsm: JetStreamManager,
  names: NatsNames,
  retention: Retention,
  replicas = 1,
): Promise<void> {
  const limits = (value: number): number => (value > 0 ? value : -1);
  const unlabeled: Partial<StreamConfig> = {
    name: names.unlabeledStream,
    subjects: [names.unlabeledSubjects],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: retention.maxAgeHours > 0 ? nanos(retention.maxAgeHours * 3_600_000) : 0,
    max_msgs: limits(retention.maxMessages),
    max_bytes: limits(retention.maxBytes),
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    num_replicas: replicas,
  };
  try {
    await upsert(jsm, unlabeled);
  } catch (error) {
    throw streamError(names.unlabeledStream, replicas, error);
  }
  await ensureShardsStream(jsm, names, replicas);
}

/** Creates NS_SHARDS when missing (the labeler writes it, the trainer reads it; either may start first). */
export async function ensureShardsStream(jsm: JetStreamManager, names: NatsNames, replicas = 1): Promise<void> {
  const shards: Partial<StreamConfig> = {
    name: names.shardsStream,
    subjects: [names.shardsSubjects],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    num_replicas: replicas,
  };
  try {
    await upsert(jsm, shards);
  } catch (error) {
    throw streamError(names.shardsStream, replicas, error);
  }
}

function streamError(stream: string, replicas: number, error: unknown): Unavailable {
  const hint =
    replicas > 1 ? ` (--nats-replicas ${replicas} needs a JetStream cluster of at least ${replicas} nodes)` : '';
  return new Unavailable(`nats: could not set up stream ${stream}${hint}: ${String(error)}`, { cause: error });
}

/** Creates or updates a stream; a JetStream cluster still electing leaders (a timeout, 503) is asked again. */
async function upsert(jsm: JetStreamManager, config: Partial<StreamConfig>): Promise<void> {
  const name = config.name ?? '';
  await retryTransient(async () => {
    // "already in use" on add: another service created the stream first; the next attempt updates it.
    const existing = await jsm.streams.info(name).catch((error: unknown) => {
      if (isTransientNatsError(error)) throw error;
      return undefined;
    });
    if (existing === undefined) await jsm.streams.add(config);
    else await jsm.streams.update(name, { ...existing.config, ...config });
  });
}
