import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { DynamicBatcher, JobDropped, type QueuedJob } from './batcher.js';

/** A `run` that records each batch and finishes it when the test says so. */
function recordingRun() {
  const batches: Array<{ jobs: string[]; finish(): void; fail(error: Error): void }> = [];
  const run = (jobs: Array<QueuedJob<string>>): Promise<string[]> =>
    new Promise((resolve, reject) => {
      batches.push({
        jobs: jobs.map((queued) => queued.job),
        finish: () => resolve(jobs.map((queued) => `done ${queued.job}`)),
        fail: reject,
      });
    });
  return { batches, run };
}

describe('DynamicBatcher', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends a full batch at once and waits maxQueueDelayMs for a partial one', async () => {
    const { batches, run } = recordingRun();
    const batcher = new DynamicBatcher(run, { maxBatchSize: 3, maxQueueDelayMs: 10, maxInFlightBatches: 4 });
    const results = ['a', 'b', 'c', 'd'].map((job) => batcher.submit(job, 1));
    expect(batches.map((batch) => batch.jobs)).toEqual([['a', 'b', 'c']]);
    await vi.advanceTimersByTimeAsync(9);
    expect(batches).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(batches.map((batch) => batch.jobs)).toEqual([['a', 'b', 'c'], ['d']]);
    batches.forEach((batch) => batch.finish());
    expect(await Promise.all(results)).toEqual(['done a', 'done b', 'done c', 'done d']);
  });

  it('sends what waits at the end of the turn when no batch runs after a lone job; otherwise jobs wait for the delay', async () => {
    const { batches, run } = recordingRun();
    const batcher = new DynamicBatcher(run, { maxBatchSize: 8, maxQueueDelayMs: 1000, maxInFlightBatches: 2 });
    // Jobs of one turn of the event loop leave together, at its end.
    const first = [batcher.submit('a', 1), batcher.submit('b', 1)];
    expect(batches).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(0);
    expect(batches.map((batch) => batch.jobs)).toEqual([['a', 'b']]);
    // While that batch runs, the next gathers for the delay.
    const next = batcher.submit('c', 1);
    await vi.advanceTimersByTimeAsync(999);
    expect(batches).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(batches.map((batch) => batch.jobs)).toEqual([['a', 'b'], ['c']]);
    batches.forEach((batch) => batch.finish());
    expect(await Promise.all([...first, next])).toEqual(['done a', 'done b', 'done c']);
    // Idle after a lone job: the next does not wait.
    const lone = batcher.submit('d', 1);
    await vi.advanceTimersByTimeAsync(0);
    expect(batches.map((batch) => batch.jobs)).toEqual([['a', 'b'], ['c'], ['d']]);
    batches[2]?.finish();
    expect(await lone).toBe('done d');
    // Idle after a batch of two (load): the next waits for company.
    const pair = [batcher.submit('e', 1), batcher.submit('f', 1)];
    await vi.advanceTimersByTimeAsync(0);
    batches[3]?.finish();
    expect(await Promise.all(pair)).toEqual(['done e', 'done f']);
    const after = batcher.submit('g', 1);
    await vi.advanceTimersByTimeAsync(999);
    expect(batches).toHaveLength(4);
    await vi.advanceTimersByTimeAsync(1);
    expect(batches[4]?.jobs).toEqual(['g']);
    batches[4]?.finish();
    expect(await after).toBe('done g');
  });

  it('waits the delay when idle too with waitWhenIdle', async () => {
    const { batches, run } = recordingRun();
    const batcher = new DynamicBatcher(run, { maxBatchSize: 8, maxQueueDelayMs: 10, waitWhenIdle: true });
    const lone = batcher.submit('a', 1);
    await vi.advanceTimersByTimeAsync(9);
    expect(batches).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(batches.map((batch) => batch.jobs)).toEqual([['a']]);
    batches[0]?.finish();
    expect(await lone).toBe('done a');
  });

  it('never splits a job and packs jobs up to maxBatchSize images', async () => {
    const { batches, run } = recordingRun();
    const batcher = new DynamicBatcher(run, { maxBatchSize: 4, maxQueueDelayMs: 0, maxInFlightBatches: 1 });
    const first = batcher.submit('first', 1);
    const rest = [batcher.submit('three', 3), batcher.submit('two', 2), batcher.submit('big', 6)];
    // 'first' left alone (delay 0, nothing else queued yet); the rest wait for the one slot.
    expect(batches.map((batch) => batch.jobs)).toEqual([['first']]);
    batches[0]?.finish();
    await first;
    expect(batches.map((batch) => batch.jobs)).toEqual([['first'], ['three']]);
    batches[1]?.finish();
    await vi.advanceTimersByTimeAsync(0);
    expect(batches[2]?.jobs).toEqual(['two']);
    batches[2]?.finish();
    await vi.advanceTimersByTimeAsync(0);
    expect(batches[3]?.jobs).toEqual(['big']);
    batches[3]?.finish();
    expect(await Promise.all(rest)).toEqual(['done three', 'done two', 'done big']);
  });

  it('keeps at most maxInFlightBatches running', async () => {
    const { batches, run } = recordingRun();
    const batcher = new DynamicBatcher(run, { maxBatchSize: 1, maxQueueDelayMs: 0, maxInFlightBatches: 2 });
    const results = ['a', 'b', 'c'].map((job) => batcher.submit(job, 1));
    expect(batches).toHaveLength(2);
    expect(batcher.inFlightBatches).toBe(2);
    expect(batcher.queuedImageCount).toBe(1);
    batches[0]?.finish();
    await results[0];
    expect(batches).toHaveLength(3);
    batches.slice(1).forEach((batch) => batch.finish());
    await Promise.all(results);
  });

  it('refuses a job that would overfill the queue with UNAVAILABLE, naming maxQueueSize', async () => {
    const { batches, run } = recordingRun();
    const batcher = new DynamicBatcher(run, { maxBatchSize: 2, maxQueueDelayMs: 100, maxQueueSize: 3 });
    const queued = [batcher.submit('a', 1), batcher.submit('b', 1)];
    expect(batches).toHaveLength(1);
    const c = batcher.submit('c', 1);
    await expect(batcher.submit('d', 3)).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: 'queue: full (1 images waiting, maxQueueSize 3); retry with backoff',
    });
    await vi.advanceTimersByTimeAsync(100);
    batches.forEach((batch) => batch.finish());
    expect(await Promise.all([...queued, c])).toEqual(['done a', 'done b', 'done c']);
  });

  it('drops cancelled and expired jobs before they run', async () => {
    const { batches, run } = recordingRun();
    const batcher = new DynamicBatcher(run, { maxBatchSize: 8, maxQueueDelayMs: 50 });
    // A full batch runs: the jobs below wait for the delay.
    const busy = batcher.submit('busy', 8);
    const controller = new AbortController();
    const cancelledJob = batcher.submit('cancelled', 1, { signal: controller.signal });
    const expiredJob = batcher.submit('expired', 1, { deadline: Date.now() + 20 });
    const kept = batcher.submit('kept', 1);
    controller.abort('client went away');
    await expect(cancelledJob).rejects.toBeInstanceOf(JobDropped);
    expect(batcher.queuedImageCount).toBe(2);
    // Handle the rejection before the timers make it happen.
    const expiredRejection = expect(expiredJob).rejects.toMatchObject({ name: 'DeadlineExceeded' });
    await vi.advanceTimersByTimeAsync(50);
    await expiredRejection;
    expect(batches.map((batch) => batch.jobs)).toEqual([['busy'], ['kept']]);
    batches.forEach((batch) => batch.finish());
    expect(await Promise.all([busy, kept])).toEqual(['done busy', 'done kept']);
    await expect(batcher.submit('late', 1, { signal: controller.signal })).rejects.toMatchObject({
      name: 'AbortError',
    });
  });

  it('drops every waiting job of a shared signal when it aborts, and none that already runs', async () => {
    const { batches, run } = recordingRun();
    const batcher = new DynamicBatcher(run, { maxBatchSize: 2, maxQueueDelayMs: 50, maxInFlightBatches: 1 });
    const controller = new AbortController();
    const listeners = vi.spyOn(controller.signal, 'addEventListener');
    const { signal } = controller;
    // The first two fill a batch and run; three wait behind it.
    const jobs = ['a', 'b', 'c', 'd', 'e'].map((job) => batcher.submit(job, 1, { signal }));
    expect(batches.map((batch) => batch.jobs)).toEqual([['a', 'b']]);
    expect(batcher.queuedImageCount).toBe(3);
    // One listener while a and b waited, one for c, d and e: not one per job.
    expect(listeners).toHaveBeenCalledTimes(2);
    const rejections = jobs.slice(2).map((job) => expect(job).rejects.toMatchObject({ name: 'AbortError' }));
    controller.abort('stream cancelled by the caller');
    await Promise.all(rejections);
    expect(batcher.queuedImageCount).toBe(0);
    batches[0]?.finish();
    expect(await Promise.all(jobs.slice(0, 2))).toEqual(['done a', 'done b']);
    await vi.advanceTimersByTimeAsync(100);
    expect(batches).toHaveLength(1);
  });

  it('rejects every job of a failed batch and goes on', async () => {
    const { batches, run } = recordingRun();
    const batcher = new DynamicBatcher(run, { maxBatchSize: 2, maxQueueDelayMs: 10 });
    const failed = [batcher.submit('a', 1), batcher.submit('b', 1)];
    expect(batches.map((batch) => batch.jobs)).toEqual([['a', 'b']]);
    batches[0]?.fail(new Error('model exploded'));
    for (const job of failed) await expect(job).rejects.toThrow('model exploded');
    const next = batcher.submit('c', 1);
    await vi.advanceTimersByTimeAsync(10);
    expect(batches.map((batch) => batch.jobs)).toEqual([['a', 'b'], ['c']]);
    batches[1]?.finish();
    expect(await next).toBe('done c');
  });

  it('drains: runs what is queued at once, then refuses new jobs', async () => {
    const { batches, run } = recordingRun();
    const batcher = new DynamicBatcher(run, { maxBatchSize: 8, maxQueueDelayMs: 1000 });
    const queued = batcher.submit('a', 1);
    const drained = batcher.drain();
    expect(batches.map((batch) => batch.jobs)).toEqual([['a']]);
    await expect(batcher.submit('b', 1)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    let done = false;
    void drained.then(() => (done = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(false);
    batches[0]?.finish();
    await drained;
    expect(await queued).toBe('done a');
  });

  it('checks its options', () => {
    const { run } = recordingRun();
    expect(() => new DynamicBatcher(run, { maxBatchSize: 0 })).toThrow(
      'maxBatchSize: expected a positive integer, got 0',
    );
    expect(() => new DynamicBatcher(run, { maxQueueDelayMs: -1 })).toThrow('maxQueueDelayMs: expected a number ≥ 0');
  });
});
