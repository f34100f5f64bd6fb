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
  type BackendRequest,
} from '@noisystudent/ml';

import type { WorkerError, WorkerReply, WorkerRequest } from './model-protocol.js';

const port = parentPort;
if (port === null) throw new Error('model-worker.ts runs as a worker thread');

const models = new Map<number, tfl.LayersModel>();
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
      try {
        // Warm-up: the first predict at a batch size builds kernels and buffers; do it before serving.
        const [height, width, channels] = metadata.inputShape;
        classCount = tf.tidy(() => {
          const zeros = tf.zeros([request.warmupBatchSize, height ?? 1, width ?? 1, channels ?? 1]);
          const output = model.predictOnBatch(zeros) as tf.Tensor;
          output.dataSync();
          return output.shape[1] ?? 0;
        });
      } catch (error) {
        model.dispose();
        throw error;
      }
      const modelId = nextModelId++;
      models.set(modelId, model);
      reply({
        type: 'loaded',
        requestId: request.requestId,
        modelId,
        metadata,
        sha256,
        foldedBatchNorms,
        classCount,
        loadMs: performance.now() - started,
      });
      return;
    }
    case 'predict': {
      const model = models.get(request.modelId);
      if (model === undefined) throw new Error(`model ${request.modelId} is not loaded`);
      const started = performance.now();
      const [, height, width, channels] = model.inputs[0]?.shape ?? [];
      const probabilities = tf.tidy(() => {
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
      models.get(request.modelId)?.dispose();
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
