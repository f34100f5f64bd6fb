import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Values read when Prometheus scrapes. */
export interface MetricSources {
  queuedImages(): number;
  /** Tensors alive in the model worker. */
  tensors(): Promise<number>;
}

/** The teacher's Prometheus metrics (names prefixed `teacher_`), on a registry of its own. */
export class TeacherMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'teacher_requests_total',
    help: 'Requests by RPC and outcome (a gRPC status name, lower case).',
    labelNames: ['rpc', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly images = new Counter({
    name: 'teacher_images_total',
    help: 'Images predicted.',
    registers: [this.registry],
  });
  readonly streamReadPauses = new Counter({
    name: 'teacher_stream_read_pauses_total',
    help: 'Times a PredictStream stopped reading: too many requests unanswered (in_flight) or the caller not taking its answers (caller_not_reading).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly queueSeconds = new Histogram({
    name: 'teacher_queue_seconds',
    help: 'Time a request waited in the batcher queue.',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  readonly computeSeconds = new Histogram({
    name: 'teacher_compute_seconds',
    help: 'Time one batch took in the model worker.',
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: 'teacher_batch_size',
    help: 'Images per batch.',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });
  private sources: MetricSources = { queuedImages: () => 0, tensors: () => Promise.resolve(0) };
  readonly queuedImages: Gauge = new Gauge({
    name: 'teacher_queued_images',
    help: 'Images waiting in the batcher queue.',
    registers: [this.registry],
    collect: (): void => this.queuedImages.set(this.sources.queuedImages()),
  });
  readonly modelVersion = new Gauge({
    name: 'teacher_model_version_info',
    help: 'The model version being served (value 1, version in the label).',
    labelNames: ['version'] as const,
    registers: [this.registry],
  });
  readonly swaps = new Counter({
    name: 'teacher_model_swaps_total',
    help: 'Model versions switched to.',
    registers: [this.registry],
  });
  readonly refusedModels = new Counter({
    name: 'teacher_model_load_failures_total',
    help: 'Model versions refused (corrupt, unloadable or failing warm-up); the previous one kept serving.',
    registers: [this.registry],
  });
  readonly tensors: Gauge = new Gauge({
    name: 'teacher_tensors',
    help: 'tfjs tensors alive in the model worker.',
    registers: [this.registry],
    collect: async (): Promise<void> => this.tensors.set(await this.sources.tensors().catch(() => -1)),
  });

  /** Where the gauges read at scrape time come from. */
  observe(sources: MetricSources): void {
    this.sources = sources;
  }

  setServing(version: string): void {
    this.modelVersion.reset();
    this.modelVersion.set({ version }, 1);
  }
}
