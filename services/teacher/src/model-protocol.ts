import type { ModelMetadata } from '@noisystudent/proto';

/** Messages from the service's main thread to its model worker (model-worker.ts). */
export type WorkerRequest =
  | { type: 'load'; requestId: number; bytes: Uint8Array; sha256: string; warmupBatchSize: number }
  | { type: 'predict'; requestId: number; modelId: number; input: Float32Array; count: number }
  | { type: 'dispose'; requestId: number; modelId: number }
  | { type: 'memory'; requestId: number };

/** An error crossing the thread boundary: enough to rebuild a typed one on the other side. */
export interface WorkerError {
  name: string;
  message: string;
  /** ModelArtifactError's problem, when it is one. */
  problem?: string;
}

export type WorkerReply =
  | { type: 'ready'; backend: string }
  | {
      type: 'loaded';
      requestId: number;
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
  | { type: 'predicted'; requestId: number; probabilities: Float32Array; computeMs: number }
  | { type: 'disposed'; requestId: number }
  | { type: 'memory'; requestId: number; numTensors: number; numBytes: number; models: number }
  | { type: 'failed'; requestId: number; error: WorkerError };
