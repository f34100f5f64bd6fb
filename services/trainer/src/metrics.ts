import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The trainer's Prometheus metrics (names prefixed `trainer_`), on a registry of its own. */
export class TrainerMetrics {
  readonly registry = new Registry();
  readonly rounds = new Counter({
    name: 'trainer_rounds_total',
    help: 'Finished rounds, by decision (promoted, rejected, failed).',
    labelNames: ['decision'] as const,
    registers: [this.registry],
  });
  readonly roundSeconds = new Histogram({
    name: 'trainer_round_seconds',
    help: 'Wall time of a round, from its start to its record.',
    buckets: [10, 30, 60, 120, 300, 600, 1200, 2400, 3600, 7200],
    registers: [this.registry],
  });
  readonly shardsSkipped = new Counter({
    name: 'trainer_shards_skipped_total',
    help: 'Messages on the shards subject skipped: not a Shard protobuf, another teacher version, or a bad shard id.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly steps = new Counter({
    name: 'trainer_training_steps_total',
    help: 'Optimizer steps taken (bootstrap teachers, students and baselines).',
    registers: [this.registry],
  });
  readonly imagesPerSecond = new Gauge({
    name: 'trainer_training_images_per_second',
    help: 'Training throughput at the last progress report.',
    registers: [this.registry],
  });
  readonly loss = new Gauge({
    name: 'trainer_training_loss',
    help: 'Mean training loss at the last progress report.',
    registers: [this.registry],
  });
  readonly examplesWaiting = new Gauge({
    name: 'trainer_examples_waiting',
    help: 'Pseudo-labeled examples of the current teacher held and not yet used by a round.',
    registers: [this.registry],
  });
  readonly shardsKept = new Gauge({
    name: 'trainer_shards_kept',
    help: 'Shards of the current teacher version kept on disk.',
    registers: [this.registry],
  });
  readonly accuracy = new Gauge({
    name: 'trainer_eval_accuracy',
    help: 'Top-1 on the eval split of the last round, by model (student, teacher).',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });
  readonly promotionConflicts = new Counter({
    name: 'trainer_promotion_conflicts_total',
    help: 'Promotions refused because the teacher pointer had moved (the round was evaluated again).',
    registers: [this.registry],
  });
}
