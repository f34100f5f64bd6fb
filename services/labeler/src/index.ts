export { LABELER_ENV_PREFIX, labelerConfig, labelerConfigSchema, type LabelerConfig } from './config.js';
export { startLabeler, LABELER_SERVICE_NAME, type Labeler } from './labeler.js';
export { buildShards, type LabeledImage, type WindowCounts } from './shards.js';
