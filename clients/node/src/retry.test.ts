import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';

import { InputError, isUnavailable } from './errors.js';
import {
  backoffDelayMs,
  DEFAULT_RETRY,
  retryPolicy,
  withRetry,
  type Clock,
  type RetryEvent,
  type RetryPolicy,
} from './retry.js';

/** Time that moves only when the code under test sleeps. */
class FakeClock implements Clock {
  time = 1_000_000;
  readonly sleeps: number[] = [];

  now(): number {
    return this.time;
  }

  sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.time += ms;
    return Promise.resolve();
  }
}

const unavailable = { code: status.UNAVAILABLE, details: 'connect ECONNREFUSED' };
const invalid = { code: status.INVALID_ARGUMENT, details: 'images[0]: bad' };

/** An attempt that fails with `errors` in turn, then answers 'ok'; it records each attempt's time. */
function flaky(errors: unknown[], clock: FakeClock): { run: () => Promise<string>; times: number[] } {
  const times: number[] = [];
  return {
    times,
    run: () => {
      times.push(clock.now());
      const error = errors[times.length - 1];
      return error === undefined ? Promise.resolve('ok') : Promise.reject(error);
    },
  };
}

const policy = (overrides: Partial<RetryPolicy> = {}): RetryPolicy => ({ ...DEFAULT_RETRY, ...overrides });

describe('backoffDelayMs', () => {
  it('doubles from the initial backoff up to the maximum, drawn between half and all of it', () => {
    const retry = policy({ initialBackoffMs: 100, maxBackoffMs: 1_000 });
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelayMs(n, retry, () => 1))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelayMs(n, retry, () => 0))).toEqual([50, 100, 200, 400, 500, 500]);
    expect(backoffDelayMs(3, retry, () => 0.5)).toBe(300);
  });
});

describe('withRetry', () => {
  it('retries UNAVAILABLE with backoff until an attempt succeeds, announcing each wait', async () => {
    const clock = new FakeClock();
    const { run, times } = flaky([unavailable, unavailable], clock);
    const events: RetryEvent[] = [];
    const result = await withRetry(run, {
      policy: policy({ onRetry: (event) => events.push(event) }),
      deadline: Infinity,
      method: 'Predict',
      retryable: isUnavailable,
      clock,
      random: () => 1,
    });
    expect(result).toBe('ok');
    expect(clock.sleeps).toEqual([100, 200]);
    expect(times.map((time) => time - 1_000_000)).toEqual([0, 100, 300]);
    expect(events.map(({ method, attempt, delayMs }) => ({ method, attempt, delayMs }))).toEqual([
      { method: 'Predict', attempt: 1, delayMs: 100 },
      { method: 'Predict', attempt: 2, delayMs: 200 },
    ]);
    expect(events[0]?.error).toBe(unavailable);
  });

  it('gives up after `attempts` calls, with the last error', async () => {
    const clock = new FakeClock();
    const errors = Array.from({ length: 9 }, (_, index) => ({ ...unavailable, details: `attempt ${index + 1}` }));
    const { run, times } = flaky(errors, clock);
    await expect(
      withRetry(run, { policy: policy(), deadline: Infinity, method: 'Predict', retryable: isUnavailable, clock }),
    ).rejects.toBe(errors[4]);
    expect(times).toHaveLength(5);
  });

  it('does not retry other codes, nor anything without a policy', async () => {
    const clock = new FakeClock();
    const once = flaky([invalid], clock);
    await expect(
      withRetry(once.run, { policy: policy(), deadline: Infinity, method: 'Predict', retryable: isUnavailable, clock }),
    ).rejects.toBe(invalid);
    const noPolicy = flaky([unavailable], clock);
    await expect(
      withRetry(noPolicy.run, { policy: undefined, deadline: Infinity, method: 'Predict', retryable: isUnavailable }),
    ).rejects.toBe(unavailable);
    expect([once.times.length, noPolicy.times.length, clock.sleeps.length]).toEqual([1, 1, 0]);
  });

  it('never waits into the deadline: the last attempt starts before it', async () => {
    const clock = new FakeClock();
    const { run, times } = flaky(Array<unknown>(10).fill(unavailable), clock);
    const deadline = clock.now() + 1_000;
    await expect(
      withRetry(run, {
        policy: policy({ attempts: 10, initialBackoffMs: 100, maxBackoffMs: 5_000 }),
        deadline,
        method: 'GetStatus',
        retryable: isUnavailable,
        clock,
        random: () => 1,
      }),
    ).rejects.toBe(unavailable);
    // Attempts at 0, 100, 300, 700 ms; the next wait (800 ms) would end at 1500 ms, past the deadline.
    expect(times.map((time) => time - 1_000_000)).toEqual([0, 100, 300, 700]);
    expect(Math.max(...times)).toBeLessThan(deadline);
  });
});

describe('retryPolicy', () => {
  it('applies the defaults, and false turns retries off', () => {
    expect(retryPolicy(undefined)).toEqual({
      attempts: 5,
      initialBackoffMs: 100,
      maxBackoffMs: 5_000,
      onRetry: undefined,
    });
    expect(retryPolicy({ attempts: 2 })?.attempts).toBe(2);
    expect(retryPolicy(false)).toBeUndefined();
  });

  it.each([
    [{ attempts: 0 }, /^retry\.attempts: expected an integer ≥ 1/],
    [{ initialBackoffMs: -1 }, /^retry\.initialBackoffMs: expected a number of ms > 0, got -1$/],
    [
      { initialBackoffMs: 500, maxBackoffMs: 100 },
      /^retry\.maxBackoffMs: expected a number of ms ≥ initialBackoffMs \(500\), got 100$/,
    ],
  ])('refuses %o, naming the field', (options, message) => {
    expect(() => retryPolicy(options)).toThrow(InputError);
    expect(() => retryPolicy(options)).toThrow(message);
  });
});
