import { status, type ClientDuplexStream } from '@grpc/grpc-js';

import { ClientError, InputError, type CallContext } from './errors.js';
import { nextDelayMs, systemClock, type Clock, type RetryPolicy } from './retry.js';

export interface WindowedStreamOptions<Item, Request, Response> {
  /** Opens a stream: the first one, and one per reconnect. */
  open(): Promise<ClientDuplexStream<Request, Response>>;
  items: Iterable<Item> | AsyncIterable<Item>;
  /** The request for the item at `index` (from 0); may throw InputError. */
  toRequest(item: Item, index: number): Promise<Request> | Request;
  /** Pairs a request with its answer (answers come back in any order). */
  requestId(request: Request): string;
  responseId(response: Response): string;
  /** Requests sent and not yet answered, at most (≥ 1). */
  window: number;
  /** Told as each request is written; `resent` after a reconnect. */
  onSend?: (request: Request, resent: boolean) => void;
  /** Reconnects after UNAVAILABLE (or the server cancelling the stream); undefined: none. */
  retry: RetryPolicy | undefined;
  /**
   * Whether an answer says to try that request again later (the service could not do it just now,
   * e.g. an image refused UNAVAILABLE while NATS elects a leader): it is resent after a backoff,
   * at most `retry.attempts` times in all, instead of being yielded. Default: never.
   */
  retryAnswer?: (response: Response) => boolean;
  /** When the whole exchange must be over, ms since the epoch (Infinity: never); no reconnect starts after it. */
  deadline: number;
  signal?: AbortSignal | undefined;
  /** For ClientError: the service, address, RPC and deadline. */
  context: CallContext;
  clock?: Clock;
  random?: () => number;
}

/** One answered request. */
export interface Answered<Request, Response> {
  request: Request;
  response: Response;
  /** The request was sent again after a reconnect: the answer to an earlier send may have been lost. */
  resent: boolean;
}

interface Pending<Request> {
  request: Request;
  /** The item's index: resent requests go out in their first order. */
  order: number;
  resent: boolean;
  /** Times an answer sent it back to be tried again. */
  retries: number;
}

/**
 * Drives one bidirectional call with a bounded window (docs/architecture.md §8: bounded both
 * ways): it takes the next item only while fewer than `window` requests are unanswered, stops
 * writing while the stream's write() says its buffer is full (until 'drain'), and yields each
 * answer paired with its request. When the stream fails with UNAVAILABLE, or the server cancels it
 * (a forced shutdown), it opens a new one after a backoff and first resends every unanswered
 * request: the services answer a resent request again (Predict) or as a duplicate (Ingest, by
 * source id), so nothing is lost. After the last item it half-closes and returns once every
 * request is answered and the server ended the call.
 *
 * @throws ClientError when the stream fails for good (or CANCELLED when `signal` aborts)
 * @throws InputError from `toRequest`, or whatever the items' iterator throws
 */
