export { LABELER_ENV_PREFIX, labelerConfig, labelerConfigSchema, type LabelerConfig } from './config.js';
export { startLabeler, LABELER_SERVICE_NAME, type Labeler } from './labeler.js';
export { labelerNames, shardSubject, unlabeledSubject, type LabelerNames } from './names.js';
export { buildShards, type LabeledImage, type WindowCounts } from './shards.js';
export { readShards, shardOutcomes } from './shard-outcomes.js';
