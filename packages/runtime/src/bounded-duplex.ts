import { setMaxListeners } from 'node:events';

import type { ServerDuplexStream } from '@grpc/grpc-js';

import { toServiceError } from './grpc-errors.js';

export interface BoundedDuplexOptions<Request, Response> {
  /**
   * Requests read and not yet answered before reading pauses; reading resumes at half, so the
   * server reads in runs rather than one message per answer. At least 1.
   */
  maxInFlight: number;
  /**
   * One request's answer. It must resolve, never reject: per-request errors travel in the
   * answer (docs/architecture.md §4). `signal` aborts when the caller cancels the stream.
   */
  answer(request: Request, signal: AbortSignal): Promise<Response>;
  /** Told each time reading pauses or resumes, and why: for metrics and tests. */
  onFlow?: (event: 'paused' | 'resumed', state: BoundedDuplexState) => void;
}

/** What one stream holds at a moment. */
export interface BoundedDuplexState {
  /** Requests read and not yet answered. */
  inFlight: number;
  /** True while the caller is not taking answers (the last write returned false, no 'drain' yet). */
  writeBlocked: boolean;
}

/**
 * Serves a bidirectional stream with bounded memory (docs/architecture.md §8: bounded both ways). Reading
 * pauses while `maxInFlight` requests are unanswered or while the caller is not reading its
 * answers (a write returned false), and resumes once answers drain and no more than half are in
 * flight; HTTP/2 flow control then slows a fast or stalled caller instead of this process
 * buffering without bound. Answers go out in the order they finish. The stream ends once the
 * caller has ended its side and every request read has been answered.
 */
export function serveBoundedDuplex<Request, Response>(
  call: ServerDuplexStream<Request, Response>,
  options: BoundedDuplexOptions<Request, Response>,
): void {
  const { maxInFlight, answer, onFlow } = options;
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
    throw new RangeError(`maxInFlight: expected a positive integer, got ${maxInFlight}`);
  }
  const resumeAt = Math.floor(maxInFlight / 2);
  const controller = new AbortController();
  // Every request in flight listens to this one signal.
  setMaxListeners(0, controller.signal);
  const state: BoundedDuplexState = { inFlight: 0, writeBlocked: false };
  let paused = false;
  let callerDone = false;
  let finished = false;
  const closed = (): boolean => finished || call.cancelled || call.destroyed;

  const adjustReading = (): void => {
    if (closed()) return;
    if (!paused && (state.inFlight >= maxInFlight || state.writeBlocked)) {
      paused = true;
      call.pause();
      onFlow?.('paused', { ...state });
    } else if (paused && !state.writeBlocked && state.inFlight <= resumeAt) {
      paused = false;
      call.resume();
      onFlow?.('resumed', { ...state });
    }
  };

  const send = (response: Response): void => {
    if (closed()) return;
    if (!call.write(response) && !state.writeBlocked) {
      state.writeBlocked = true;
      call.once('drain', () => {
        state.writeBlocked = false;
        adjustReading();
      });
    }
  };

  const finishIfDone = (): void => {
    if (callerDone && state.inFlight === 0 && !closed()) {
      finished = true;
      call.end();
    }
  };

  call.on('data', (request: Request) => {
    state.inFlight++;
    adjustReading();
    answer(request, controller.signal).then(
      (response) => {
        state.inFlight--;
        send(response);
        adjustReading();
        finishIfDone();
      },
      (error: unknown) => {
        // `answer` broke its contract: end the stream with the error rather than hang it.
        state.inFlight--;
        if (closed()) return;
        finished = true;
        call.emit('error', toServiceError(error));
      },
    );
  });
  call.on('end', () => {
    callerDone = true;
    finishIfDone();
  });
  call.on('cancelled', () => controller.abort('stream cancelled by the caller'));
  // A stream torn down by the transport reports here; what was in flight is dropped with it.
  call.on('error', () => controller.abort('stream failed'));
}
