import { Unavailable } from '@noisystudent/core';

export interface BatcherOptions {
  /** Images per batch; a batch closes when it holds this many. @default 32 */
  maxBatchSize: number;
  /**
   * How long the oldest waiting image may wait for others to fill its batch while another batch
   * runs or after a batch of several jobs (with none running after a lone job, the images waiting
   * go at the end of the event loop's turn, unless `waitWhenIdle`). @default 2
   */
  maxQueueDelayMs: number;
  /** Waits `maxQueueDelayMs` also when no batch runs after a lone job: fuller batches at light load, for latency. @default false */
  waitWhenIdle: boolean;
  /** Images waiting at most; beyond it a submit is refused with UNAVAILABLE. @default 1024 */
  maxQueueSize: number;
  /** Batches handed to `run` and not finished yet; 2 lets the next batch wait at the model. @default 2 */
  maxInFlightBatches: number;
}

export const DEFAULT_BATCHER_OPTIONS: BatcherOptions = {
  maxBatchSize: 32,
  maxQueueDelayMs: 2,
  waitWhenIdle: false,
  maxQueueSize: 1024,
  maxInFlightBatches: 2,
};

/** A job as `run` sees it, with how long it waited. */
export interface QueuedJob<Job> {
  job: Job;
  /** Images in the job; a job is never split across batches. */
  size: number;
  queuedMs: number;
}

export interface SubmitOptions {
  /** Aborting drops the job if it has not started (rejects with the signal's reason). */
  signal?: AbortSignal;
  /** Milliseconds since the epoch after which the job is dropped instead of run. */
  deadline?: number;
}

/** Why a job was dropped before it ran. */
export class JobDropped extends Error {
  override readonly name: 'AbortError' | 'DeadlineExceeded';
  constructor(kind: 'AbortError' | 'DeadlineExceeded', message: string) {
    super(message);
    this.name = kind;
  }
}

interface Waiting<Job, Result> extends QueuedJob<Job> {
  enqueuedAt: number;
  deadline: number;
  signal: AbortSignal | undefined;
  resolve(result: Result): void;
  reject(error: unknown): void;
}

/**
 * One queue for every caller (docs/architecture.md §5, Teacher): jobs of one or more images are gathered
 * into batches of at most `maxBatchSize` images, a batch leaves when it is full or its oldest
 * job has waited `maxQueueDelayMs`, and at most `maxInFlightBatches` run at once. When no batch
 * runs and the last batch was a lone job (light load: a caller waiting for each answer before it
 * asks again), waiting for company would only add latency: what is queued leaves at the end of
 * the event loop's turn (with every job that arrived in it), and later jobs gather behind it
 * (unless `waitWhenIdle`). Under load, batches keep filling for the delay. Cancelled and
 * expired jobs are dropped before they reach `run`. `run` gets the jobs of one batch and returns
 * one result per job, in order.
 */
export class DynamicBatcher<Job, Result> {
  readonly options: BatcherOptions;
  private readonly queue: Array<Waiting<Job, Result>> = [];
  private queuedImages = 0;
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private endOfTurn: NodeJS.Immediate | undefined;
  /** Jobs waiting in the queue by the signal that cancels them, with that signal's one listener. */
  private readonly bySignal = new Map<AbortSignal, { jobs: Set<Waiting<Job, Result>>; onAbort: () => void }>();
  /** Jobs in the batch dispatched last (0: none yet). */
  private lastBatchJobs = 0;
  private closed = false;
  private readonly idleWaiters: Array<() => void> = [];

  constructor(
    private readonly run: (jobs: Array<QueuedJob<Job>>) => Promise<Result[]>,
    options: Partial<BatcherOptions> = {},
    private readonly now: () => number = Date.now,
  ) {
    this.options = { ...DEFAULT_BATCHER_OPTIONS, ...options };
    for (const key of ['maxBatchSize', 'maxQueueSize', 'maxInFlightBatches'] as const) {
      if (!Number.isSafeInteger(this.options[key]) || this.options[key] < 1) {
        throw new RangeError(`${key}: expected a positive integer, got ${this.options[key]}`);
      }
    }
    if (!(this.options.maxQueueDelayMs >= 0)) {
      throw new RangeError(`maxQueueDelayMs: expected a number ≥ 0, got ${this.options.maxQueueDelayMs}`);
    }
  }

  /** Images waiting (not yet in a batch). */
  get queuedImageCount(): number {
    return this.queuedImages;
  }

  get inFlightBatches(): number {
    return this.inFlight;
  }

  submit(job: Job, size: number, options: SubmitOptions = {}): Promise<Result> {
    if (this.closed)
      return Promise.reject(new Unavailable('teacher: shutting down; send the request to another replica'));
    if (!Number.isSafeInteger(size) || size < 1)
      return Promise.reject(new RangeError(`size: expected ≥ 1, got ${size}`));
    if (this.queuedImages + size > this.options.maxQueueSize) {
      return Promise.reject(
        new Unavailable(
          `queue: full (${this.queuedImages} images waiting, maxQueueSize ${this.options.maxQueueSize}); retry with backoff`,
        ),
      );
    }
    if (options.signal?.aborted === true) return Promise.reject(cancelled(options.signal));
    return new Promise<Result>((resolve, reject) => {
      const waiting: Waiting<Job, Result> = {
        job,
        size,
        queuedMs: 0,
        enqueuedAt: this.now(),
        deadline: options.deadline ?? Infinity,
        signal: options.signal,
        resolve,
        reject,
      };
      if (options.signal !== undefined) this.attach(waiting, options.signal);
      this.queue.push(waiting);
      this.queuedImages += size;
      this.pump();
    });
  }

