import { Client, status, type ClientDuplexStream, type Metadata } from '@grpc/grpc-js';

import { channelTarget, type HostLookup } from './address.js';
import { ClientError, InputError, isUnavailable, type ServiceName } from './errors.js';
import {
  callMetadata,
  channelOptionsFor,
  checkDeadline,
  connectionSettings,
  deadlineAt,
  type CallOptions,
  type ConnectionSettings,
  type ConnectOptions,
} from './options.js';
import { withRetry } from './retry.js';

/** A unary RPC as ts-proto's service definitions describe it (`TeacherService.predict`, …). */
export interface UnaryMethod<Request, Response> {
  path: string;
  requestSerialize(value: Request): Buffer;
  responseDeserialize(value: Buffer): Response;
}

/** A bidirectional streaming RPC as ts-proto's service definitions describe it. */
export type StreamMethod<Request, Response> = UnaryMethod<Request, Response>;

/** The RPC's name in a method path: '/noisystudent.v1.Teacher/Predict' → 'Predict'. */
export function methodName(method: { path: string }): string {
  return method.path.slice(method.path.lastIndexOf('/') + 1);
}

/**
 * One service's channel and what every call on it shares: deadlines, retries, metadata, and
 * errors as ClientError. The channel is made on the first call (a list of host names is resolved
 * then), and made again on a later call if resolving failed.
 */
export class ServiceConnection {
  readonly settings: ConnectionSettings;
  private client: Promise<Client> | undefined;
  private closed = false;

  constructor(
    readonly service: ServiceName,
    options: string | readonly string[] | ConnectOptions | undefined,
    defaultAddress: string,
    private readonly hostLookup?: HostLookup,
  ) {
    this.settings = connectionSettings(options, defaultAddress);
  }

  get address(): string {
    return this.settings.displayAddress;
  }

  /**
   * One unary call, retried on UNAVAILABLE by the connection's policy within its deadline: every
   * unary RPC of these services is idempotent (predictions, reports, health).
   * @throws ClientError
   */
  async unary<Request, Response>(
    method: UnaryMethod<Request, Response>,
    request: Request,
    options: CallOptions = {},
  ): Promise<Response> {
    const deadlineMs = checkDeadline(options.deadlineMs ?? this.settings.deadlineMs, 'deadlineMs');
    const deadline = deadlineAt(deadlineMs);
    const metadata = callMetadata(this.settings.metadata, options.metadata);
    const name = methodName(method);
    let attempts = 0;
    try {
      return await withRetry(
        async () => {
          attempts++;
          const client = await this.channel(name);
          return await new Promise<Response>((resolve, reject) => {
            const call = client.makeUnaryRequest(
              method.path,
              method.requestSerialize,
              method.responseDeserialize,
              request,
              metadata.clone(),
              { deadline },
              (error, response) => {
                options.signal?.removeEventListener('abort', cancel);
                if (error !== null) reject(error);
                else if (response === undefined) reject(new Error(`${name}: the server sent no response`));
                else resolve(response);
              },
            );
            const cancel = (): void => call.cancel();
            if (options.signal?.aborted === true) cancel();
            else options.signal?.addEventListener('abort', cancel, { once: true });
          });
        },
        {
          policy: this.settings.retry,
          deadline,
          method: name,
          retryable: isUnavailable,
          signal: options.signal,
        },
      );
    } catch (error) {
      if (error instanceof InputError) throw error;
      const context = { service: this.service, address: this.address, method: name, attempts, deadlineMs };
      if (options.signal?.aborted === true && !(error instanceof ClientError)) {
        throw new ClientError(status.CANCELLED, 'cancelled by the caller', context, { cause: error });
      }
      throw ClientError.from(error, context);
    }
  }

  /**
   * Opens one bidirectional stream with the connection's metadata and the given deadline.
   * @throws ClientError (UNAVAILABLE) when a host name of the address does not resolve
   */
  async openStream<Request, Response>(
    method: StreamMethod<Request, Response>,
    deadline: number,
    metadata: Metadata,
  ): Promise<ClientDuplexStream<Request, Response>> {
    const client = await this.channel(methodName(method));
    return client.makeBidiStreamRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      metadata.clone(),
      { deadline },
    );
  }

  close(): void {
    this.closed = true;
    void this.client?.then(
      (client) => client.close(),
      () => undefined,
    );
  }

  private channel(method: string): Promise<Client> {
    if (this.closed) {
      return Promise.reject(
        new ClientError(status.CANCELLED, 'the client was closed', {
          service: this.service,
          address: this.address,
          method,
        }),
      );
    }
    this.client ??= (async () => {
      try {
        const { target, roundRobin } = await channelTarget(this.settings.address, this.hostLookup);
        return new Client(target, this.settings.credentials, channelOptionsFor(this.settings, roundRobin));
      } catch (error) {
        this.client = undefined;
        if (!(error instanceof Error) || !('code' in error) || typeof error.code !== 'string') throw error;
        // A name that does not resolve is a service that cannot be reached (yet): UNAVAILABLE, retried.
        throw new ClientError(status.UNAVAILABLE, error.message, {
          service: this.service,
          address: this.address,
          method,
        });
      }
    })();
    return this.client;
  }
}
