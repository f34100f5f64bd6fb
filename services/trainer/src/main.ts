#!/usr/bin/env node
// The trainer service's entry point: wiring only (config, start, stop on SIGTERM/SIGINT).
import { runServiceMain } from '@noisystudent/runtime';

import { TRAINER_ENV_PREFIX, trainerConfig, trainerConfigSchema } from './config.js';
import { startTrainer } from './trainer.js';

await runServiceMain({
  name: 'trainer',
  description:
    'The Trainer service: bootstraps teacher v1 when the registry has none, collects the shards of the current ' +
    'teacher, trains a noised student when a round is due, and promotes it (compare-and-set) when it evaluates better.',
  schema: trainerConfigSchema,
  envPrefix: TRAINER_ENV_PREFIX,
  config: (flags) => trainerConfig(flags),
  start: async (config, log) => {
    const trainer = await startTrainer(config, log);
    // A work loop that fails (the trainer logs why) ends the process, so that it does not serve on, idle.
    trainer.done.catch(() => trainer.stop().finally(() => process.exit(1)));
    return trainer;
  },
});
