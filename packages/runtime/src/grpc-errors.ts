import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { isNsError, type NsErrorCode } from '@noisystudent/core';

const CODES: Record<NsErrorCode, status> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  CONFLICT: status.ABORTED,
  UNAVAILABLE: status.UNAVAILABLE,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
};

/** A gRPC status and the message that goes with it. */
export interface GrpcStatus {
  code: status;
  details: string;
}

/**
 * The one mapping from anything thrown to a gRPC status (docs/architecture.md §7). Our typed errors keep their
 * message; an abort becomes CANCELLED, an error named DeadlineExceeded DEADLINE_EXCEEDED; anything else is INTERNAL, with its message, because a
 * caller debugging a failure needs more than "internal error" and our messages carry no secrets.
 */
export function toGrpcStatus(error: unknown): GrpcStatus {
  if (isNsError(error)) return { code: CODES[error.code], details: error.message };
  if (error instanceof Error && error.name === 'AbortError') return { code: status.CANCELLED, details: error.message };
  if (error instanceof Error && error.name === 'DeadlineExceeded') {
    return { code: status.DEADLINE_EXCEEDED, details: error.message };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: status.INTERNAL, details: `internal error: ${message}` };
}

/** `toGrpcStatus` as the error object a grpc-js handler passes to its callback or `emit('error')`. */
export function toServiceError(error: unknown): Partial<ServiceError> {
  const { code, details } = toGrpcStatus(error);
  return { code, details, message: details, metadata: new Metadata() };
}
