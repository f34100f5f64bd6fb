import { status, type ServerDuplexStream } from '@grpc/grpc-js';
import type { ModelInputSpec } from '@noisystudent/ml';
import type { IngestRequest, IngestResponse } from '@noisystudent/proto';
import { toGrpcStatus, type Logger } from '@noisystudent/runtime';

import type { UnlabeledStore } from './ingest.js';

/** Outcomes of Ingest, for metrics and GetStats. */
export interface IngestCounters {
  /** An image was acknowledged as stored; `duplicate` when its source id was already stored. */
  stored(duplicate: boolean): void;
  /** An image was refused; `code` is the gRPC status code number sent back. */
  rejected(code: number): void;
}

export interface IngestDeps {
  store: Pick<UnlabeledStore, 'store'>;
  /** The serving teacher's input, to check images against; undefined before there is a teacher. */
  inputSpec(): ModelInputSpec | undefined;
  /** Images one Ingest stream may have awaiting their PubAck before the server stops reading it (≥ 1; config checks). */
  maxInFlight: number;
  counters: IngestCounters;
  log: Logger;
}

/**
 * The bidirectional Ingest RPC: one answer per request, in the order storage finishes. A bad image
 * is answered with a rejection and the stream goes on. The server reads at most `maxInFlight`
 * images ahead of their PubAcks, and stops reading while the client does not take its answers,
 * so a fast client is slowed down by HTTP/2 flow control instead of being buffered here.
 */
export function handleIngest(call: ServerDuplexStream<IngestRequest, IngestResponse>, deps: IngestDeps): void {
  const { store, inputSpec, maxInFlight, counters, log } = deps;
  // Resuming at half the limit, not one below it, reads in runs instead of one message per PubAck.
  const resumeAt = Math.floor(maxInFlight / 2);
  let awaiting = 0;
  let paused = false;
  let answersBlocked = false;
  let clientDone = false;
  let finished = false;
  const closed = (): boolean => finished || call.cancelled || call.destroyed;

  const adjustReading = (): void => {
    if (closed()) return;
    if (!paused && (awaiting >= maxInFlight || answersBlocked)) {
      paused = true;
      call.pause();
    } else if (paused && !answersBlocked && awaiting <= resumeAt) {
      paused = false;
      call.resume();
    }
  };

  const send = (response: IngestResponse): void => {
    if (closed()) return;
    if (!call.write(response) && !answersBlocked) {
      answersBlocked = true;
      call.once('drain', () => {
        answersBlocked = false;
        adjustReading();
      });
    }
  };

  const finishIfDone = (): void => {
    if (clientDone && awaiting === 0 && !closed()) {
      finished = true;
      call.end();
    }
  };

  const answer = async (request: IngestRequest): Promise<IngestResponse> => {
    try {
      const { sequence, duplicate } = await store.store(request, inputSpec());
      counters.stored(duplicate);
      return { sourceId: request.sourceId, result: { $case: 'stored', value: { sequence, duplicate } } };
    } catch (error) {
      const { code, details } = toGrpcStatus(error);
      counters.rejected(code);
      if (code === status.INTERNAL) log.error({ err: error, sourceId: request.sourceId }, 'ingest failed');
      // Per image only at debug: with NATS down every image fails, and the counters carry the rate.
      else log.debug({ sourceId: request.sourceId, code, reason: details }, 'image rejected');
      return { sourceId: request.sourceId, result: { $case: 'rejected', value: { code, reason: details } } };
    }
  };

  call.on('data', (request: IngestRequest) => {
    awaiting++;
    adjustReading();
    void answer(request).then((response) => {
      awaiting--;
      send(response);
      adjustReading();
      finishIfDone();
    });
  });
  call.on('end', () => {
    clientDone = true;
    finishIfDone();
  });
  // Images already handed to JetStream may still be stored; a client that cancelled resends them by id.
  call.on('cancelled', () => log.debug({ awaiting }, 'Ingest cancelled by the client'));
  call.on('error', (error) => log.debug({ err: error }, 'Ingest ended with an error'));
}
