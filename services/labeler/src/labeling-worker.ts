import { type PseudoLabelPolicy } from '@noisystudent/ml';
import { Shard, UnlabeledImage } from '@noisystudent/proto';
import type { Logger } from '@noisystudent/runtime';
import { AckPolicy, DeliverPolicy, headers, type JetStreamClient, type JetStreamManager, type JsMsg } from 'nats';

import { labelingConsumer, shardSubject, type NatsNames } from '@noisystudent/core';
import { LabeledIndex } from './labeled-index.js';
import { buildShards, type LabeledImage, type WindowCounts } from './shards.js';
import type { TeacherPool } from './teacher-pool.js';

/** The shortest pull expiry nats.js accepts ("expires should be at least 1000ms"). */
const MIN_FETCH_EXPIRES_MS = 1_000;

/** What the worker needs from the teacher (TeacherPool has it). */
export type LabelingTeacher = Pick<TeacherPool, 'predict'>;

export interface LabelingWorkerOptions {
  teacherVersion: string;
  classes: number;
  policy: PseudoLabelPolicy;
  /** Images per window: the unit of thresholding, balancing and shards. @default 1024 */
  windowSize: number;
  /** A window closes this long after its first image even when not full, ms. @default 2000 */
  windowWaitMs: number;
  maxPayloadBytes: number;
  /** Windows labeled at once: others fill and go to the teacher while one is published. @default 4 */
  concurrentWindows: number;
  /**
   * How long NATS waits for a delivered image's ack before delivering it again; a window being
   * labeled renews it every third of it. It bounds how long images pulled by a replica that died
   * (or through a NATS node that died) wait before another replica labels them.
   * @default the larger of 5 s and 10 × windowWaitMs
   */
  ackWaitMs?: number;
}

/** The teacher answered with another version than the one this worker labels for. */
class VersionMismatch extends Error {
  override readonly name = 'VersionMismatch';
}

/**
 * Labels NS_UNLABELED for one teacher version: a durable pull consumer shared by every labeler
 * replica (`labeler_<version>`, from the start of the retained log: a new version relabels it),
 * windows of images sent through the teacher, the policy applied per window, shard parts
 * published (message id = shard id), and only then the window's images acknowledged. A window
 * that fails (NATS down, the teacher answering for another version) is not acknowledged: it is
 * delivered again.
 */
