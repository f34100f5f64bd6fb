export { ShardCollector, type CollectedShards, type HeldShard, type ShardCollectorOptions } from './shard-collector.js';
export { writeFileDurably } from './durable-file.js';
export { checkRoundTrigger, roundDue, type Holding, type RoundDue, type RoundTrigger } from './round-trigger.js';
export {
  datasetSpec,
  experimentConfig,
  roundTrigger,
  TRAINER_ENV_PREFIX,
  trainerConfig,
  trainerConfigSchema,
  type TrainerConfig,
} from './config.js';
export { startTrainer, TRAINER_SERVICE_NAME, type Trainer } from './trainer.js';
export { readRoundExamples, type RoundExamples } from './pseudo-labeled-set.js';
export { RoundStore, type RoundState } from './round-store.js';
