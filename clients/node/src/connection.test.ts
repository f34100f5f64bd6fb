import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';

import { ClientError, InputError } from './errors.js';
import { connectLabeler } from './labeler.js';
import { connectTeacher } from './teacher.js';
import { connectTrainer } from './trainer.js';
import { freePort as closedPort } from '../../../test/support/free-port.js';

async function failure(promise: Promise<unknown>): Promise<ClientError> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  if (error instanceof ClientError) return error;
  throw new Error(`expected a ClientError, got ${String(error)}`);
}

describe('a call to a port nobody listens on', () => {
  it('fails with UNAVAILABLE and a message that says what to do', async () => {
    const port = await closedPort();
    const teacher = connectTeacher({ address: `127.0.0.1:${port}`, retry: false });
    try {
      const error = await failure(teacher.modelInfo());
      expect(error).toMatchObject({
        code: status.UNAVAILABLE,
        codeName: 'UNAVAILABLE',
        service: 'teacher',
        address: `127.0.0.1:${port}`,
        method: 'GetModelInfo',
        attempts: 1,
      });
      expect(error.message).toBe(
        `no teacher at 127.0.0.1:${port} (UNAVAILABLE: connect ECONNREFUSED 127.0.0.1:${port}): ` +
          'is it running? (nsctl up starts the local stack)',
      );
    } finally {
      teacher.close();
    }
  });

  it('is retried up to the attempts, and says so', async () => {
    const port = await closedPort();
    const retries: number[] = [];
    const labeler = connectLabeler({
      address: `127.0.0.1:${port}`,
      retry: { attempts: 3, initialBackoffMs: 10, maxBackoffMs: 20, onRetry: ({ attempt }) => retries.push(attempt) },
    });
    try {
      const error = await failure(labeler.stats());
      expect(retries).toEqual([1, 2]);
      expect(error.attempts).toBe(3);
      expect(error.message).toMatch(
        /^no labeler at 127\.0\.0\.1:\d+ \(UNAVAILABLE: connect ECONNREFUSED .*; 3 attempts\): is it running\?/,
      );
    } finally {
      labeler.close();
    }
  });

  it('fails the streams the same way', async () => {
    const port = await closedPort();
    const labeler = connectLabeler({ address: `127.0.0.1:${port}`, retry: false });
    try {
      const error = await failure(
        labeler.ingest([{ sourceId: 'a', image: { shape: [1, 1, 1], dtype: 'uint8', data: [0] } }]),
      );
      expect(error).toMatchObject({ code: status.UNAVAILABLE, service: 'labeler', method: 'Ingest' });
      expect(error.message).toMatch(/^no labeler at 127\.0\.0\.1:\d+ \(UNAVAILABLE: .*\): is it running\?/);
    } finally {
      labeler.close();
    }
  });
});

describe('a client', () => {
  it('refuses calls once closed, and calls cancelled by their signal', async () => {
    const port = await closedPort();
    const trainer = connectTrainer({ address: `127.0.0.1:${port}`, retry: { attempts: 50, initialBackoffMs: 50 } });
    const controller = new AbortController();
    const cancelled = failure(trainer.status({ signal: controller.signal }));
    controller.abort();
    expect(await cancelled).toMatchObject({ code: status.CANCELLED, details: 'cancelled by the caller' });
    trainer.close();
    expect(await failure(trainer.rounds())).toMatchObject({ code: status.CANCELLED, details: 'the client was closed' });
  });

  it('checks its arguments before any call', async () => {
    const teacher = connectTeacher({ address: `127.0.0.1:${await closedPort()}`, retry: false });
    try {
      await expect(teacher.predict([])).rejects.toThrow(
        new InputError('images', 'expected at least one image, got none'),
      );
      await expect(teacher.predict('/nonexistent/x.png', { topK: -1 })).rejects.toThrow(
        /^topK: expected an integer ≥ 0/,
      );
    } finally {
      teacher.close();
    }
  });
});
