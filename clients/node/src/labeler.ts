import { status } from '@grpc/grpc-js';
import { LabelerService, type GetStatsResponse, type IngestRequest, type IngestResponse } from '@noisystudent/proto';

import { ServiceConnection } from './connection.js';
import { InputError } from './errors.js';
import { checkHealth, type HealthOptions } from './health-check.js';
import type { HealthStatus } from './health.js';
import { toImage, type ImageInput } from './images.js';
import { IngestTally, type IngestProgress, type IngestSummary } from './ingest-tally.js';
import { callMetadata, deadlineAt, type CallOptions, type ConnectOptions } from './options.js';
import { windowedStream } from './windowed-stream.js';

export const LABELER_ADDRESS = '127.0.0.1:50052';
export const LABELER_SERVICE = 'noisystudent.v1.Labeler';

/** An unlabeled image and the producer's id for it (letters, digits and -_.:/, at most 200 characters). */
export interface IngestItem {
  sourceId: string;
  image: ImageInput;
}

export interface IngestOptions extends CallOptions {
  /** Images sent and not yet answered (stored or rejected), at most. @default 256 */
  window?: number;
  /** Told after every answer. */
  onProgress?: (progress: IngestProgress) => void;
}

/**
 * GetStats as it comes: counts since the labeler started, per teacher version, and the stream's
 * state. The 64-bit counts are plain numbers (the protos are generated with forceLong=number).
 */
export type LabelerStats = GetStatsResponse;

/** A client of the Labeler service; `close()` when done. */
export class LabelerConnection {
  private readonly connection: ServiceConnection;

  constructor(options?: string | readonly string[] | ConnectOptions) {
    this.connection = new ServiceConnection('labeler', options, LABELER_ADDRESS);
  }

  get address(): string {
    return this.connection.address;
  }

  /**
   * Ingest: every item through one stream, at most `window` unanswered at a time, resolving to the
   * accounting once every image is answered. If the stream fails with UNAVAILABLE (the labeler
   * restarting) it reconnects with backoff and resends what was unanswered by source id; the
   * labeler stores a source id once, so nothing is lost or counted twice.
   * @throws InputError for an item that cannot be sent (when it is reached)
   * @throws ClientError when the stream fails for good
   */
  async ingest(
    items: Iterable<IngestItem> | AsyncIterable<IngestItem>,
    options: IngestOptions = {},
  ): Promise<IngestSummary> {
    const started = performance.now();
    const seconds = (): number => (performance.now() - started) / 1000;
    const deadlineMs = options.deadlineMs ?? this.connection.settings.streamDeadlineMs;
    const deadline = deadlineAt(deadlineMs);
    const metadata = callMetadata(this.connection.settings.metadata, options.metadata);
    const tally = new IngestTally();
    const answers = windowedStream<IngestItem, IngestRequest, IngestResponse>({
      open: () => this.connection.openStream(LabelerService.ingest, deadline, metadata),
      items,
      toRequest: async (item, index) => {
        if (typeof item?.sourceId !== 'string') {
          throw new InputError(`items[${index}].sourceId`, `expected a string, got ${typeof item?.sourceId}`);
        }
        return { sourceId: item.sourceId, image: await toImage(item.image, `items[${index}].image`) };
      },
      requestId: (request) => request.sourceId,
      responseId: (response) => response.sourceId,
      window: options.window ?? 256,
      onSend: (_request, resent) => tally.sent(resent),
      retry: this.connection.settings.retry,
      // An image NATS did not confirm (a node lost, a leader being elected) is sent again later.
      retryAnswer: (response) =>
        response.result?.$case === 'rejected' && response.result.value.code === status.UNAVAILABLE,
      deadline,
      signal: options.signal,
      context: { service: 'labeler', address: this.address, method: 'Ingest', deadlineMs },
    });
    for await (const { response, resent } of answers) {
      tally.answered(response, resent);
      options.onProgress?.(tally.progress(seconds()));
    }
    return tally.summary(seconds());
  }

  /** GetStats. Retried on UNAVAILABLE. @throws ClientError */
  stats(options: CallOptions = {}): Promise<LabelerStats> {
    return this.connection.unary(LabelerService.getStats, {}, options);
  }

  /** grpc.health.v1 Check of the Labeler. @throws ClientError */
  health(options: HealthOptions = {}): Promise<HealthStatus> {
    return checkHealth(this.connection, LABELER_SERVICE, options);
  }

  close(): void {
    this.connection.close();
  }
}

/** A client of the Labeler at `options` (an address, or ConnectOptions). Connects on the first call. */
export function connectLabeler(options?: string | readonly string[] | ConnectOptions): LabelerConnection {
  return new LabelerConnection(options);
}
