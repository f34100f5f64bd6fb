import { Shard } from '@noisystudent/proto';
import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from 'nats';

/** How long one look-up may take to read the shards up to the leader's last one before it fails. */
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
 * The index is built on first use (only redeliveries need it) and then kept up to date
 * incrementally; each look-up first reads up to the last shard the stream's leader holds.
 */
export class LabeledIndex {
  private readonly ids = new Set<string>();
  /** The shards stream sequence read through. */
  private readThrough = 0;
  /** Look-ups run one at a time (each may extend the read). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
    private readonly subject: string,
  ) {}

  /** Of `sourceIds`, those already in a shard of this version. */
  labeled(sourceIds: readonly string[]): Promise<Set<string>> {
    const next = this.queue.then(async () => {
      await this.catchUp();
      return new Set(sourceIds.filter((id) => this.ids.has(id)));
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Source ids indexed so far (for tests and logs). */
  get size(): number {
    return this.ids.size;
  }

  private async catchUp(): Promise<void> {
    const target = await this.lastSequence();
    if (target <= this.readThrough) return;
    // An ordered consumer may sit on a replica still catching up: read until the leader's last
    // sequence is reached, or give up and let the window be delivered again.
    const consumer = await this.js.consumers.get(this.stream, {
      filterSubjects: this.subject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: this.readThrough + 1,
    });
    const until = Date.now() + CATCH_UP_TIMEOUT_MS;
    while (this.readThrough < target) {
      if (Date.now() > until) {
        throw new Error(
          `${this.stream}: reading ${this.subject} reached sequence ${this.readThrough} of ${target} in ${CATCH_UP_TIMEOUT_MS} ms`,
        );
      }
      const messages = await consumer.fetch({ max_messages: 256, expires: 1_000 });
      for await (const message of messages) {
        this.add(Shard.decode(message.data));
        this.readThrough = Math.max(this.readThrough, message.seq);
        if (this.readThrough >= target) break;
      }
    }
  }

  /** The sequence of the last shard of this version, asked of the stream's leader (0: none yet). */
  private async lastSequence(): Promise<number> {
    try {
      return (await this.jsm.streams.getMessage(this.stream, { last_by_subj: this.subject })).seq;
    } catch (error) {
      if ((error as { code?: string }).code === '404') return 0;
      throw error;
    }
  }

  private add(shard: Shard): void {
    for (const example of shard.examples) this.ids.add(example.sourceId);
    for (const id of shard.belowThresholdIds) this.ids.add(id);
    for (const id of shard.cutByBalancingIds) this.ids.add(id);
    for (const entry of shard.rejected) this.ids.add(entry.sourceId);
  }
}
