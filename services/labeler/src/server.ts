import { status, type sendUnaryData, type ServerDuplexStream, type ServerUnaryCall } from '@grpc/grpc-js';
import type {
  GetStatsRequest,
  GetStatsResponse,
  IngestRequest,
  IngestResponse,
  LabelerServer,
} from '@noisystudent/proto';
import { toServiceError } from '@noisystudent/runtime';

/** The Labeler RPCs: thin handlers over the parts that do the work (docs/architecture.md §8). */
export function labelerHandlers(parts: {
  ingest(call: ServerDuplexStream<IngestRequest, IngestResponse>): void;
  stats(): Promise<GetStatsResponse>;
}): LabelerServer {
  return {
    ingest: (call) => parts.ingest(call),
    getStats(
      _call: ServerUnaryCall<GetStatsRequest, GetStatsResponse>,
      callback: sendUnaryData<GetStatsResponse>,
    ): void {
      parts.stats().then(
        (response) => callback(null, response),
        (error: unknown) => callback({ ...toServiceError(error), code: status.UNAVAILABLE }),
      );
    },
  };
}
