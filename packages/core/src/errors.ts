/**
 * The small set of typed errors every part throws (docs/architecture.md §7). Each carries a closed code that
 * one function in @noisystudent/runtime maps to a gRPC status; messages start with the field at
 * fault and say what was expected: `images[3]: expected 28×28×1 uint8 or float32, got 32×32×3`.
 */
export type NsErrorCode =
  'INVALID_ARGUMENT' | 'NOT_FOUND' | 'CONFLICT' | 'UNAVAILABLE' | 'RESOURCE_EXHAUSTED' | 'FAILED_PRECONDITION';

export abstract class NsError extends Error {
  abstract readonly code: NsErrorCode;
}

/** The caller sent something malformed; retrying the same request cannot succeed. */
export class InvalidArgument extends NsError {
  override readonly name = 'InvalidArgument';
  readonly code = 'INVALID_ARGUMENT';
  /** The field at fault, as the message names it (`images[3]`). */
  readonly field: string;
  /** What was expected and what came instead: the message without the field. */
  readonly expected: string;
  constructor(field: string, expected: string, options?: ErrorOptions) {
    super(`${field}: ${expected}`, options);
    this.field = field;
    this.expected = expected;
  }
}

export class NotFound extends NsError {
  override readonly name = 'NotFound';
  readonly code = 'NOT_FOUND';
}

/** A compare-and-set lost: someone else wrote first. Re-read and decide again. */
export class Conflict extends NsError {
  override readonly name = 'Conflict';
  readonly code = 'CONFLICT';
}

/** Not now (no model yet, shutting down, a dependency down); the same request may succeed later. */
export class Unavailable extends NsError {
  override readonly name = 'Unavailable';
  readonly code = 'UNAVAILABLE';
}

/** A resource limit was hit (a message too large, a quota); a request over a documented per-request limit is InvalidArgument. */
export class ResourceExhausted extends NsError {
  override readonly name = 'ResourceExhausted';
  readonly code = 'RESOURCE_EXHAUSTED';
}

/** The system is not in a state where this can run (e.g. a corrupt artifact in the registry). */
export class FailedPrecondition extends NsError {
  override readonly name = 'FailedPrecondition';
  readonly code = 'FAILED_PRECONDITION';
}

export function isNsError(error: unknown): error is NsError {
  return error instanceof NsError;
}
