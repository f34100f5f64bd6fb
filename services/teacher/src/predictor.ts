import { inputSize, modelInputPixels, tensorInputPixels, writePixels, type ModelInputPixels } from '@noisystudent/ml';
import { InvalidArgument, Unavailable } from '@noisystudent/core';
import type { Image } from '@noisystudent/proto';

import { DynamicBatcher, type BatcherOptions, type QueuedJob } from './batcher.js';
import type { ModelHost } from './model-host.js';
import type { ModelSlot, ServingModel } from './model-slot.js';

/** Images checked (and decoded) for one model's input, waiting for a batch. */
interface PredictJob {
  pixels: ModelInputPixels[];
  /** The input the pixels were checked for: a batch runs only jobs of its model's input. */
  inputKey: string;
}

type JobResult = { rows: Float32Array[]; model: ServingModel } | { error: Error };

export interface PredictResult {
  /** One probability row per image, in request order. */
  rows: Float32Array[];
  /** The model that computed every row. */
  model: ServingModel;
}

/** What the predictor reports for metrics. */
export interface PredictorObserver {
  batch(images: number, computeMs: number): void;
  queued(ms: number): void;
}

export interface PredictOptions {
  signal?: AbortSignal;
  /** Milliseconds since the epoch. */
  deadline?: number;
  /** How the images are named in errors. @default 'images' */
  field?: string;
}

/**
 * Requests in, probabilities out: images are checked and preprocessed for the serving model on
 * the main thread (sharp decodes on libuv's pool), queued in the one dynamic batcher, and each
 * batch runs in the model worker on the model current when it starts.
 */
export class Predictor {
  readonly batcher: DynamicBatcher<PredictJob, JobResult>;

  constructor(
    private readonly host: ModelHost,
    private readonly slot: ModelSlot,
    options: Partial<BatcherOptions>,
    private readonly observer: PredictorObserver = { batch: () => undefined, queued: () => undefined },
  ) {
    this.batcher = new DynamicBatcher((jobs) => this.runBatch(jobs), options);
  }

  async predict(images: ReadonlyArray<Image | undefined>, options: PredictOptions = {}): Promise<PredictResult> {
    const field = options.field ?? 'images';
    const model = this.slot.require();
    // Tensors are checked at once and kept as they came (normalized straight into the batch's
    // input); encoded images are decoded on libuv's pool, all at the same time. A request of
    // tensors only waits for no promise.
    const checked = images.map((image, index): ModelInputPixels | Promise<ModelInputPixels> => {
      const name = images.length === 1 && field !== 'images' ? field : `${field}[${index}]`;
      if (image?.content?.$case === 'encoded') return modelInputPixels(image, model.inputSpec, name);
      try {
        return tensorInputPixels(image, model.inputSpec, name);
      } catch (error) {
        return Promise.reject(error);
      }
    });
    const pixels = checked.some((entry) => entry instanceof Promise)
      ? await Promise.all(checked)
      : (checked as ModelInputPixels[]);
    const job = { pixels, inputKey: model.inputKey };
    const result = await this.batcher.submit(job, images.length, {
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.deadline === undefined ? {} : { deadline: options.deadline }),
    });
    if ('error' in result) throw result.error;
    return result;
  }

  private async runBatch(jobs: Array<QueuedJob<PredictJob>>): Promise<JobResult[]> {
    const model = this.slot.acquire();
    try {
      for (const queued of jobs) this.observer.queued(queued.queuedMs);
      const runnable = jobs.filter((queued) => queued.job.inputKey === model.inputKey);
      const total = runnable.reduce((sum, queued) => sum + queued.job.pixels.length, 0);
      const results = new Map<QueuedJob<PredictJob>, JobResult>();
      if (total > 0) {
        const size = inputSize(model.inputSpec);
        const input = new Float32Array(total * size);
        let offset = 0;
        for (const queued of runnable) {
          for (const pixels of queued.job.pixels) {
            writePixels(pixels, model.inputSpec, input, offset);
            offset += size;
          }
        }
        const { probabilities, computeMs } = await this.host.predict(model.modelId, input, total);
        this.observer.batch(total, computeMs);
        const classes = probabilities.length / total;
        let row = 0;
        for (const queued of runnable) {
          const rows: Float32Array[] = [];
          for (let image = 0; image < queued.job.pixels.length; image++, row++) {
            rows.push(probabilities.slice(row * classes, (row + 1) * classes));
          }
          results.set(queued, { rows, model });
        }
      }
      return jobs.map(
        (queued) =>
          results.get(queued) ?? {
            error: new Unavailable(
              `teacher: the model changed its input to ${model.version}'s while the request waited; send it again`,
            ),
          },
      );
    } finally {
      this.slot.release(model);
    }
  }
}

/** `images` must hold 1 … `max` images. */
export function checkImageCount(count: number, max: number, field = 'images'): void {
  if (count === 0) throw new InvalidArgument(field, 'expected at least one image, got none');
  if (count > max) throw new InvalidArgument(field, `expected at most ${max} images per request, got ${count}`);
}
