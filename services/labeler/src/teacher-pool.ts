import {
  connectivityState,
  credentials,
  Metadata,
  status,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientDuplexStream,
  type StatusObject,
} from '@grpc/grpc-js';
import { InvalidArgument, Unavailable } from '@noisystudent/core';
import { TeacherClient, type Image, type PredictStreamRequest, type PredictStreamResponse } from '@noisystudent/proto';
import type { Logger } from '@noisystudent/runtime';

/** What the teacher said about one image. */
export type TeacherAnswer =
  | { kind: 'prediction'; probabilities: Float32Array; version: string }
  /** The teacher refused this image (INVALID_ARGUMENT and the like): an outcome of the image, not of the pool. */
  | { kind: 'rejected'; code: number; reason: string; version: string };

export interface TeacherPoolOptions {
  /** Requests unanswered across the pool; `predict()` waits for a free slot beyond it (backpressure). @default 512 */
  maxInFlight?: number;
  /**
   * PredictStream calls per address. A `dns:///` address spreads them round-robin over its
   * replicas, one replica per call: give it at least as many as it has replicas. @default 2
   */
  streamsPerAddress?: number;
  /**
   * Pause before reopening a stream that ended or failed, and before resending a request the
   * teacher answered UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED or CANCELLED.
   * Requests pending on a stream that broke go at once to another open stream (or wait for one). @default 200
   */
  retryDelayMs?: number;
  /** Stream failures at warn, retries at debug. @default no logging */
  log?: Logger;
  /** TLS towards the teachers. @default plaintext */
  credentials?: ChannelCredentials;
  /** The bearer token sent on every PredictStream (a token with role predict), for teachers started with tokens. */
  token?: string;
}

/** Answer error codes that say "not now" (no model yet, queue full, shutting down): it may succeed later. */
const TRANSIENT_CODES: ReadonlySet<number> = new Set([
  status.UNAVAILABLE,
  status.RESOURCE_EXHAUSTED,
  status.DEADLINE_EXCEEDED,
  status.ABORTED,
  status.CANCELLED,
]);

/** One `predict()` call, from admission until its answer. It sits in exactly one place at a time. */
interface PoolRequest {
  readonly image: Image;
  readonly callerId: string | undefined;
  resolve(answer: TeacherAnswer): void;
  reject(error: Error): void;
}

type Call = ClientDuplexStream<PredictStreamRequest, PredictStreamResponse>;

/** One opened PredictStream call and the requests sent on it, by their stream-level id. */
interface OpenedStream {
  readonly call: Call;
  readonly pending: Map<string, PoolRequest>;
  /** Ended or failed: its pending requests have moved on and late answers are ignored. */
  done: boolean;
}

/** A teacher address: one channel, its streams, and whether the channel is connected. */
interface Endpoint {
  readonly address: string;
  readonly client: TeacherClient;
  ready: boolean;
  readonly lanes: Lane[];
}

/**
 * A place for one long-lived stream of an endpoint. `idle`: may open when the endpoint is ready;
 * `open`: takes requests; `draining`: half-closed, its pending answers still count; `waiting`:
 * the retry delay after its stream ended.
 */
interface Lane {
  readonly endpoint: Endpoint;
  state: 'idle' | 'open' | 'draining' | 'waiting';
  stream: OpenedStream | undefined;
  /** Until then (ms since the epoch) the lane answered "not now": other lanes go first. */
  coolUntil: number;
  reopenTimer: NodeJS.Timeout | undefined;
}

/**
 * The labeler's client to the teacher replicas: long-lived PredictStream calls to every address,
 * requests spread over the open streams (least in flight first), answers matched by a
 * stream-level id. A request never fails for a transient reason: when its stream breaks it is
 * resent on another one, and when the teacher answers "not now" it is resent after the retry
 * delay, for as long as it takes. Each `predict()` resolves exactly once; an answer arriving
 * from a stream already given up is ignored.
 */
