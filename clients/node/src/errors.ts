import { status, type Metadata } from '@grpc/grpc-js';

/** The service a client talks to, as error messages name it. */
export type ServiceName = 'teacher' | 'labeler' | 'trainer';

/** Where a failed call went: enough for a message that says what to do. */
export interface CallContext {
  service: ServiceName;
  /** The address as the caller gave it. */
  address: string;
  /** The RPC's name, e.g. 'Predict'. */
  method: string;
  /** Calls made, retries included. @default 1 */
  attempts?: number;
  /** The call's deadline in ms, for DEADLINE_EXCEEDED messages. */
  deadlineMs?: number;
}

/** The name of a gRPC status code: 14 → 'UNAVAILABLE'. */
export function codeName(code: number): string {
  return (status as unknown as Record<number, string | undefined>)[code] ?? `CODE_${code}`;
}

/** True for an error carrying the gRPC UNAVAILABLE code: the only one the clients retry. */
export function isUnavailable(error: unknown): boolean {
  return grpcCode(error) === status.UNAVAILABLE;
}

/**
 * A call that failed: its gRPC status code, the service and address it went to, and a message
 * that says what to do (`no teacher at 127.0.0.1:50051 (UNAVAILABLE: connect ECONNREFUSED
 * 127.0.0.1:50051): is it running? (nsctl up starts the local stack)`). Every error the clients'
 * calls reject with is one, except `InputError` for bad arguments caught before any call.
 */
export class ClientError extends Error {
  override readonly name = 'ClientError';
  /** The gRPC status code number (`status` of @grpc/grpc-js). */
  readonly code: number;
  /** The code's name: 'UNAVAILABLE', 'INVALID_ARGUMENT', … */
  readonly codeName: string;
  readonly service: ServiceName;
  readonly address: string;
  readonly method: string;
  /** The status details as the server (or grpc-js, for transport failures) sent them. */
  readonly details: string;
  /** Calls made, retries included. */
  readonly attempts: number;
  /** The trailing metadata of the failed call, when there was one. */
  readonly metadata: Metadata | undefined;

  constructor(
    code: number,
    details: string,
    context: CallContext,
    options: { cause?: unknown; metadata?: Metadata | undefined } = {},
  ) {
    super(describe(code, details, context), { cause: options.cause });
    this.code = code;
    this.codeName = codeName(code);
    this.service = context.service;
    this.address = context.address;
    this.method = context.method;
    this.details = details;
    this.attempts = context.attempts ?? 1;
    this.metadata = options.metadata;
  }

  /**
   * Anything a call threw as a ClientError: a grpc-js ServiceError keeps its code and details, an
   * abort becomes CANCELLED, anything else UNKNOWN with its message.
   */
  static from(error: unknown, context: CallContext): ClientError {
    if (error instanceof ClientError) {
      return error.attempts === (context.attempts ?? 1)
        ? error
        : new ClientError(
            error.code,
            error.details,
            { ...context, method: error.method },
            {
              cause: error.cause,
              metadata: error.metadata,
            },
          );
    }
    const code = grpcCode(error);
    if (code !== undefined) {
      const details = (error as { details?: unknown }).details;
      const metadata = (error as { metadata?: Metadata }).metadata;
      return new ClientError(code, typeof details === 'string' ? details : String(error), context, {
        cause: error,
        metadata,
      });
    }
    if (error instanceof Error && error.name === 'AbortError') {
      return new ClientError(status.CANCELLED, 'cancelled by the caller', context, { cause: error });
    }
    return new ClientError(status.UNKNOWN, error instanceof Error ? error.message : String(error), context, {
      cause: error,
    });
  }
}

/**
 * An argument that cannot be sent, caught before any call: `field` names it, the message says
 * what was expected (`images[1].data: expected 784 values (28×28×1 uint8), got 783`).
 */
export class InputError extends Error {
  override readonly name = 'InputError';
  /** Bad input is what the server would answer INVALID_ARGUMENT to. */
  readonly code = status.INVALID_ARGUMENT;

  constructor(
    readonly field: string,
    expected: string,
    options: { cause?: unknown } = {},
  ) {
    super(`${field}: ${expected}`, options);
  }
}

function grpcCode(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'number' && Number.isInteger(code) && code >= 0 && code <= 16 ? code : undefined;
}

/** grpc-js's wording of a failure to reach the server at all, as opposed to a server saying UNAVAILABLE. */
const TRANSPORT_FAILURE =
  /^(No connection established|Connection dropped|Name resolution failed|DNS resolution failed|failed to connect|Failed to connect|connect E|getaddrinfo|cannot resolve)/;

/** Transport details that say the TLS handshake (not the connection) failed. */
const TLS_FAILURE = /certificate|\bSSL\b|\btls|ERR_TLS_|wrong version number|handshake/i;

function describe(code: number, details: string, context: CallContext): string {
  const { service, address, method, attempts = 1, deadlineMs } = context;
  const tried = attempts > 1 ? `; ${attempts} attempts` : '';
  switch (code) {
    case status.UNAVAILABLE: {
      const reason = shortTransportDetails(details);
      if (TLS_FAILURE.test(details)) {
        return `no ${service} at ${address} (UNAVAILABLE: ${reason}${tried}): the TLS handshake failed: check the tls option (rootCerts for the server's CA, certChain and privateKey where the server asks for a client certificate, serverNameOverride for the name in its certificate)`;
      }
      if (TRANSPORT_FAILURE.test(details)) {
        return `no ${service} at ${address} (UNAVAILABLE: ${reason}${tried}): is it running? (nsctl up starts the local stack)`;
      }
      return `${service} at ${address} is unavailable (UNAVAILABLE: ${reason}${tried}): try again shortly`;
    }
    case status.DEADLINE_EXCEEDED: {
      const within = deadlineMs === undefined ? 'before its deadline' : `within ${deadlineMs} ms`;
      return (
        `${service} ${method} at ${address}: no answer ${within} (DEADLINE_EXCEEDED${tried}): ` +
        `give the call a longer deadlineMs, or check whether the ${service} is overloaded`
      );
    }
    case status.UNIMPLEMENTED:
      return `${service} ${method} at ${address}: not implemented there (UNIMPLEMENTED: ${details}): is that address a ${service}?`;
    default:
      return `${service} ${method} at ${address}: ${codeName(code)}: ${details}`;
  }
}

/** "No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:50051. Resolution note: " → "connect ECONNREFUSED 127.0.0.1:50051" */
function shortTransportDetails(details: string): string {
  return details
    .replace(/^No connection established\. Last error: /, '')
    .replace(/^Error: /, '')
    .replace(/\.?\s*Resolution note:.*$/s, '')
    .replace(/\s*\(\d{4}-\d\d-\d\dT[^)]*\)$/, '')
    .trim();
}
