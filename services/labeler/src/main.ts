#!/usr/bin/env node
// The labeler service's entry point: wiring only (config, start, stop on SIGTERM/SIGINT).
import { runServiceMain } from '@noisystudent/runtime';

import { LABELER_ENV_PREFIX, labelerConfig, labelerConfigSchema } from './config.js';
import { startLabeler } from './labeler.js';

await runServiceMain({
  name: 'labeler',
  description:
    'The Labeler service: stores unlabeled images (Ingest, or NATS publish) in NS_UNLABELED, labels them through ' +
    "the registry's teacher with threshold and class balancing, and publishes shards to NS_SHARDS.",
  schema: labelerConfigSchema,
  envPrefix: LABELER_ENV_PREFIX,
  config: (flags) => labelerConfig(flags),
  start: startLabeler,
});
