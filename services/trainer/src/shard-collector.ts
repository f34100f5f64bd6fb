import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { shardSubject, trainingConsumer, type NatsNames } from '@noisystudent/core';
import { Shard } from '@noisystudent/proto';
import type { Logger } from '@noisystudent/runtime';
import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg } from 'nats';

import { writeFileDurably } from './durable-file.js';

export interface ShardCollectorOptions {
  /** Where this version's shards are kept: one `<shardId>.shard` file each. */
  directory: string;
  teacherVersion: string;
  /** Shards asked for per pull. @default 64 */
  batch?: number;
  /** Told of each message skipped, and why (metrics). */
  onSkipped?: (reason: ShardSkip) => void;
}

/** Why a message on the shards subject was skipped. */
export type ShardSkip = 'not_a_shard' | 'wrong_version' | 'bad_shard_id';

/** One kept shard, as a round counts it. */
export interface HeldShard {
  shardId: string;
  /** Its file: `<directory>/<shardId>.shard`. */
  file: string;
  /** Pseudo-labeled examples, counting copies. */
  examples: number;
  /** Unlabeled images the shard reports on (kept, below threshold, cut by balancing, rejected). */
  images: number;
  /** When it was kept (ms since the epoch; the file's time for shards read back after a restart). */
  keptAt: number;
}

/** What the collector holds for its teacher version. */
export interface CollectedShards {
  shards: number;
  /** Pseudo-labeled examples, counting copies (what a round trains on). */
  examples: number;
  /** Examples per class, counting copies. */
  perClass: number[];
}

const SHARD_FILE = /\.shard$/;

/**
 * Collects one teacher version's shards from NS_SHARDS (docs/architecture.md §5, Trainer): a
 * durable consumer `trainer_<version>` from the start of the stream, each shard written to its
 * own file and fsync'd before it is acknowledged, so an acknowledged shard is never lost and a
 * restarted collector resumes where it stopped (a shard delivered again is the same file). A
 * message that is not a shard of this version is acknowledged and logged with its reason.
 */
export class ShardCollector {
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly held: CollectedShards = { shards: 0, examples: 0, perClass: [] };
  private readonly kept = new Map<string, HeldShard>();

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly names: NatsNames,
    private readonly options: ShardCollectorOptions,
    private readonly log: Logger,
  ) {}

  get collected(): CollectedShards {
    return { ...this.held, perClass: Array.from(this.held.perClass, (count) => count ?? 0) };
  }

  get teacherVersion(): string {
    return this.options.teacherVersion;
  }

  /** Every shard kept so far, in the order kept. */
  get shards(): HeldShard[] {
    return [...this.kept.values()];
  }

  /** Reads what is already on disk, then follows the stream until `stop()`. */
  async start(): Promise<void> {
    await mkdir(this.options.directory, { recursive: true });
    for (const name of (await readdir(this.options.directory)).filter((file) => SHARD_FILE.test(file)).sort()) {
      const file = join(this.options.directory, name);
      this.count(Shard.decode(await readFile(file)), file, (await stat(file)).mtimeMs);
    }
    const consumer = trainingConsumer(this.options.teacherVersion);
    await this.jsm.consumers.add(this.names.shardsStream, {
      durable_name: consumer,
      filter_subject: shardSubject(this.names, this.options.teacherVersion),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
    });
    const pull = await this.js.consumers.get(this.names.shardsStream, consumer);
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          const messages = await pull.fetch({ max_messages: this.options.batch ?? 64, expires: 1_000 });
          for await (const message of messages) await this.keep(message);
        } catch (error) {
          if (this.stopped) break;
          this.log.warn({ err: error }, 'fetching shards failed; retrying');
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  private async keep(message: JsMsg): Promise<void> {
    let shard: Shard;
    try {
      shard = Shard.decode(message.data);
    } catch (error) {
      this.log.error({ err: error, seq: message.seq }, 'skipped a message that is not a Shard protobuf');
      this.options.onSkipped?.('not_a_shard');
      message.ack();
      return;
    }
    const problem = this.checkShard(shard);
    if (problem !== undefined) {
      this.log.error({ seq: message.seq, shardId: shard.shardId, problem }, 'skipped a shard');
      this.options.onSkipped?.(problem.startsWith('teacher_version') ? 'wrong_version' : 'bad_shard_id');
      message.ack();
      return;
    }
    if (!this.kept.has(shard.shardId)) {
      const file = join(this.options.directory, `${shard.shardId}.shard`);
      await writeFileDurably(file, message.data);
      this.count(shard, file, Date.now());
    }
    // Only now, with the shard on disk, is it acknowledged.
    message.ack();
  }

  private checkShard(shard: Shard): string | undefined {
    if (shard.teacherVersion !== this.options.teacherVersion) {
      return `teacher_version: expected ${this.options.teacherVersion}, got ${JSON.stringify(shard.teacherVersion)}`;
    }
    if (!/^[A-Za-z0-9_.-]+$/.test(shard.shardId)) {
      return `shard_id: expected letters, digits, '.', '-' or '_', got ${JSON.stringify(shard.shardId)}`;
    }
    return undefined;
  }

  private count(shard: Shard, file: string, keptAt: number): void {
    let examples = 0;
    for (const example of shard.examples) {
      examples += example.copyCount;
      this.held.perClass[example.hardLabel] = (this.held.perClass[example.hardLabel] ?? 0) + example.copyCount;
    }
    const images =
      shard.examples.length + shard.belowThresholdIds.length + shard.cutByBalancingIds.length + shard.rejected.length;
    this.kept.set(shard.shardId, { shardId: shard.shardId, file, examples, images, keptAt });
    this.held.shards++;
    this.held.examples += examples;
  }
}
