import { Shard } from '@noisystudent/proto';
import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from 'nats';

import { shardImageIds } from './shards.js';

/** How long reading the shards may go without progress before a look-up fails. */
const CATCH_UP_TIMEOUT_MS = 15_000;

/**
 * The source ids that already have an outcome in one teacher version's shards, read from the
 * shards stream itself: the record every labeler replica shares.
 *
 * A window is acknowledged only after its shards are stored, but an acknowledgement can still be
 * lost (the consumer's leader node dies with it in flight), and a publish can be stored although
 * its answer was lost. NATS then delivers those images again, possibly to another replica and into
 * a window of other images, whose shard ids differ: the message-id dedupe of the shards stream
 * cannot see it. So every image delivered again is looked up here first, and one that already has
 * an outcome is acknowledged without a second one (docs/architecture.md §7).
 *
 * The index is built on first use and then kept up to date incrementally; each use first reads up
 * to the last shard the stream's leader holds. Appends go through `exclusive`, so that the check
 * and the append are one step for every replica (see `CaughtUp`).
 */
export class LabeledIndex implements CaughtUp {
  private readonly ids = new Set<string>();
  /** The shards stream sequence read through. */
  private readThrough = 0;
  /** Uses run one at a time (each may extend the read). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
    private readonly subject: string,
  ) {}

  /** Of `sourceIds`, those already in a shard of this version. */
  labeled(sourceIds: readonly string[]): Promise<Set<string>> {
    return this.exclusive(async () => new Set(sourceIds.filter((id) => this.ids.has(id))));
  }

  /**
   * Runs `work` once the index has read up to the leader's last shard, with no other use of this
   * index in between.
   */
  exclusive<T>(work: (index: CaughtUp) => Promise<T>): Promise<T> {
    const next = this.queue.then(async () => {
      await this.catchUp();
      return work(this);
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  has(sourceId: string): boolean {
    return this.ids.has(sourceId);
  }

  get lastSequence(): number {
    return this.readThrough;
  }

  appended(shard: Shard, sequence: number): void {
    this.add(shard);
    this.readThrough = sequence;
  }

  /** Source ids indexed so far (for tests and logs). */
  get size(): number {
    return this.ids.size;
  }

  private async catchUp(): Promise<void> {
    const target = await this.leaderLastSequence();
    if (target <= this.readThrough) return;
    // An ordered consumer may sit on a replica still catching up: read until the leader's last
    // sequence is reached, or give up and let the window be delivered again.
    const consumer = await this.js.consumers.get(this.stream, {
      filterSubjects: this.subject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: this.readThrough + 1,
    });
    let until = Date.now() + CATCH_UP_TIMEOUT_MS;
    while (this.readThrough < target) {
      if (Date.now() > until) {
        throw new Error(
          `${this.stream}: reading ${this.subject} stayed at sequence ${this.readThrough} of ${target} for ${CATCH_UP_TIMEOUT_MS} ms`,
        );
      }
      const messages = await consumer.fetch({ max_messages: 256, expires: 1_000 });
      for await (const message of messages) {
        this.add(Shard.decode(message.data));
        this.readThrough = Math.max(this.readThrough, message.seq);
        until = Date.now() + CATCH_UP_TIMEOUT_MS;
        if (this.readThrough >= target) break;
      }
    }
  }

  /** The sequence of the last shard of this version, asked of the stream's leader (0: none yet). */
  private async leaderLastSequence(): Promise<number> {
    try {
      return (await this.jsm.streams.getMessage(this.stream, { last_by_subj: this.subject })).seq;
    } catch (error) {
      if ((error as { code?: string }).code === '404') return 0;
      throw error;
    }
  }

  private add(shard: Shard): void {
    for (const id of shardImageIds(shard)) this.ids.add(id);
  }
}

/**
 * The index inside `LabeledIndex.exclusive`: read up to the leader's last shard of the version.
 * An append that names `lastSequence` as the subject's expected last sequence
 * (Nats-Expected-Last-Subject-Sequence) is refused by the stream if any other replica appended
 * since: what `has` denies then still holds when the append is stored.
 */
export interface CaughtUp {
  /** Whether `sourceId` has an outcome in a shard read so far. */
  has(sourceId: string): boolean;
  /** The stream sequence of the last shard of this version read (0: none). */
  readonly lastSequence: number;
  /** Records a shard this replica appended right after `lastSequence`, stored at `sequence`. */
  appended(shard: Shard, sequence: number): void;
}