export class TeacherPool {
  private readonly endpoints: Endpoint[];
  private readonly lanes: Lane[] = [];
  private readonly maxInFlight: number;
  private readonly retryDelayMs: number;
  private readonly log: Logger | undefined;
  /** Admitted requests no stream can take yet (none open). */
  private readonly backlog: PoolRequest[] = [];
  /** Calls beyond `maxInFlight`, not admitted yet. */
  private readonly waitingForSlot: PoolRequest[] = [];
  private readonly retries = new Map<NodeJS.Timeout, PoolRequest>();
  private readonly streamWaiters: Array<{ count: number; resolve(): void; reject(error: Error): void }> = [];
  private admitted = 0;
  private nextStreamId = 0;
  private cursor = 0;
  private closed = false;
  private readonly token: string | undefined;

  private constructor(addresses: string[], streamsPerAddress: number, options: TeacherPoolOptions) {
    this.maxInFlight = options.maxInFlight ?? 512;
    this.retryDelayMs = options.retryDelayMs ?? 200;
    this.log = options.log;
    this.token = options.token;
    this.endpoints = addresses.map((address) => {
      const endpoint: Endpoint = {
        address,
        client: new TeacherClient(
          address,
          options.credentials ?? credentials.createInsecure(),
          channelOptions(address),
        ),
        ready: false,
        lanes: [],
      };
      for (let index = 0; index < streamsPerAddress; index++) {
        const lane: Lane = { endpoint, state: 'idle', stream: undefined, coolUntil: 0, reopenTimer: undefined };
        endpoint.lanes.push(lane);
        this.lanes.push(lane);
      }
      return endpoint;
    });
  }

  /** Connects to every address (`127.0.0.1:50051`, `dns:///teacher.ns.svc:50051`); streams open as each answers. */
  static connect(addresses: string[], options: TeacherPoolOptions = {}): TeacherPool {
    if (addresses.length === 0)
      throw new InvalidArgument('addresses', 'expected at least one teacher address, got none');
    const streamsPerAddress = options.streamsPerAddress ?? 2;
    checkInteger('maxInFlight', options.maxInFlight, 1);
    checkInteger('streamsPerAddress', streamsPerAddress, 1);
    checkInteger('retryDelayMs', options.retryDelayMs, 0);
    const pool = new TeacherPool(addresses, streamsPerAddress, options);
    for (const endpoint of pool.endpoints) pool.watch(endpoint);
    return pool;
  }

  /** Requests admitted and not answered yet (at most `maxInFlight`). */
  get inFlight(): number {
    return this.admitted;
  }

  /** Streams that take requests now. */
  get openStreams(): number {
    return this.lanes.filter((lane) => lane.state === 'open').length;
  }

  /** Resolves once at least `count` streams are open; rejects if the pool closes first. */
  waitForStreams(count = 1): Promise<void> {
    if (this.closed) return Promise.reject(closedError());
    if (this.openStreams >= count) return Promise.resolve();
    return new Promise((resolve, reject) => this.streamWaiters.push({ count, resolve, reject }));
  }

  /**
   * The teacher's answer for one image. `id` (e.g. the image's source id) prefixes the
   * stream-level request id, which shows in the teacher's logs. Waits while `maxInFlight`
   * requests are unanswered; retries transient failures forever; rejects only once the pool is closed.
   */
  predict(image: Image, id?: string): Promise<TeacherAnswer> {
    if (this.closed) return Promise.reject(closedError());
    return new Promise((resolve, reject) => {
      const request: PoolRequest = { image, callerId: id, resolve, reject };
      if (this.admitted < this.maxInFlight) this.admit(request);
      else this.waitingForSlot.push(request);
    });
  }

