import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import type {
  GetStatusRequest,
  GetStatusResponse,
  ListRoundsRequest,
  ListRoundsResponse,
  RoundRecord,
  TrainerServer,
} from '@noisystudent/proto';

/** The Trainer RPCs: thin handlers over what the trainer reports (docs/architecture.md §8). */
export function trainerHandlers(parts: { status(): GetStatusResponse; rounds(): RoundRecord[] }): TrainerServer {
  return {
    getStatus(
      _call: ServerUnaryCall<GetStatusRequest, GetStatusResponse>,
      callback: sendUnaryData<GetStatusResponse>,
    ): void {
      callback(null, parts.status());
    },
    listRounds(
      call: ServerUnaryCall<ListRoundsRequest, ListRoundsResponse>,
      callback: sendUnaryData<ListRoundsResponse>,
    ): void {
      const newestFirst = parts.rounds().reverse();
      const limit = call.request.limit;
      callback(null, { rounds: limit > 0 ? newestFirst.slice(0, limit) : newestFirst });
    },
  };
}
