import { parseConfig } from '@noisystudent/runtime';
import { z } from 'zod';

const port = z.coerce.number().int().min(0).max(65_535);
const positive = z.coerce.number().int().positive();

/** Every setting of the teacher: flag `--max-batch-size`, variable `NS_TEACHER_MAX_BATCH_SIZE`, default. */
export const teacherConfigSchema = z
  .object({
    host: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .describe('address to listen on, gRPC and metrics (0.0.0.0 in a container)'),
    port: port.default(50051).describe('gRPC port (0: any free port)'),
    metricsPort: port.default(9464).describe('Prometheus /metrics port (0: any free port)'),
    natsUrl: z.string().min(1).default('nats://127.0.0.1:4222').describe('NATS server holding the model registry'),
    registryPrefix: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/, 'expected letters, digits, - or _')
      .default('ns')
      .describe('prefix of the registry buckets (<prefix>_models, <prefix>_registry)'),
    modelFile: z.string().min(1).optional().describe('serve this encoded ModelArtifact file instead of the registry'),
    backend: z
      .enum(['auto', 'tensorflow', 'wasm', 'cpu'])
      .default('auto')
      .describe('tfjs backend, as NS_BACKEND (which also sets it)'),
    modelThreads: z.coerce
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('threads of the native inference kernels (0: one per CPU; sets OMP_NUM_THREADS)'),
    modelThreadNice: z.coerce
      .number()
      .int()
      .min(0)
      .max(19)
      .default(10)
      .describe('nice value of the inference threads, so the gRPC thread always runs first (0: same priority)'),
    maxBatchSize: positive.default(32).describe('images per batch'),
    maxQueueDelayMs: z.coerce.number().min(0).default(2).describe('longest wait for a batch to fill, ms'),
    maxQueueSize: positive.default(1024).describe('images waiting at most; more are refused with UNAVAILABLE'),
    maxInFlightBatches: positive.default(2).describe('batches at the model at once'),
    maxImagesPerRequest: positive.default(256).describe('images one Predict may carry'),
    maxStreamInFlight: positive.default(512).describe('unanswered requests per PredictStream before reading pauses'),
    maxMessageBytes: positive
      .default(16 * 1024 * 1024)
      .describe('largest request or response in bytes (bigger: RESOURCE_EXHAUSTED)'),
    keepaliveTimeMs: positive.default(30_000).describe('keepalive ping interval to clients, ms'),
    shutdownTimeoutMs: positive.default(10_000).describe('how long shutdown waits for queued and running requests, ms'),
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info')
      .describe('log level'),
  })
  .refine((config) => config.maxQueueSize >= config.maxImagesPerRequest, {
    path: ['maxQueueSize'],
    message: 'expected at least maxImagesPerRequest, or the largest request could never be queued',
  });

export type TeacherConfig = z.infer<typeof teacherConfigSchema>;

export const TEACHER_ENV_PREFIX = 'NS_TEACHER_';

/** Flags over `NS_TEACHER_*` variables over defaults; `NS_BACKEND` also sets the backend. */
export function teacherConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): TeacherConfig {
  const backend = flags['backend'] ?? env['NS_TEACHER_BACKEND'] ?? env['NS_BACKEND'];
  return parseConfig(teacherConfigSchema, { ...flags, backend }, env, TEACHER_ENV_PREFIX);
}
