#!/usr/bin/env node
// The teacher service's entry point: wiring only (config, start, stop on SIGTERM/SIGINT).
import { runServiceMain } from '@noisystudent/runtime';

import { TEACHER_ENV_PREFIX, teacherConfig, teacherConfigSchema } from './config.js';
import { startTeacher } from './teacher.js';

await runServiceMain({
  name: 'teacher',
  description:
    'The Teacher gRPC service: serves the registry’s teacher model (Predict, PredictStream, GetModelInfo) ' +
    'through one dynamic batcher, and hot-swaps to every promoted version.',
  schema: teacherConfigSchema,
  envPrefix: TEACHER_ENV_PREFIX,
  config: (flags) => teacherConfig(flags),
  start: startTeacher,
});
