export { ShardCollector, type CollectedShards, type ShardCollectorOptions } from './shard-collector.js';
export { writeFileDurably } from './durable-file.js';
export { checkRoundTrigger, roundDue, type Holding, type RoundDue, type RoundTrigger } from './round-trigger.js';
