import { describe, expect, it } from 'vitest';

import { isTransientNatsError, retryTransient } from './transient.js';

const timeout = Object.assign(new Error('TIMEOUT'), { code: 'TIMEOUT' });
const noLeader = Object.assign(new Error('JetStream system temporarily unavailable'), { code: '503' });

describe('retryTransient', () => {
  it('tells the errors of a cluster in flux from the rest', () => {
    expect(isTransientNatsError(timeout)).toBe(true);
    expect(isTransientNatsError(noLeader)).toBe(true);
    expect(isTransientNatsError(new Error('503 No Responders Available For Request'))).toBe(true);
    expect(isTransientNatsError(new Error('invalid stream config'))).toBe(false);
    expect(isTransientNatsError(undefined)).toBe(false);
  });

  it('asks again after transient errors and returns the first answer', async () => {
    const errors = [timeout, noLeader];
    let calls = 0;
    const answer = await retryTransient(async () => {
      calls++;
      const error = errors.shift();
      if (error !== undefined) throw error;
      return 'ok';
    });
    expect({ answer, calls }).toEqual({ answer: 'ok', calls: 3 });
  });

  it('throws any other error at once, and a transient one after the last attempt', async () => {
    let calls = 0;
    await expect(
      retryTransient(async () => {
        calls++;
        throw new Error('invalid stream config');
      }),
    ).rejects.toThrow('invalid stream config');
    expect(calls).toBe(1);
    calls = 0;
    await expect(
      retryTransient(async () => {
        calls++;
        throw timeout;
      }, 3),
    ).rejects.toBe(timeout);
    expect(calls).toBe(3);
  });
});
