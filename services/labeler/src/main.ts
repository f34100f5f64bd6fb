#!/usr/bin/env node
// The labeler service's entry point: parse config, start, stop on SIGTERM/SIGINT. Wiring only.
import { Command } from 'commander';
import { ConfigError, configOptions, createLogger, onShutdownSignal } from '@noisystudent/runtime';

import { LABELER_ENV_PREFIX, labelerConfig, labelerConfigSchema } from './config.js';
import { startLabeler } from './labeler.js';

const command = new Command('labeler').description(
  'The Labeler service: stores unlabeled images (Ingest, or NATS publish) in NS_UNLABELED, labels them through ' +
    "the registry's teacher with threshold and class balancing, and publishes shards to NS_SHARDS.",
);
for (const option of configOptions(labelerConfigSchema, LABELER_ENV_PREFIX))
  command.option(option.flags, option.description);
command.parse();

try {
  const config = labelerConfig(command.opts());
  const log = createLogger({ service: 'labeler', level: config.logLevel });
  const labeler = await startLabeler(config, log);
  onShutdownSignal(() => labeler.stop(), log);
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`labeler: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
}