  /** Rejects every unanswered and waiting call, cancels the streams and closes the channels. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    const error = closedError();
    const orphans = [...this.waitingForSlot.splice(0), ...this.backlog.splice(0), ...this.retries.values()];
    for (const timer of this.retries.keys()) clearTimeout(timer);
    this.retries.clear();
    for (const lane of this.lanes) {
      clearTimeout(lane.reopenTimer);
      const stream = lane.stream;
      if (stream !== undefined) {
        stream.done = true;
        orphans.push(...stream.pending.values());
        stream.pending.clear();
        stream.call.cancel();
      }
      lane.stream = undefined;
      lane.state = 'waiting';
    }
    this.admitted = 0;
    for (const waiter of this.streamWaiters.splice(0)) waiter.reject(error);
    for (const request of orphans) request.reject(error);
    for (const endpoint of this.endpoints) endpoint.client.close();
    return Promise.resolve();
  }

  private admit(request: PoolRequest): void {
    this.admitted++;
    this.dispatch(request);
  }

  private settle(request: PoolRequest, answer: TeacherAnswer): void {
    this.admitted--;
    request.resolve(answer);
    const next = this.waitingForSlot.shift();
    if (next !== undefined) this.admit(next);
  }

  /** Sends the request on the open stream with the fewest pending (lanes answering "not now" last), or backlogs it. */
  private dispatch(request: PoolRequest): void {
    const lane = this.pickLane();
    const stream = lane?.stream;
    if (stream === undefined) {
      this.backlog.push(request);
      return;
    }
    const sequence = this.nextStreamId++;
    const id = request.callerId === undefined ? String(sequence) : `${request.callerId}#${sequence}`;
    stream.pending.set(id, request);
    stream.call.write({ id, image: request.image, topK: 0 });
  }

  private pickLane(): Lane | undefined {
    const now = Date.now();
    let best: Lane | undefined;
    let bestScore = Infinity;
    // Starting where the last pick left off spreads ties over every lane.
    this.cursor = (this.cursor + 1) % this.lanes.length;
    for (let offset = 0; offset < this.lanes.length; offset++) {
      const lane = this.lanes[(this.cursor + offset) % this.lanes.length];
      if (lane === undefined || lane.state !== 'open' || lane.stream === undefined) continue;
      const score = lane.stream.pending.size + (lane.coolUntil > now ? this.maxInFlight + 1 : 0);
      if (score < bestScore) {
        best = lane;
        bestScore = score;
      }
    }
    return best;
  }

  /** Follows the channel's connectivity for as long as the pool lives (and keeps it connecting). */
  private watch(endpoint: Endpoint): void {
    if (this.closed) return;
    const channel = endpoint.client.getChannel();
    const state = channel.getConnectivityState(true);
    this.setReady(endpoint, state === connectivityState.READY);
    channel.watchConnectivityState(state, Infinity, () => this.watch(endpoint));
  }

  private setReady(endpoint: Endpoint, ready: boolean): void {
    if (endpoint.ready === ready) return;
    endpoint.ready = ready;
    this.log?.info({ address: endpoint.address, ready }, ready ? 'teacher connected' : 'teacher connection lost');
    for (const lane of endpoint.lanes) {
      if (ready && lane.state === 'idle') this.openLane(lane);
      // The connection went away or the server said GOAWAY (shutting down): send it nothing more,
      // half-close so a graceful server can finish what it holds; whatever it does not answer is resent.
      if (!ready && lane.state === 'open' && lane.stream !== undefined) {
        lane.state = 'draining';
        lane.stream.call.end();
      }
    }
  }

  private openLane(lane: Lane): void {
    const metadata = new Metadata();
    if (this.token !== undefined) metadata.set('authorization', `Bearer ${this.token}`);
    const call = lane.endpoint.client.predictStream(metadata);
    const stream: OpenedStream = { call, pending: new Map(), done: false };
    lane.stream = stream;
    lane.state = 'open';
    lane.coolUntil = 0;
    call.on('data', (answer: PredictStreamResponse) => this.onAnswer(lane, stream, answer));
    // A failed call emits 'error' and then 'status'; the status is handled below.
    call.on('error', () => undefined);
    call.on('status', (callStatus: StatusObject) => {
      // On OK the answers may still sit in the readable buffer: wait until they are all read.
      if (callStatus.code === status.OK && !call.readableEnded)
        call.once('end', () => this.onStreamDone(lane, stream, callStatus));
      else this.onStreamDone(lane, stream, callStatus);
    });
    const open = this.openStreams;
    for (const waiter of this.streamWaiters.filter((candidate) => candidate.count <= open)) {
      this.streamWaiters.splice(this.streamWaiters.indexOf(waiter), 1);
      waiter.resolve();
    }
    for (const request of this.backlog.splice(0)) this.dispatch(request);
  }

