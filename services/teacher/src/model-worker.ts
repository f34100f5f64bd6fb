// The model's thread (docs/architecture.md §3): tfjs, its backend and every loaded model live here, so
// inference never blocks the gRPC event loop. Requests arrive one message at a time; predictions
// run synchronously in arrival order.
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';

import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  decodeModelArtifact,
  describeBackend,
  foldBatchNorm,
  initBackend,
  ModelArtifactError,
  nativeInferenceGraph,
  type BackendRequest,
  type InferenceGraph,
} from '@noisystudent/ml';

import type { WorkerError, WorkerReply, WorkerRequest } from './model-protocol.js';

const port = parentPort;
if (port === null) throw new Error('model-worker.ts runs as a worker thread');

/** A served model: its folded tfjs copy, and the native graph that runs it when it compiles. */
interface Served {
  model: tfl.LayersModel;
  graph?: InferenceGraph;
}

const models = new Map<number, Served>();
let nextModelId = 1;

function reply(message: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(message, transfer);
}

function toWorkerError(error: unknown): WorkerError {
  if (error instanceof ModelArtifactError) return { name: error.name, message: error.message, problem: error.problem };
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { name: 'Error', message: String(error) };
}

async function handle(request: WorkerRequest): Promise<void> {
  switch (request.type) {
    case 'load': {
      const started = performance.now();
      const { model: trained, metadata, sha256 } = await decodeModelArtifact(request.bytes, request.sha256);
      // Served as an inference copy: batch normalisation folded into the convolutions, ReLU fused
      // (one pass over each activation instead of three); the trained layers model is not kept.
      const { model, folded } = await foldBatchNorm(trained).finally(() => trained.dispose());
      const foldedBatchNorms = folded.batchNorms.length;
      let classCount: number;
      // The whole model as one native call when its layers allow (oneDNN, blocked layouts, fused
      // residuals): the same numbers as the tfjs copy, checked on the warm-up batch below.
      // Only where the model would otherwise run on our CPU kernels: TensorFlow's own backend (a
      // GPU among them) runs the tfjs model itself.
      const native: ReturnType<typeof nativeInferenceGraph> = choice.native
        ? nativeInferenceGraph(model)
        : { ok: false, reason: `the ${choice.backend} backend runs it` };
      let graph = native.ok ? native.graph : undefined;
      let engine = native.ok ? 'native graph' : `tfjs (${native.reason})`;
      try {
        // Warm-up: the first predict at a batch size builds kernels and buffers; do it before serving.
        const [height = 1, width = 1, channels = 1] = metadata.inputShape;
        const batch = request.warmupBatchSize;
        const probe = Float32Array.from(
          { length: batch * height * width * channels },
          (_, index) => (index % 251) / 251,
        );
        const expected = tf.tidy(() => {
          const output = model.predictOnBatch(tf.tensor4d(probe, [batch, height, width, channels])) as tf.Tensor;
          return { values: output.dataSync() as Float32Array, width: output.shape[1] ?? 0 };
        });
        classCount = expected.width;
        const difference = graph === undefined ? 0 : largestDifference(graph.run(probe, batch), expected.values);
        if (!(difference <= 1e-4)) {
          // Never serve numbers the model would not give: a graph that disagrees is dropped.
          graph = undefined;
          engine = `tfjs (the native graph differed by ${difference} on the warm-up batch)`;
        }
      } catch (error) {
        model.dispose();
        throw error;
      }
      const modelId = nextModelId++;
      models.set(modelId, { model, ...(graph === undefined ? {} : { graph }) });
      reply({
        type: 'loaded',
        requestId: request.requestId,
        modelId,
        metadata,
        sha256,
        foldedBatchNorms,
        engine,
        classCount,
        loadMs: performance.now() - started,
      });
      return;
    }
    case 'predict': {
      const served = models.get(request.modelId);
      if (served === undefined) throw new Error(`model ${request.modelId} is not loaded`);
      const started = performance.now();
      const { model, graph } = served;
      const [, height, width, channels] = model.inputs[0]?.shape ?? [];
      const probabilities =
        graph?.run(request.input, request.count) ??
        tf.tidy(() => {
          const input = tf.tensor4d(request.input, [request.count, height ?? 1, width ?? 1, channels ?? 1]);
          return (model.predictOnBatch(input) as tf.Tensor).dataSync() as Float32Array;
        });
      reply(
        { type: 'predicted', requestId: request.requestId, probabilities, computeMs: performance.now() - started },
        [probabilities.buffer as ArrayBuffer],
      );
      return;
    }
    case 'dispose': {
      models.get(request.modelId)?.model.dispose();
      models.delete(request.modelId);
      reply({ type: 'disposed', requestId: request.requestId });
      return;
    }
    case 'memory': {
      const memory = tf.memory();
      reply({
        type: 'memory',
        requestId: request.requestId,
        numTensors: memory.numTensors,
        numBytes: memory.numBytes,
        models: models.size,
      });
      return;
    }
  }
}

/** The largest difference between two outputs (NaN when one is not a number or the lengths differ). */
function largestDifference(actual: Float32Array, expected: Float32Array): number {
  if (actual.length !== expected.length) return Number.NaN;
  let worst = 0;
  for (let index = 0; index < expected.length; index++) {
    const difference = Math.abs((actual[index] ?? Number.NaN) - (expected[index] ?? 0));
    worst = Number.isNaN(difference) ? Number.NaN : Math.max(worst, difference);
    if (Number.isNaN(worst)) return worst;
  }
  return worst;
}

/**
 * Lowers this thread's scheduling priority (Linux: a thread's nice value is its own, and the
 * OpenMP threads the kernels start from here inherit it), so the gRPC thread runs first whenever
 * both want a core: inference takes what the event loop leaves, not the other way round.
 */
function lowerPriority(nice: number): string {
  if (nice === 0) return 'normal priority';
  try {
    const threadId = Number(readlinkSync('/proc/thread-self').split('/').pop());
    setPriority(threadId, nice);
    return `nice ${nice}`;
  } catch (error) {
    return `normal priority (could not lower it: ${error instanceof Error ? error.message : String(error)})`;
  }
}

const { backend, nice } = workerData as { backend: BackendRequest | undefined; nice: number };
const priority = lowerPriority(nice);
const choice = await initBackend({ request: backend, log: () => undefined });
port.on('message', (request: WorkerRequest) => {
  handle(request).catch((error: unknown) =>
    reply({ type: 'failed', requestId: request.requestId, error: toWorkerError(error) }),
  );
});
reply({ type: 'ready', backend: `${describeBackend(choice)} priority=${priority}` });
