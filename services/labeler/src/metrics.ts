import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Values read when Prometheus scrapes. */
export interface MetricSources {
  /** Images of the current version's consumer not finished yet. */
  pending(): Promise<number>;
  teacherVersion(): string;
}

/** The labeler's Prometheus metrics (names prefixed `labeler_`), on a registry of its own. */
export class LabelerMetrics {
  readonly registry = new Registry();
  private sources: MetricSources = { pending: () => Promise.resolve(0), teacherVersion: () => '' };
  readonly ingested = new Counter({
    name: 'labeler_ingested_total',
    help: 'Images offered to Ingest, by outcome (stored, duplicate, rejected).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly labeled = new Counter({
    name: 'labeler_labeled_total',
    help: 'Images labeled, by teacher version and outcome (in_shard, cut_by_balancing, below_threshold, rejected).',
    labelNames: ['version', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly alreadyLabeled = new Counter({
    name: 'labeler_redelivered_already_labeled_total',
    help: 'Images that already had an outcome in the shards when this replica looked (delivered again after a lost ack, or labeled by another replica at the same time): acknowledged, no second outcome.',
    labelNames: ['version'] as const,
    registers: [this.registry],
  });
  readonly copies = new Counter({
    name: 'labeler_copies_total',
    help: 'Pseudo-labeled copies in shards, by teacher version and class.',
    labelNames: ['version', 'class'] as const,
    registers: [this.registry],
  });
  readonly shards = new Counter({
    name: 'labeler_shards_total',
    help: 'Shard messages published, by teacher version.',
    labelNames: ['version'] as const,
    registers: [this.registry],
  });
  readonly windowImages = new Histogram({
    name: 'labeler_window_images',
    help: 'Images per labeling window.',
    buckets: [1, 16, 64, 256, 512, 1024, 2048, 4096],
    registers: [this.registry],
  });
  readonly pending: Gauge = new Gauge({
    name: 'labeler_unlabeled_pending',
    help: "Images the current teacher version's consumer has not finished.",
    registers: [this.registry],
    collect: async (): Promise<void> => this.pending.set(await this.sources.pending().catch(() => -1)),
  });
  readonly teacherVersion: Gauge = new Gauge({
    name: 'labeler_teacher_version_info',
    help: 'The teacher version being labeled with (value 1, version in the label).',
    labelNames: ['version'] as const,
    registers: [this.registry],
    collect: (): void => {
      this.teacherVersion.reset();
      const version = this.sources.teacherVersion();
      if (version !== '') this.teacherVersion.set({ version }, 1);
    },
  });

  observe(sources: MetricSources): void {
    this.sources = sources;
  }
}
