export { ShardCollector, type CollectedShards, type ShardCollectorOptions } from './shard-collector.js';
export { writeFileDurably } from './durable-file.js';
