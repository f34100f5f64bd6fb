import { mkdir, readdir, readFile } from 'node:fs/promises';
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
  private readonly seen = new Set<string>();

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

  /** Reads what is already on disk, then follows the stream until `stop()`. */
  async start(): Promise<void> {
    await mkdir(this.options.directory, { recursive: true });
    for (const name of (await readdir(this.options.directory)).filter((file) => SHARD_FILE.test(file)).sort()) {
      this.count(Shard.decode(await readFile(join(this.options.directory, name))));
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
      message.ack();
      return;
    }
    const problem = this.checkShard(shard);
    if (problem !== undefined) {
      this.log.error({ seq: message.seq, shardId: shard.shardId, problem }, 'skipped a shard');
      message.ack();
      return;
    }
    if (!this.seen.has(shard.shardId)) {
      await writeFileDurably(join(this.options.directory, `${shard.shardId}.shard`), message.data);
      this.count(shard);
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

  private count(shard: Shard): void {
    this.seen.add(shard.shardId);
    this.held.shards++;
    for (const example of shard.examples) {
      this.held.examples += example.copyCount;
      this.held.perClass[example.hardLabel] = (this.held.perClass[example.hardLabel] ?? 0) + example.copyCount;
    }
  }
}
