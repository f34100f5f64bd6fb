import { InputError } from './errors.js';

/** Retries of idempotent calls that failed with UNAVAILABLE (the service down, restarting, or full). */
export interface RetryOptions {
  /**
   * Calls in all, the first one included; 1 means no retry.
   * @default 5
   */
  attempts?: number;
  /**
   * The wait before the first retry, in ms; each further wait doubles, up to `maxBackoffMs`.
   * Every wait is drawn between half and all of that (jitter), so callers that failed together
   * do not come back together.
   * @default 100
   */
  initialBackoffMs?: number;
  /**
   * The longest wait between two calls, in ms.
   * @default 5000
   */
  maxBackoffMs?: number;
  /** Told before each wait: for a log line or a progress display. */
  onRetry?: (event: RetryEvent) => void;
}

/** One retry about to happen. */
export interface RetryEvent {
  /** The RPC, e.g. 'Predict' (or 'Ingest' when a stream reconnects). */
  method: string;
  /** The attempt that just failed, from 1. */
  attempt: number;
  /** How long the client waits before the next attempt, in ms. */
  delayMs: number;
  /** Why the attempt failed. */
  error: unknown;
}

/** RetryOptions with every default applied and checked. */
export interface RetryPolicy {
  attempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  onRetry: ((event: RetryEvent) => void) | undefined;
}

export const DEFAULT_RETRY: Readonly<RetryPolicy> = {
  attempts: 5,
  initialBackoffMs: 100,
  maxBackoffMs: 5_000,
  onRetry: undefined,
};

/** The policy `retry` asks for: undefined for `false` (no retries), the defaults for `undefined`. */
export function retryPolicy(retry: RetryOptions | false | undefined, field = 'retry'): RetryPolicy | undefined {
  if (retry === false) return undefined;
  const policy: RetryPolicy = {
    attempts: retry?.attempts ?? DEFAULT_RETRY.attempts,
    initialBackoffMs: retry?.initialBackoffMs ?? DEFAULT_RETRY.initialBackoffMs,
    maxBackoffMs: retry?.maxBackoffMs ?? DEFAULT_RETRY.maxBackoffMs,
    onRetry: retry?.onRetry,
  };
  if (!Number.isInteger(policy.attempts) || policy.attempts < 1) {
    throw new InputError(`${field}.attempts`, `expected an integer ≥ 1 (calls in all), got ${policy.attempts}`);
  }
  if (!(policy.initialBackoffMs > 0) || !Number.isFinite(policy.initialBackoffMs)) {
    throw new InputError(`${field}.initialBackoffMs`, `expected a number of ms > 0, got ${policy.initialBackoffMs}`);
  }
  if (!(policy.maxBackoffMs >= policy.initialBackoffMs) || !Number.isFinite(policy.maxBackoffMs)) {
    throw new InputError(
      `${field}.maxBackoffMs`,
      `expected a number of ms ≥ initialBackoffMs (${policy.initialBackoffMs}), got ${policy.maxBackoffMs}`,
    );
  }
  return policy;
}

/**
 * The wait before retry number `retry` (from 1), in ms: the exponential cap
 * min(maxBackoffMs, initialBackoffMs × 2^(retry−1)), drawn uniformly between half the cap and
 * the cap ("equal jitter": spread out, yet never a burst of near-zero waits).
 */
export function backoffDelayMs(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const cap = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** (retry - 1));
  return cap / 2 + (random() * cap) / 2;
}

/** Time as retries see it; tests pass a fake one. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`; rejects with the signal's reason if it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(abortReason(signal));
        return;
      }
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(abortReason(signal));
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

export interface RetryContext {
  /** Undefined: one attempt only. */
  policy: RetryPolicy | undefined;
  /** When the whole call must be over, ms since the epoch (Infinity for never): no retry starts after it. */
  deadline: number;
  /** The RPC, for RetryEvent. */
  method: string;
  retryable(error: unknown): boolean;
  signal?: AbortSignal | undefined;
  clock?: Clock;
  random?: () => number;
}

/**
 * Runs `attempt` (numbered from 1) until it succeeds, fails with an error that is not
 * retryable, runs out of attempts, or the next wait would end at or past the deadline; then
 * rethrows the last error. Each wait is `backoffDelayMs`, announced to `policy.onRetry` first.
 */
export async function withRetry<T>(attempt: (attemptNumber: number) => Promise<T>, context: RetryContext): Promise<T> {
  const { policy, deadline, method, retryable, signal, clock = systemClock, random = Math.random } = context;
  for (let attemptNumber = 1; ; attemptNumber++) {
    try {
      return await attempt(attemptNumber);
    } catch (error) {
      const delayMs = nextDelayMs(attemptNumber, error, { policy, deadline, retryable, clock, random });
      if (delayMs === undefined || signal?.aborted === true) throw error;
      policy?.onRetry?.({ method, attempt: attemptNumber, delayMs, error });
      await clock.sleep(delayMs, signal);
    }
  }
}

/**
 * The wait before retrying after `failedAttempt` failed with `error`, or undefined when there is
 * no retry: not retryable, no attempts left, or the wait would reach the deadline.
 */
export function nextDelayMs(
  failedAttempt: number,
  error: unknown,
  context: Pick<RetryContext, 'policy' | 'deadline' | 'retryable'> & { clock: Clock; random: () => number },
): number | undefined {
  const { policy, deadline, retryable, clock, random } = context;
  if (policy === undefined || failedAttempt >= policy.attempts || !retryable(error)) return undefined;
  const delayMs = backoffDelayMs(failedAttempt, policy, random);
  return clock.now() + delayMs < deadline ? delayMs : undefined;
}

function abortReason(signal: AbortSignal | undefined): unknown {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error) return reason;
  const error = new Error(typeof reason === 'string' ? reason : 'aborted');
  error.name = 'AbortError';
  return error;
}
