import type { Worker } from 'node:worker_threads';

import { FailedPrecondition, Unavailable } from '@noisystudent/core';
import type { ModelMetadata } from '@noisystudent/proto';
import type { BackendRequest } from '@noisystudent/ml';
import { startModuleWorker } from '@noisystudent/runtime';

import type { WorkerError, WorkerReply, WorkerRequest } from './model-protocol.js';

/** A model loaded in the worker, as the main thread refers to it. */
export interface LoadedModel {
  modelId: number;
  metadata: ModelMetadata;
  sha256: string;
  /** Batch normalisations folded into the convolutions of the served copy. */
  foldedBatchNorms: number;
  /** What runs it: "native graph", or "tfjs (<why not the graph>)". */
  engine: string;
  /** Units of the model's output: the bound of top_k. */
  classCount: number;
  loadMs: number;
}

export interface Prediction {
  /** count × classes, row-major. */
  probabilities: Float32Array;
  computeMs: number;
}

export interface WorkerMemory {
  numTensors: number;
  numBytes: number;
  models: number;
}

type Pending = { resolve(reply: WorkerReply): void; reject(error: Error): void };

/**
 * The main thread's handle on the model worker: load, predict, dispose, each a promise. Requests
 * are answered in the order the worker finishes them; a worker that dies fails everything pending
 * with UNAVAILABLE and refuses what follows.
 */
export class ModelHost {
  private readonly pending = new Map<number, Pending>();
  private nextRequestId = 1;
  private failure: Error | undefined;

  private constructor(
    private readonly worker: Worker,
    /** The backend line the worker logged (`backend=wasm native=true …`). */
    readonly backend: string,
  ) {
    worker.on('message', (reply: WorkerReply) => {
      if (reply.type === 'ready') return;
      const pending = this.pending.get(reply.requestId);
      if (pending === undefined) return;
      this.pending.delete(reply.requestId);
      if (reply.type === 'failed') pending.reject(fromWorkerError(reply.error));
      else pending.resolve(reply);
    });
    const die = (error: Error): void => {
      this.failure = new Unavailable(`model worker: stopped (${error.message}); restart the service`);
      for (const pending of this.pending.values()) pending.reject(this.failure);
      this.pending.clear();
    };
    worker.on('error', die);
    worker.on('exit', (code) => die(new Error(`exit code ${code}`)));
  }

  /**
   * Starts the worker and its backend (undefined: `initBackend`'s default, NS_BACKEND else auto);
   * `nice` lowers the priority of the inference threads below the gRPC thread's (0 keeps it).
   */
  static async start(backend: BackendRequest | undefined, nice = 0): Promise<ModelHost> {
    const worker = startModuleWorker(import.meta.url, 'model-worker', { backend, nice });
    const ready = await new Promise<string>((resolve, reject) => {
      const onMessage = (reply: WorkerReply): void => {
        if (reply.type !== 'ready') return;
        worker.off('message', onMessage);
        worker.off('error', reject);
        resolve(reply.backend);
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`model worker exited with code ${code} before it was ready`)));
    });
    return new ModelHost(worker, ready);
  }

  /** Decodes (sha256 checked), builds and warms up a model; a bad artifact rejects with FAILED_PRECONDITION. */
  async load(bytes: Uint8Array, sha256: string, warmupBatchSize: number): Promise<LoadedModel> {
    const reply = await this.request({ type: 'load', requestId: 0, bytes, sha256, warmupBatchSize }, [
      bytes.buffer as ArrayBuffer,
    ]);
    if (reply.type !== 'loaded') throw new Error(`unexpected reply ${reply.type} to load`);
    const { modelId, metadata, foldedBatchNorms, engine, classCount, loadMs } = reply;
    return { modelId, metadata, sha256: reply.sha256, foldedBatchNorms, engine, classCount, loadMs };
  }

  /** `input` is count images, each height × width × channels, already preprocessed; it is transferred. */
  async predict(modelId: number, input: Float32Array, count: number): Promise<Prediction> {
    const reply = await this.request({ type: 'predict', requestId: 0, modelId, input, count }, [
      input.buffer as ArrayBuffer,
    ]);
    if (reply.type !== 'predicted') throw new Error(`unexpected reply ${reply.type} to predict`);
    return { probabilities: reply.probabilities, computeMs: reply.computeMs };
  }

  async dispose(modelId: number): Promise<void> {
    await this.request({ type: 'dispose', requestId: 0, modelId });
  }

  async memory(): Promise<WorkerMemory> {
    const reply = await this.request({ type: 'memory', requestId: 0 });
    if (reply.type !== 'memory') throw new Error(`unexpected reply ${reply.type} to memory`);
    return { numTensors: reply.numTensors, numBytes: reply.numBytes, models: reply.models };
  }

  async close(): Promise<void> {
    this.failure ??= new Unavailable('model worker: closed');
    await this.worker.terminate();
  }

  private request(message: WorkerRequest, transfer: ArrayBuffer[] = []): Promise<WorkerReply> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const requestId = this.nextRequestId++;
    return new Promise((resolve, reject) => {
      this.pending.set(requestId, { resolve, reject });
      // A buffer shared with other views (a Node Buffer pool slice) cannot be transferred: copy then.
      const movable = transfer.filter((buffer) => buffer.byteLength > 0 && !isPooled(message));
      this.worker.postMessage({ ...message, requestId }, movable);
    });
  }
}

function isPooled(message: WorkerRequest): boolean {
  const view = message.type === 'load' ? message.bytes : message.type === 'predict' ? message.input : undefined;
  return view !== undefined && (view.byteOffset !== 0 || view.byteLength !== view.buffer.byteLength);
}

function fromWorkerError(error: WorkerError): Error {
  if (error.problem !== undefined) {
    return new FailedPrecondition(`artifact: refused (${error.problem}): ${error.message}`);
  }
  const rebuilt = new Error(error.message);
  rebuilt.name = error.name;
  return rebuilt;
}