  /** Refuses new jobs, runs every queued one without waiting for fuller batches, resolves when all finished. */
  async drain(): Promise<void> {
    this.closed = true;
    this.pump();
    if (this.queue.length === 0 && this.inFlight === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** `endOfTurn`: called at the end of the event loop's turn in which jobs arrived. */
  private pump(endOfTurn = false): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.inFlight < this.options.maxInFlightBatches) {
      this.dropExpired();
      const oldest = this.queue[0];
      if (oldest === undefined) break;
      const waited = this.now() - oldest.enqueuedAt;
      const full = this.queuedImages >= this.options.maxBatchSize;
      // Light load: nothing runs and the last batch was a lone job.
      const goAtTurnEnd = this.inFlight === 0 && this.lastBatchJobs <= 1 && !this.options.waitWhenIdle;
      if (!full && !this.closed && waited < this.options.maxQueueDelayMs && !(goAtTurnEnd && endOfTurn)) {
        if (goAtTurnEnd && this.endOfTurn === undefined) {
          this.endOfTurn = setImmediate(() => {
            this.endOfTurn = undefined;
            this.pump(true);
          });
        }
        this.timer = setTimeout(() => this.pump(), this.options.maxQueueDelayMs - waited);
        break;
      }
      this.dispatch(this.takeBatch());
    }
    if (this.queue.length === 0 && this.inFlight === 0) this.idleWaiters.splice(0).forEach((resolve) => resolve());
  }

  private dropExpired(): void {
    const now = this.now();
    for (let index = this.queue.length - 1; index >= 0; index--) {
      const waiting = this.queue[index];
      if (waiting === undefined || waiting.deadline > now) continue;
      this.queue.splice(index, 1);
      this.queuedImages -= waiting.size;
      this.detach(waiting);
      waiting.reject(new JobDropped('DeadlineExceeded', 'deadline: passed while the request waited in the queue'));
    }
  }

  /** FIFO jobs up to maxBatchSize images; always at least one (a job bigger than a batch runs alone). */
  private takeBatch(): Array<Waiting<Job, Result>> {
    const batch: Array<Waiting<Job, Result>> = [];
    let images = 0;
    const now = this.now();
    while (this.queue.length > 0) {
      const next = this.queue[0];
      if (next === undefined || (batch.length > 0 && images + next.size > this.options.maxBatchSize)) break;
      this.queue.shift();
      this.queuedImages -= next.size;
      images += next.size;
      next.queuedMs = now - next.enqueuedAt;
      this.detach(next);
      batch.push(next);
    }
    return batch;
  }

  private dispatch(batch: Array<Waiting<Job, Result>>): void {
    this.inFlight++;
    this.lastBatchJobs = batch.length;
    const settle = (outcome: { results: Result[] } | { error: unknown }): void => {
      this.inFlight--;
      batch.forEach((waiting, index) => {
        if ('error' in outcome) waiting.reject(outcome.error);
        else if (index < outcome.results.length) waiting.resolve(outcome.results[index] as Result);
        else waiting.reject(new Error(`run returned ${outcome.results.length} results for ${batch.length} jobs`));
      });
      this.pump();
    };
    let running: Promise<Result[]>;
    try {
      running = this.run(batch);
    } catch (error) {
      running = Promise.reject(error);
    }
    running.then(
      (results) => settle({ results }),
      (error: unknown) => settle({ error }),
    );
  }

  /**
   * Drops `waiting` from the queue if `signal` aborts first. One listener per signal, however many
   * of its jobs wait: a PredictStream's requests share its signal, and an EventTarget walks its
   * listeners on every add.
   */
  private attach(waiting: Waiting<Job, Result>, signal: AbortSignal): void {
    let waiters = this.bySignal.get(signal);
    if (waiters === undefined) {
      const jobs = new Set<Waiting<Job, Result>>();
      const onAbort = (): void => {
        this.bySignal.delete(signal);
        for (const job of jobs) {
          const index = this.queue.indexOf(job);
          if (index < 0) continue;
          this.queue.splice(index, 1);
          this.queuedImages -= job.size;
          job.reject(cancelled(signal));
        }
      };
      waiters = { jobs, onAbort };
      this.bySignal.set(signal, waiters);
      signal.addEventListener('abort', onAbort, { once: true });
    }
    waiters.jobs.add(waiting);
  }

  private detach(waiting: Waiting<Job, Result>): void {
    const signal = waiting.signal;
    const waiters = signal === undefined ? undefined : this.bySignal.get(signal);
    if (signal === undefined || waiters === undefined) return;
    waiters.jobs.delete(waiting);
    if (waiters.jobs.size === 0) {
      signal.removeEventListener('abort', waiters.onAbort);
      this.bySignal.delete(signal);
    }
  }
}

function cancelled(signal: AbortSignal): Error {
  if (signal.reason instanceof JobDropped) return signal.reason;
  return new JobDropped('AbortError', `cancelled: the caller went away before inference (${String(signal.reason)})`);
}
