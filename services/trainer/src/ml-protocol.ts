import type { EvaluationMetrics, TrainingConfig } from '@noisystudent/proto';
import type { BackendRequest, ExperimentConfig, HeldOutAccuracy, Recipe } from '@noisystudent/ml';

/** Where the trainer's labeled, eval and test images come from. */
export type DatasetSpec =
  | { kind: 'fashion-mnist'; dir?: string }
  | { kind: 'cifar10'; dir: string }
  | { kind: 'folder'; dir: string; testDir: string; height: number; width: number; channels: 1 | 3 };

/** What the ML worker starts with (workerData). */
export interface MlWorkerInit {
  backend?: BackendRequest;
  dataset: DatasetSpec;
  config: ExperimentConfig;
  /** `--allowed-roots`, opened (real paths), and how refusals name the setting: every file read must lie in them. */
  allowedRoots: { roots: string[]; setting: string };
}

/** A model's evaluation as the worker reports it: eval decides, test is reported. */
export interface HeldOutMetrics {
  eval: EvaluationMetrics;
  test: EvaluationMetrics;
}

export interface StudentRequest {
  round: number;
  /** Shard files of the round, in the order they are read. */
  shardFiles: string[];
  /** The version the student's artifact is named (used if it is promoted). */
  version: string;
  parentVersion: string;
  width: number;
  checkpoint: { path: string; everySteps: number };
  /** Balance the round's examples across all its shards (mean per class) instead of the labeler's per-window copies. */
  rebalance: boolean;
  /** Also train the supervised recipes at the student's budget (cached per budget). */
  baselines: boolean;
}

export type MlRequest =
  | { type: 'bootstrap'; requestId: number; version: string; checkpointDir: string; everySteps: number }
  | { type: 'evaluate'; requestId: number; bytes: Uint8Array }
  | { type: 'param-count'; requestId: number; width: number }
  | {
      type: 'import-layers';
      requestId: number;
      folder: string;
      version: string;
      classNames: string[];
      scale: number;
      offset: number;
    }
  | ({ type: 'train-student'; requestId: number } & StudentRequest)
  | { type: 'stop' };

export interface WorkerError {
  name: string;
  message: string;
}

/** What the worker's data looks like, sent once it is loaded. */
export interface DataFacts {
  dataset: string;
  classNames: string[];
  inputShape: [number, number, number];
  labeled: number;
  eval: number;
  test: number;
  backend: string;
}

export type MlReply =
  | ({ type: 'ready' } & DataFacts)
  | { type: 'init-failed'; error: WorkerError }
  | {
      type: 'progress';
      requestId: number;
      label: string;
      step: number;
      steps: number;
      loss: number;
      imagesPerSecond: number;
    }
  | ({
      type: 'bootstrapped';
      requestId: number;
      bytes: Uint8Array;
      recipe: Recipe;
      candidates: Record<Recipe, HeldOutAccuracy>;
      steps: number;
    } & HeldOutMetrics)
  | ({
      type: 'evaluated';
      requestId: number;
      /** Trainable and non-trainable weights of the model. */
      params: number;
      inputShape: number[];
      classCount: number;
    } & HeldOutMetrics)
  | { type: 'imported'; requestId: number; bytes: Uint8Array }
  | { type: 'param-count'; requestId: number; params: number }
  | ({
      type: 'student';
      requestId: number;
      bytes: Uint8Array;
      steps: number;
      /** How the student was trained (steps, batches, learning rate, noise, seed). */
      training: TrainingConfig;
      /** The step training resumed from: its checkpoint's, or 0 when it started over. */
      resumedFrom: number;
      shards: number;
      /** Pseudo-labeled examples trained on, counting copies, and per class. */
      examples: number;
      perClass: number[];
      skipped: number;
      supervisedTest?: EvaluationMetrics;
      supervisedNoisedTest?: EvaluationMetrics;
    } & HeldOutMetrics)
  | { type: 'stopped'; requestId: number; step: number }
  | { type: 'failed'; requestId: number; error: WorkerError };