export class LabelingWorker {
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly consumerName: string;

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly names: NatsNames,
    private readonly teacher: LabelingTeacher,
    readonly options: LabelingWorkerOptions,
    private readonly log: Logger,
    private readonly onWindow: (counts: WindowCounts, shards: number) => void,
    /** Resolves once the server has everything sent so far (NatsConnection.flush). */
    private readonly flush: () => Promise<void>,
    /** Images delivered again that already had an outcome: acknowledged, not labeled twice. */
    private readonly onAlreadyLabeled: (images: number) => void = () => undefined,
  ) {
    this.consumerName = labelingConsumer(options.teacherVersion);
    this.index = new LabeledIndex(js, jsm, names.shardsStream, shardSubject(names, options.teacherVersion));
  }

  private readonly index: LabeledIndex;

  get teacherVersion(): string {
    return this.options.teacherVersion;
  }

  /** How long NATS waits for a delivered image's ack before it delivers it again. */
  private get ackWaitMs(): number {
    return this.options.ackWaitMs ?? Math.max(5_000, this.options.windowWaitMs * 10);
  }

  async start(): Promise<void> {
    await this.jsm.consumers.add(this.names.unlabeledStream, {
      durable_name: this.consumerName,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: this.ackWaitMs * 1_000_000,
      max_ack_pending: Math.max(2 * this.options.concurrentWindows * this.options.windowSize, 1024),
    });
    const loops = Array.from({ length: this.options.concurrentWindows }, () => this.run());
    this.loop = Promise.all(loops).then(
      () => undefined,
      (error: unknown) => this.log.error({ err: error }, 'labeling stopped'),
    );
  }

  /** Finishes the window in progress, then stops. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** Images this version's consumer has not finished: not yet delivered, or delivered and not acknowledged. */
  async pending(): Promise<number> {
    const info = await this.jsm.consumers.info(this.names.unlabeledStream, this.consumerName);
    return info.num_pending + info.num_ack_pending;
  }

  /** Deletes this version's consumer (after a newer version took over). */
  async deleteConsumer(): Promise<void> {
    await this.jsm.consumers.delete(this.names.unlabeledStream, this.consumerName).catch(() => false);
  }

  private async run(): Promise<void> {
    const consumer = await this.js.consumers.get(this.names.unlabeledStream, this.consumerName);
    while (!this.stopped) {
      // By stream sequence: an image delivered again while its window fills (its ack wait ran out)
      // replaces its earlier delivery instead of taking a second place (and a second outcome).
      const window = new Map<number, JsMsg>();
      let deadline = Infinity;
      while (!this.stopped && window.size < this.options.windowSize && Date.now() < deadline) {
        // nats.js refuses a pull that expires in under a second; a window may close up to that late.
        const wait = Number.isFinite(deadline) ? Math.max(MIN_FETCH_EXPIRES_MS, deadline - Date.now()) : 1_000;
        try {
          const messages = await consumer.fetch({
            max_messages: this.options.windowSize - window.size,
            expires: wait,
          });
          for await (const message of messages) {
            window.set(message.seq, message);
            if (!Number.isFinite(deadline)) deadline = Date.now() + this.options.windowWaitMs;
          }
        } catch (error) {
          this.log.warn({ err: error }, 'fetching unlabeled images failed; retrying');
          await pause(1_000);
        }
      }
      if (window.size > 0) await this.labelWindow([...window.values()]);
    }
  }

  private async labelWindow(delivered: JsMsg[]): Promise<void> {
    const { teacherVersion } = this.options;
    const started = Date.now();
    // A window held longer than the ack wait (the teacher away for minutes) would be delivered
    // again into another window while this one still holds it: an image with two outcomes.
    // Telling NATS the window is still being worked on restarts each message's ack wait.
    const stillWorking = setInterval(() => {
      for (const message of delivered) message.working();
    }, this.ackWaitMs / 3);
    try {
      let messages = await this.withoutLabeled(delivered);
      if (messages.length === 0) {
        await this.flush();
        return;
      }
      let labeled = await Promise.all(messages.map((message) => this.label(message)));
      if (Date.now() - started > this.ackWaitMs / 3) {
        // Labeling outlasted a renewal of the ack wait: had that renewal been lost (the consumer's
        // node dying), NATS may have delivered these images to another replica, which may have
        // stored their outcomes meanwhile. Those are not stored a second time.
        const kept = new Set(await this.withoutLabeled(messages, () => true));
        labeled = labeled.filter((_, index) => kept.has(messages[index] as JsMsg));
        messages = messages.filter((message) => kept.has(message));
        if (messages.length === 0) {
          await this.flush();
          return;
        }
      }
      const sequences = messages.map((message) => message.seq);
      const windowId = `w${Math.min(...sequences)}-${Math.max(...sequences)}-${messages.length}`;
      const { parts, counts } = buildShards(labeled, {
        teacherVersion,
        classes: this.options.classes,
        policy: this.options.policy,
        windowId,
        maxPayloadBytes: this.options.maxPayloadBytes,
        createdAt: new Date(),
      });
      const subject = shardSubject(this.names, teacherVersion);
      await Promise.all(
        parts.map((part) => {
          const messageHeaders = headers();
          messageHeaders.set('Nats-Msg-Id', part.shardId);
          return this.js.publish(subject, Shard.encode(part).finish(), { headers: messageHeaders });
        }),
      );
      // Only now, with every part stored, are the images acknowledged (docs/architecture.md §7). One flush
      // for the window instead of a request per ack (ackAck cost the labeler more than labeling):
      // the server has every ack once the flush returns.
      for (const message of messages) message.ack();
      await this.flush();
      this.onWindow(counts, parts.length);
    } catch (error) {
      clearInterval(stillWorking);
      const delayMs = error instanceof VersionMismatch ? 1_000 : 2_000;
      this.log.warn(
        { err: error, teacherVersion, images: delivered.length },
        'window not labeled; it will be delivered again',
      );
      for (const message of delivered) message.nak(delayMs);
      await pause(delayMs);
    } finally {
      clearInterval(stillWorking);
    }
  }

  /**
   * `delivered` less the images (those `atRisk`) that already have an outcome in this version's
   * shards: delivered again after their earlier acknowledgement was lost, or labeled meanwhile by
   * another replica after this one's ack-wait renewals were lost. Those are acknowledged here.
   */
  private async withoutLabeled(
    delivered: JsMsg[],
    atRisk: (message: JsMsg) => boolean = (message) => message.redelivered,
  ): Promise<JsMsg[]> {
    const again = delivered.filter(atRisk);
    if (again.length === 0) return delivered;
    const ids = new Map(again.map((message) => [message, sourceIdOf(message, decoded(message))]));
    const done = await this.index.labeled([...ids.values()]);
    if (done.size === 0) return delivered;
    const fresh: JsMsg[] = [];
    for (const message of delivered) {
      const id = ids.get(message);
      if (id !== undefined && done.has(id)) message.ack();
      else fresh.push(message);
    }
    const skipped = delivered.length - fresh.length;
    this.log.info(
      { teacherVersion: this.options.teacherVersion, images: skipped },
      'images already have an outcome in the shards (delivered again, or labeled by another replica meanwhile); acknowledged without a second one',
    );
    this.onAlreadyLabeled(skipped);
    return fresh;
  }

  private async label(message: JsMsg): Promise<LabeledImage> {
    let unlabeled: UnlabeledImage;
    try {
      unlabeled = UnlabeledImage.decode(message.data);
    } catch (error) {
      return {
        sourceId: sourceIdOf(message),
        image: undefined,
        outcome: { kind: 'rejected', reason: `message: not an UnlabeledImage protobuf (${String(error)})` },
      };
    }
    const sourceId = sourceIdOf(message, unlabeled);
    if (unlabeled.image === undefined) {
      return {
        sourceId,
        image: undefined,
        outcome: { kind: 'rejected', reason: 'image: expected encoded bytes or a tensor, got none' },
      };
    }
    const answer = await this.teacher.predict(unlabeled.image, sourceId);
    if (answer.version !== '' && answer.version !== this.options.teacherVersion) {
      throw new VersionMismatch(
        `teacher answered as ${answer.version}, this worker labels for ${this.options.teacherVersion}`,
      );
    }
    if (answer.kind === 'rejected')
      return { sourceId, image: unlabeled.image, outcome: { kind: 'rejected', reason: answer.reason } };
    return { sourceId, image: unlabeled.image, outcome: { kind: 'prediction', probabilities: answer.probabilities } };
  }
}

/** The image's source id: from the message, else its Nats-Msg-Id, else its stream sequence. */
function sourceIdOf(message: JsMsg, unlabeled?: UnlabeledImage): string {
  return unlabeled?.sourceId || message.headers?.get('Nats-Msg-Id') || `seq-${message.seq}`;
}

function decoded(message: JsMsg): UnlabeledImage | undefined {
  try {
    return UnlabeledImage.decode(message.data);
  } catch {
    return undefined;
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
