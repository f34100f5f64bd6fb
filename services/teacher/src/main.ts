#!/usr/bin/env node
// The teacher service's entry point: parse config, start, stop on SIGTERM/SIGINT. Wiring only.
import { Command } from 'commander';
import { ConfigError, configOptions, createLogger, onShutdownSignal } from '@noisystudent/runtime';

import { TEACHER_ENV_PREFIX, teacherConfig, teacherConfigSchema } from './config.js';
import { startTeacher } from './teacher.js';

const command = new Command('teacher').description(
  'The Teacher gRPC service: serves the registry’s teacher model (Predict, PredictStream, GetModelInfo) ' +
    'through one dynamic batcher, and hot-swaps to every promoted version.',
);
for (const option of configOptions(teacherConfigSchema, TEACHER_ENV_PREFIX))
  command.option(option.flags, option.description);
command.parse();

try {
  const config = teacherConfig(command.opts());
  const log = createLogger({ service: 'teacher', level: config.logLevel });
  const teacher = await startTeacher(config, log);
  onShutdownSignal(() => teacher.stop(), log);
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`teacher: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
}
