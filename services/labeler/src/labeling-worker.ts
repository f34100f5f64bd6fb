import { type PseudoLabelPolicy } from '@noisystudent/ml';
import { Shard, UnlabeledImage } from '@noisystudent/proto';
import type { Logger } from '@noisystudent/runtime';
import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg } from 'nats';

import { labelingConsumer, shardSubject, type NatsNames } from '@noisystudent/core';
import { LabeledIndex } from './labeled-index.js';
import {
  buildShards,
  countParts,
  shardImageIds,
  withoutImages,
  type LabeledImage,
  type WindowCounts,
} from './shards.js';
import type { TeacherPool } from './teacher-pool.js';

/** The shortest pull expiry nats.js accepts ("expires should be at least 1000ms"). */
const MIN_FETCH_EXPIRES_MS = 1_000;

/** Appends of one window refused because another replica appended first, before the window is given up (and delivered again). */
const MAX_APPEND_ATTEMPTS = 20;

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
    // A window held longer than the ack wait (the teacher away for minutes) would be delivered
    // again into another window while this one still holds it: an image with two outcomes.
    // Telling NATS the window is still being worked on restarts each message's ack wait.
    const stillWorking = setInterval(() => {
      for (const message of delivered) message.working();
    }, this.ackWaitMs / 3);
    try {
      const messages = await this.withoutLabeled(delivered);
      if (messages.length === 0) {
        await this.flush();
        return;
      }
      const labeled = await Promise.all(messages.map((message) => this.label(message)));
      const sequences = messages.map((message) => message.seq);
      const windowId = `w${Math.min(...sequences)}-${Math.max(...sequences)}-${messages.length}`;
      const parts = buildShards(labeled, {
        teacherVersion,
        classes: this.options.classes,
        policy: this.options.policy,
        windowId,
        maxPayloadBytes: this.options.maxPayloadBytes,
        createdAt: new Date(),
      });
      const { stored, taken } = await this.append(parts);
      // Only now, with every part stored, are the images acknowledged (docs/architecture.md §7). One flush
      // for the window instead of a request per ack (ackAck cost the labeler more than labeling):
      // the server has every ack once the flush returns.
      for (const message of messages) message.ack();
      await this.flush();
      if (taken > 0) {
        this.log.info(
          { teacherVersion, images: taken },
          'images labeled by another replica at the same time; stored once, with its outcome',
        );
        this.onAlreadyLabeled(taken);
      }
      if (stored.length > 0) this.onWindow(countParts(stored, labeled, this.options.classes), stored.length);
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
   * Appends a window's parts to the version's shards so that no image gets a second outcome, even
   * when another replica labels it at the same time (its first delivery forgotten with a NATS node
   * that died): each part is stored only if the subject still ends at the shard this replica read
   * through (Nats-Expected-Last-Subject-Sequence). When another replica appended first, the shards
   * it added are read, the images they gave an outcome are left out, and the rest is appended.
   */
  private async append(parts: Shard[]): Promise<{ stored: Shard[]; taken: number }> {
    const subject = shardSubject(this.names, this.options.teacherVersion);
    const stored: Shard[] = [];
    let pending = parts;
    let taken = 0;
    for (let attempt = 1; pending.length > 0; attempt++) {
      pending = await this.index.exclusive(async (index) => {
        const done = new Set(pending.flatMap(shardImageIds).filter((id) => index.has(id)));
        taken += done.size;
        const left = done.size === 0 ? [...pending] : pending.flatMap((part) => withoutImages(part, done) ?? []);
        while (left.length > 0) {
          const part = left[0] as Shard;
          try {
            const ack = await this.js.publish(subject, Shard.encode(part).finish(), {
              msgID: part.shardId,
              expect: { lastSubjectSequence: index.lastSequence },
            });
            // A duplicate: stored before, its answer lost. The next part's append is refused and the index reads it.
            if (!ack.duplicate) index.appended(part, ack.seq);
          } catch (error) {
            if (!isWrongLastSequence(error) || attempt >= MAX_APPEND_ATTEMPTS) throw error;
            break;
          }
          stored.push(part);
          left.shift();
        }
        return left;
      });
    }
    return { stored, taken };
  }

  /**
   * `delivered` less the images delivered again that already have an outcome in this version's
   * shards (their earlier acknowledgement was lost): those are acknowledged here, not labeled again.
   */
  private async withoutLabeled(delivered: JsMsg[]): Promise<JsMsg[]> {
    const again = delivered.filter((message) => message.redelivered);
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
      'images delivered again already have an outcome in the shards; acknowledged without a second one',
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

/** The stream refused an append with an expected last sequence: another one came first (JetStream error 10071). */
function isWrongLastSequence(error: unknown): boolean {
  return (error as { api_error?: { err_code?: number } }).api_error?.err_code === 10071;
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