  private onAnswer(lane: Lane, stream: OpenedStream, answer: PredictStreamResponse): void {
    const request = stream.pending.get(answer.id);
    if (stream.done || request === undefined) {
      this.log?.debug({ address: lane.endpoint.address, id: answer.id }, 'ignored an answer to no pending request');
      return;
    }
    stream.pending.delete(answer.id);
    const result = answer.result;
    const version = answer.modelVersion;
    if (result?.$case === 'prediction') {
      this.settle(request, {
        kind: 'prediction',
        probabilities: Float32Array.from(result.value.probabilities),
        version,
      });
    } else if (result?.$case === 'error' && TRANSIENT_CODES.has(result.value.code)) {
      lane.coolUntil = Date.now() + this.retryDelayMs;
      this.log?.debug(
        { address: lane.endpoint.address, id: answer.id, code: result.value.code, reason: result.value.message },
        'teacher answered not now; retrying',
      );
      this.retryLater(request);
    } else if (result?.$case === 'error') {
      this.settle(request, { kind: 'rejected', code: result.value.code, reason: result.value.message, version });
    } else {
      const reason = `teacher answered request ${answer.id} with neither a prediction nor an error`;
      this.settle(request, { kind: 'rejected', code: status.INTERNAL, reason, version });
    }
  }

  private retryLater(request: PoolRequest): void {
    const timer = setTimeout(() => {
      this.retries.delete(timer);
      this.dispatch(request);
    }, this.retryDelayMs);
    this.retries.set(timer, request);
  }

  /** The stream ended (server finished, failed, connection lost): resend what it held, reopen after the delay. */
  private onStreamDone(lane: Lane, stream: OpenedStream, callStatus: StatusObject): void {
    if (stream.done) return;
    stream.done = true;
    const orphans = [...stream.pending.values()];
    stream.pending.clear();
    if (lane.stream === stream) {
      lane.stream = undefined;
      lane.state = 'waiting';
      lane.reopenTimer = setTimeout(() => {
        lane.reopenTimer = undefined;
        lane.state = 'idle';
        if (lane.endpoint.ready) this.openLane(lane);
      }, this.retryDelayMs);
    }
    const details = { address: lane.endpoint.address, code: callStatus.code, reason: callStatus.details };
    if (callStatus.code !== status.OK || orphans.length > 0)
      this.log?.warn({ ...details, resent: orphans.length }, 'teacher stream broke; resending its requests');
    else this.log?.debug(details, 'teacher stream ended');
    for (const request of orphans) this.dispatch(request);
  }
}

function channelOptions(address: string): ChannelOptions {
  return {
    // Ping every 20 s, so a peer that vanished without closing the connection (no FIN, no RST) is
    // noticed within ~25 s. The teacher (grpc-js) takes any rate; a server that answers
    // too_many_pings makes grpc-js double the interval.
    'grpc.keepalive_time_ms': 20_000,
    'grpc.keepalive_timeout_ms': 5_000,
    'grpc.keepalive_permit_without_calls': 1,
    // A replica that comes back is found within 10 s (grpc-js backs off up to 120 s by default).
    'grpc.max_reconnect_backoff_ms': 10_000,
    ...(address.startsWith('dns:')
      ? { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) }
      : {}),
  };
}

function checkInteger(field: string, value: number | undefined, min: number): void {
  if (value !== undefined && !(Number.isInteger(value) && value >= min))
    throw new InvalidArgument(field, `expected an integer ≥ ${min}, got ${value}`);
}

function closedError(): Unavailable {
  return new Unavailable('teacher pool: closed; no more predictions');
}
