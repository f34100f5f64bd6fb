import { Unavailable } from '@noisystudent/core';
import { NatsError } from 'nats';

/** JetStream's error code for a failed expected-last-sequence check (JSStreamWrongLastSequenceErrF). */
const WRONG_LAST_SEQUENCE = 10071;

/** Codes of a NATS error that say "not now": the same call may succeed once the connection is back. */
const TRANSIENT_CODES = new Set([
  'TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_DRAINING',
  'CONNECTION_REFUSED',
  'CONNECTION_TIMEOUT',
  'DISCONNECT',
  // No responders: JetStream is not enabled or not reachable.
  '503',
]);

/** True when a compare-and-set publish lost: the subject was not at the expected sequence. */
export function isWrongLastSequence(error: unknown): boolean {
  if (!(error instanceof NatsError)) return false;
  return error.api_error?.err_code === WRONG_LAST_SEQUENCE || /wrong last sequence/i.test(error.message);
}

/** A transient NATS failure as `Unavailable` naming what was being done; anything else unchanged. */
export function fromNatsError(error: unknown, doing: string): unknown {
  if (error instanceof NatsError && TRANSIENT_CODES.has(error.code)) {
    return new Unavailable(`${doing}: NATS ${error.code}: ${error.message}`, { cause: error });
  }
  return error;
}
