import { status, type ServerDuplexStream } from '@grpc/grpc-js';
import type { ModelInputSpec } from '@noisystudent/ml';
import type { IngestRequest, IngestResponse } from '@noisystudent/proto';
import { serveBoundedDuplex, toGrpcStatus, type Logger } from '@noisystudent/runtime';

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
 * is answered with a rejection and the stream goes on. At most `maxInFlight` images are read ahead
 * of their PubAcks, and none while the client does not take its answers (`serveBoundedDuplex`).
 * A client that cancels resends by source id: images already handed to JetStream may be stored.
 */
export function handleIngest(call: ServerDuplexStream<IngestRequest, IngestResponse>, deps: IngestDeps): void {
  const { store, inputSpec, maxInFlight, counters, log } = deps;
  serveBoundedDuplex(call, {
    maxInFlight,
    answer: async (request): Promise<IngestResponse> => {
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
    },
  });
}
