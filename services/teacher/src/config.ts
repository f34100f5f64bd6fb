import { BACKEND_REQUESTS } from '@noisystudent/ml';
import {
  allowedRootsSettings,
  parseConfig,
  portSetting,
  rateLimitSettings,
  serviceSettings,
} from '@noisystudent/runtime';
import { z } from 'zod';

const positive = z.coerce.number().int().positive();

/** Every setting of the teacher: flag `--max-batch-size`, variable `NS_TEACHER_MAX_BATCH_SIZE`, default. */
export const teacherConfigSchema = z
  .object({
    ...serviceSettings,
    ...allowedRootsSettings,
    port: portSetting(50051, 'gRPC port'),
    metricsPort: portSetting(9464, 'Prometheus /metrics port'),
    modelFile: z.string().min(1).optional().describe('serve this encoded ModelArtifact file instead of the registry'),
    backend: z
      .enum(BACKEND_REQUESTS)
      .optional()
      .describe('tfjs backend: auto, tensorflow, wasm or cpu (default: NS_BACKEND, else auto)'),
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
    maxQueueDelayMs: z.coerce.number().min(0).default(2).describe('longest wait for a batch to fill under load, ms'),
    waitWhenIdle: z
      .stringbool()
      .default(false)
      .describe(
        'wait maxQueueDelayMs at light load too (fuller batches; default: a request that finds the model idle goes at once)',
      ),
    maxQueueSize: positive.default(1024).describe('images waiting at most; more are refused with UNAVAILABLE'),
    maxInFlightBatches: positive.default(2).describe('batches at the model at once'),
    maxImagesPerRequest: positive.default(256).describe('images one Predict may carry'),
    maxStreamInFlight: positive.default(512).describe('unanswered requests per PredictStream before reading pauses'),
    maxMessageBytes: positive
      .default(16 * 1024 * 1024)
      .describe('largest request or response in bytes (bigger: RESOURCE_EXHAUSTED)'),
    keepaliveTimeMs: positive.default(30_000).describe('keepalive ping interval to clients, ms'),
    ...rateLimitSettings,
  })
  .refine((config) => config.maxQueueSize >= config.maxImagesPerRequest, {
    path: ['maxQueueSize'],
    message: 'expected at least maxImagesPerRequest, or the largest request could never be queued',
  })
  .refine((config) => config.rateBurst === undefined || config.rateBurst >= config.maxImagesPerRequest, {
    path: ['rateBurst'],
    message: 'expected at least maxImagesPerRequest, or the largest request could never pass',
  });

export type TeacherConfig = z.infer<typeof teacherConfigSchema>;

export const TEACHER_ENV_PREFIX = 'NS_TEACHER_';

/** Flags over `NS_TEACHER_*` variables over defaults. */
export function teacherConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): TeacherConfig {
  return parseConfig(teacherConfigSchema, flags, env, TEACHER_ENV_PREFIX);
}
