import {
  ResponderBuilder,
  ServerInterceptingCall,
  ServerListenerBuilder,
  status,
  type Metadata,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import type { Role, TokenTable } from '@noisystudent/core';

import { CALLER_METADATA_KEY } from './rate-limit.js';

/** Why a call was refused, for metrics: no or unknown token, or a token without the role. */
export type Refusal = 'unauthenticated' | 'permission_denied';

export interface AuthOptions {
  tokens: TokenTable;
  /** RPC name (e.g. `Predict`) → the roles that may call it (none: `admin` only; `admin` may call anything). Calls not listed (health, reflection) are open. */
  methodRoles: ReadonlyMap<string, readonly Role[]>;
  onRefused?: (method: string, refusal: Refusal, caller: string | undefined) => void;
}

/** The bearer token of a call's metadata (`authorization: Bearer <token>`), or undefined. */
function bearer(metadata: Metadata): string | undefined {
  const value = metadata.get('authorization')[0];
  if (typeof value !== 'string') return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(value.trim());
  return match?.[1];
}

/**
 * A grpc-js server interceptor that checks every call to a listed method: a missing or unknown
 * token is UNAUTHENTICATED, a known token without one of the method's roles PERMISSION_DENIED.
 * Tokens never appear in the answers or in what `onRefused` is told (only the caller's name).
 */
export function authInterceptor(options: AuthOptions): ServerInterceptor {
  return (descriptor, call) => {
    const method = descriptor.path.slice(descriptor.path.lastIndexOf('/') + 1);
    const allowed = options.methodRoles.get(method);
    if (allowed === undefined) return new ServerInterceptingCall(call);
    const listener = new ServerListenerBuilder()
      .withOnReceiveMetadata((metadata, next) => {
        const token = bearer(metadata);
        const entry = token === undefined ? undefined : options.tokens.authenticate(token);
        const expired = entry?.expires !== undefined && entry.expires.getTime() <= Date.now();
        if (entry === undefined || expired) {
          options.onRefused?.(method, 'unauthenticated', entry?.name);
          call.sendStatus({
            code: status.UNAUTHENTICATED,
            details:
              token === undefined
                ? `${method}: no token; send metadata "authorization: Bearer <token>"`
                : entry === undefined
                  ? `${method}: unknown token`
                  : `${method}: token "${entry.name}" expired at ${entry.expires?.toISOString() ?? ''}`,
          });
          return;
        }
        if (!entry.roles.has('admin') && !allowed.some((role) => entry.roles.has(role))) {
          options.onRefused?.(method, 'permission_denied', entry.name);
          call.sendStatus({
            code: status.PERMISSION_DENIED,
            details: `${method}: token "${entry.name}" has roles ${[...entry.roles].join(', ')}; it needs ${[...allowed, 'admin'].join(' or ')}`,
          });
          return;
        }
        // Who the call is from, for the rate limiter (a value the caller sent is replaced).
        metadata.set(CALLER_METADATA_KEY, entry.name);
        next(metadata);
      })
      .build();
    const responder = new ResponderBuilder().withStart((next) => next(listener)).build();
    return new ServerInterceptingCall(call, responder);
  };
}
