// Helpers for tests and benchmarks of the labeling path, exported as @noisystudent/labeler/testing.
export { readShards, shardOutcomes } from './shard-outcomes.js';
export { LabeledIndex } from '../labeled-index.js';
