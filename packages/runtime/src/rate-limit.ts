import {
  Metadata,
  ResponderBuilder,
  ServerInterceptingCall,
  ServerListenerBuilder,
  status,
  type ServerInterceptor,
} from '@grpc/grpc-js';

/**
 * A token bucket: `ratePerSecond` units a second up to `burst` saved. `take(n)` spends n units
 * when there are that many and says how long to wait otherwise.
 */
export class TokenBucket {
  private units: number;
  private updated: number;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.units = burst;
    this.updated = now();
  }

  /** Spends `count` units and returns 0, or returns the ms until `count` will be there (spending nothing). */
  take(count: number): number {
    const now = this.now();
    this.units = Math.min(this.burst, this.units + ((now - this.updated) / 1000) * this.ratePerSecond);
    this.updated = now;
    if (this.units >= count) {
      this.units -= count;
      return 0;
    }
    return Math.ceil(((count - this.units) / this.ratePerSecond) * 1000);
  }
}

/** The metadata key the auth interceptor sets to the token's name (any value a caller sent is replaced). */
export const CALLER_METADATA_KEY = 'x-ns-caller';

export interface RateLimitOptions {
  /** Images (or stream requests) a second each caller may send. */
  ratePerSecond: number;
  /** How many a caller may send at once after a pause. */
  burst: number;
  /**
   * RPC name → how its messages count: unary RPCs are refused with RESOURCE_EXHAUSTED and a
   * retry hint when over the limit; streams are read more slowly instead (backpressure).
   */
  methods: ReadonlyMap<string, { kind: 'unary' | 'stream'; units: (message: unknown) => number }>;
  /** Callers are told apart by their token's name (with tokens), else by their address. */
  byToken: boolean;
  onLimited?: (method: string, caller: string) => void;
  now?: () => number;
}

/** Buckets per caller, each forgotten after a minute unused. */
class Buckets {
  private readonly buckets = new Map<string, { bucket: TokenBucket; used: number }>();

  constructor(private readonly options: RateLimitOptions) {}

  of(caller: string): TokenBucket {
    const now = Date.now();
    let entry = this.buckets.get(caller);
    if (entry === undefined) {
      if (this.buckets.size > 10_000) this.sweep(now);
      entry = { bucket: new TokenBucket(this.options.ratePerSecond, this.options.burst, this.options.now), used: now };
      this.buckets.set(caller, entry);
    }
    entry.used = now;
    return entry.bucket;
  }

  private sweep(now: number): void {
    for (const [caller, entry] of this.buckets) if (now - entry.used > 60_000) this.buckets.delete(caller);
  }
}

/**
 * Per-caller rate limits on the RPCs of `methods` (docs/architecture.md §7). A unary call over
 * the limit is answered RESOURCE_EXHAUSTED, saying when to retry (also in the trailing metadata
 * `retry-after-ms`); a stream is not refused but read no faster than the limit.
 */
export function rateLimitInterceptor(options: RateLimitOptions): ServerInterceptor {
  const buckets = new Buckets(options);
  return (descriptor, call) => {
    const method = descriptor.path.slice(descriptor.path.lastIndexOf('/') + 1);
    const limited = options.methods.get(method);
    if (limited === undefined) return new ServerInterceptingCall(call);
    let caller = '';
    // Messages are passed on in order, each once its units are there; the half-close after them.
    let queue: Promise<void> = Promise.resolve();
    let ended = false;
    const listener = new ServerListenerBuilder()
      .withOnReceiveMetadata((metadata, next) => {
        const name = options.byToken ? metadata.get(CALLER_METADATA_KEY)[0] : undefined;
        caller = typeof name === 'string' ? `token ${name}` : `address ${peerHost(call.getPeer())}`;
        next(metadata);
      })
      .withOnReceiveMessage((message, next) => {
        const units = Math.max(1, limited.units(message));
        if (limited.kind === 'unary') {
          const waitMs = buckets.of(caller).take(units);
          if (waitMs === 0) {
            next(message);
            return;
          }
          options.onLimited?.(method, caller);
          ended = true;
          const trailer = new Metadata();
          trailer.set('retry-after-ms', String(waitMs));
          call.sendStatus({
            code: status.RESOURCE_EXHAUSTED,
            details: `${method}: ${caller} may send ${options.ratePerSecond} images/s (bursts of ${options.burst}); retry in ${(waitMs / 1000).toFixed(2)} s`,
            metadata: trailer,
          });
          return;
        }
        queue = queue.then(async () => {
          for (;;) {
            const waitMs = buckets.of(caller).take(units);
            if (waitMs === 0 || ended) break;
            options.onLimited?.(method, caller);
            await new Promise((resolve) => setTimeout(resolve, waitMs));
          }
          if (!ended) next(message);
        });
      })
      .withOnReceiveHalfClose((next) => {
        queue = queue.then(() => {
          if (!ended) next();
        });
      })
      .withOnCancel(() => {
        ended = true;
      })
      .build();
    const responder = new ResponderBuilder().withStart((next) => next(listener)).build();
    return new ServerInterceptingCall(call, responder);
  };
}

/** `ipv4:127.0.0.1:53422` or `[::1]:53422` → the host part. */
function peerHost(peer: string): string {
  const address = peer.replace(/^ipv[46]:/, '');
  const bracketed = /^\[([^\]]+)\]/.exec(address);
  if (bracketed !== null) return bracketed[1] ?? address;
  const colon = address.lastIndexOf(':');
  return colon > 0 && address.indexOf(':') === colon ? address.slice(0, colon) : address;
}