export async function* windowedStream<Item, Request, Response>(
  options: WindowedStreamOptions<Item, Request, Response>,
): AsyncGenerator<Answered<Request, Response>, void, undefined> {
  const { window, retry, deadline, signal, context, clock = systemClock, random = Math.random } = options;
  if (!Number.isInteger(window) || window < 1) {
    throw new InputError('window', `expected an integer ≥ 1 (requests unanswered at a time), got ${window}`);
  }
  const source = iterate(options.items);
  const wake = new Wakeup();
  const unanswered = new Map<string, Pending<Request>[]>();
  let unansweredCount = 0;
  const resend: Pending<Request>[] = [];
  const pulled: Pending<Request>[] = [];
  /** Requests an answer sent back, waiting out their backoff before they are resent. */
  let backingOff = 0;
  let nextIndex = 0;
  let sourceDone = false;
  let pulling = false;
  let sourceFailure: { error: unknown } | undefined;
  let failuresInARow = 0;
  let stream: StreamAttempt<Request, Response> | undefined;

  const pull = async (index: number): Promise<void> => {
    try {
      const next = await source.next();
      if (next.done === true) sourceDone = true;
      else
        pulled.push({ request: await options.toRequest(next.value, index), order: index, resent: false, retries: 0 });
    } catch (error) {
      sourceFailure = { error };
    } finally {
      pulling = false;
      wake.notify();
    }
  };
  const onAbort = (): void => wake.notify();
  signal?.addEventListener('abort', onAbort);
  try {
    for (;;) {
      if (signal?.aborted === true) {
        throw new ClientError(status.CANCELLED, 'cancelled by the caller', {
          ...context,
          attempts: failuresInARow + 1,
        });
      }
      stream ??= await StreamAttempt.open(options.open, wake);

      for (let response = stream.answers.shift(); response !== undefined; response = stream.answers.shift()) {
        const id = options.responseId(response);
        const waiting = unanswered.get(id);
        const pending = waiting?.shift();
        if (waiting === undefined || pending === undefined) {
          throw new ClientError(
            status.INTERNAL,
            `the server answered "${id}", which was not awaiting an answer`,
            context,
          );
        }
        if (waiting.length === 0) unanswered.delete(id);
        unansweredCount--;
        failuresInARow = 0;
        const delayMs =
          options.retryAnswer?.(response) === true
            ? nextDelayMs(pending.retries + 1, undefined, {
                policy: retry,
                deadline,
                retryable: () => true,
                clock,
                random,
              })
            : undefined;
        if (delayMs !== undefined) {
          backingOff++;
          void clock
            .sleep(delayMs, signal)
            .catch(() => undefined)
            .then(() => {
              backingOff--;
              resend.push({ ...pending, resent: true, retries: pending.retries + 1 });
              wake.notify();
            });
          continue;
        }
        yield { request: pending.request, response, resent: pending.resent };
      }
      if (sourceFailure !== undefined) throw sourceFailure.error;

      if (stream.error !== undefined) {
        failuresInARow++;
        const delayMs = nextDelayMs(failuresInARow, stream.error, {
          policy: retry,
          deadline,
          retryable: reconnectable,
          clock,
          random,
        });
        if (delayMs === undefined) throw ClientError.from(stream.error, { ...context, attempts: failuresInARow });
        retry?.onRetry?.({ method: context.method, attempt: failuresInARow, delayMs, error: stream.error });
        const lost = [...unanswered.values()].flat().sort((a, b) => a.order - b.order);
        resend.unshift(...lost.map((pending) => ({ ...pending, resent: true })));
        unanswered.clear();
        unansweredCount = 0;
        stream = undefined;
        await clock.sleep(delayMs, signal).catch(() => undefined);
        continue;
      }

      if (stream.finished) {
        if (sourceDone && unansweredCount === 0 && pulled.length === 0 && resend.length + backingOff > 0) {
          // Sent back by their answers after this stream was closed: when their backoff is over they
          // go out on a new stream.
          if (resend.length === 0) await wake.wait();
          else stream = undefined;
          continue;
        }
        const left = unansweredCount + resend.length + pulled.length + backingOff;
        if (left > 0 || !sourceDone) {
          throw new ClientError(
            status.INTERNAL,
            `the server ended the stream with ${left} request(s) unanswered${sourceDone ? '' : ' and more to send'}`,
            context,
          );
        }
        return;
      }

      while (!stream.writeBlocked && !stream.halfClosed && unansweredCount < window) {
        const next = resend.shift() ?? pulled.shift();
        if (next === undefined) break;
        const id = options.requestId(next.request);
        const waiting = unanswered.get(id);
        if (waiting === undefined) unanswered.set(id, [next]);
        else waiting.push(next);
        unansweredCount++;
        options.onSend?.(next.request, next.resent);
        stream.write(next.request);
      }
      // Only what can be sent at once is taken from the items, so no more than `window` are ever taken and unanswered.
      const room = unansweredCount + pulled.length + resend.length + backingOff < window;
      if (!pulling && !sourceDone && sourceFailure === undefined && room) {
        pulling = true;
        void pull(nextIndex++);
      }
      if (sourceDone && !pulling && pulled.length === 0 && resend.length === 0 && backingOff === 0) stream.halfClose();
      await wake.wait();
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    stream?.cancel();
    if (!sourceDone) void Promise.resolve(source.return?.()).catch(() => undefined);
  }
}

/** A stream failure worth reconnecting for: the service unreachable, or it cancelled the call (a forced shutdown). */
function reconnectable(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === status.UNAVAILABLE || code === status.CANCELLED;
}

function iterate<T>(items: Iterable<T> | AsyncIterable<T>): Iterator<T> | AsyncIterator<T> {
  return Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]();
}

/** One stream of the exchange and what its events left: answers to take, whether it may be written, how it ended. */
class StreamAttempt<Request, Response> {
  readonly answers: Response[] = [];
  error: unknown;
  /** The last write() returned false; writing waits for 'drain'. */
  writeBlocked = false;
  halfClosed = false;
  private readEnded = false;
  private statusOk = false;

  private constructor(private readonly call: ClientDuplexStream<Request, Response> | undefined) {}

  /** A new stream whose events wake `wake`; one whose opening failed carries the error. */
  static async open<Request, Response>(
    open: () => Promise<ClientDuplexStream<Request, Response>>,
    wake: Wakeup,
  ): Promise<StreamAttempt<Request, Response>> {
    let call: ClientDuplexStream<Request, Response>;
    try {
      call = await open();
    } catch (error) {
      const failed = new StreamAttempt<Request, Response>(undefined);
      failed.error = error ?? new Error('the stream could not be opened');
      return failed;
    }
    const attempt = new StreamAttempt(call);
    call.on('data', (response: Response) => {
      attempt.answers.push(response);
      wake.notify();
    });
    call.on('drain', () => {
      attempt.writeBlocked = false;
      wake.notify();
    });
    call.on('error', (error: unknown) => {
      attempt.error ??= error;
      wake.notify();
    });
    call.on('end', () => {
      attempt.readEnded = true;
      wake.notify();
    });
    call.on('status', (result: { code: number }) => {
      if (result.code === status.OK) attempt.statusOk = true;
      wake.notify();
    });
    return attempt;
  }

  /** The server ended the call normally and every answer was read. */
  get finished(): boolean {
    return this.readEnded && this.statusOk && this.answers.length === 0;
  }

  write(request: Request): void {
    if (this.call !== undefined && !this.call.write(request)) this.writeBlocked = true;
  }

  halfClose(): void {
    if (this.halfClosed) return;
    this.halfClosed = true;
    this.call?.end();
  }

  cancel(): void {
    this.call?.cancel();
  }
}

/** Wakes one waiting loop; a wake-up that comes while the loop is busy is kept for its next wait. */
class Wakeup {
  private waiting: (() => void) | undefined;
  private pending = false;

  notify(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting === undefined) this.pending = true;
    else waiting();
  }

  wait(): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => (this.waiting = resolve));
  }
}
