import {
  ResponderBuilder,
  ServerInterceptingCall,
  ServerListenerBuilder,
  status,
  type ServerInterceptor,
  type ServiceDefinition,
} from '@grpc/grpc-js';

/** What a request that did not decode becomes, in place of the message. */
class UndecodableRequest {
  constructor(
    readonly bytes: number,
    readonly reason: string,
  ) {}
}

/**
 * `definition` with every request decoder made total: bytes that are not the request's protobuf
 * become an `UndecodableRequest` for `badFrameInterceptor` to answer, where grpc-js would answer
 * INTERNAL ("Error deserializing request") as for a fault of the server.
 */
export function withTotalDecoders(definition: ServiceDefinition): ServiceDefinition {
  return Object.fromEntries(
    Object.entries(definition).map(([name, method]) => [
      name,
      {
        ...method,
        requestDeserialize: (bytes: Buffer): unknown => {
          try {
            return method.requestDeserialize(bytes);
          } catch (error) {
            return new UndecodableRequest(bytes.length, error instanceof Error ? error.message : String(error));
          }
        },
      },
    ]),
  ) as ServiceDefinition;
}

/** Answers a request that did not decode INVALID_ARGUMENT, naming what was expected; the service keeps serving. */
export function badFrameInterceptor(): ServerInterceptor {
  return (descriptor, call) => {
    const method = descriptor.path.slice(descriptor.path.lastIndexOf('/') + 1);
    let refused = false;
    const listener = new ServerListenerBuilder()
      .withOnReceiveMessage((message, next) => {
        if (refused) return;
        if (message instanceof UndecodableRequest) {
          refused = true;
          call.sendStatus({
            code: status.INVALID_ARGUMENT,
            details: `request: expected a ${method} request protobuf, got ${message.bytes} bytes that did not decode (${message.reason})`,
          });
          return;
        }
        next(message);
      })
      .withOnReceiveHalfClose((next) => {
        if (!refused) next();
      })
      .build();
    const responder = new ResponderBuilder().withStart((next) => next(listener)).build();
    return new ServerInterceptingCall(call, responder);
  };
}
