import { parseConfig, portSetting, rateLimitSettings, serviceSettings } from '@noisystudent/runtime';
import { z } from 'zod';

const positive = z.coerce.number().int().positive();
const nonNegative = z.coerce.number().min(0);

/** Every setting of the labeler: flag `--window-size`, variable `NS_LABELER_WINDOW_SIZE`, default. */
export const labelerConfigSchema = z.object({
  ...serviceSettings,
  port: portSetting(50052, 'gRPC port'),
  metricsPort: portSetting(9465, 'Prometheus /metrics port'),
  teachers: z
    .string()
    .min(1)
    .default('127.0.0.1:50051')
    .describe('teacher addresses, comma-separated (host:port, or dns:///name:port for round_robin over replicas)'),
  threshold: z.coerce
    .number()
    .min(0)
    .max(1)
    .default(0.3)
    .describe('keep images whose top probability is at least this'),
  labelMode: z.enum(['soft', 'hard']).default('soft').describe('soft (teacher distribution) or hard (one-hot) labels'),
  temperature: z.coerce.number().positive().default(1).describe('softmax temperature of soft labels'),
  balance: z
    .string()
    .regex(/^(none|mean|[1-9][0-9]*)$/, "expected 'none', 'mean' or a positive count")
    .default('mean')
    .describe("copies per class after balancing: 'mean' of the window's classes, a count, or 'none'"),
  seed: z.coerce.number().int().min(0).default(0).describe('seed of the random rounding of fractional copies'),
  windowSize: positive.default(1024).describe('images per labeling window (thresholding, balancing and shards)'),
  windowWaitMs: positive
    .default(500)
    .describe(
      'a window closes this long after its first image even when not full (up to 1 s later: NATS pulls wait at least that), ms',
    ),
  ...rateLimitSettings,
  concurrentWindows: positive.default(4).describe('windows labeled at once by this replica'),
  ackWaitMs: positive
    .optional()
    .describe(
      'images a replica pulled are delivered to another after this long without an ack (renewed while labeling), ms; default the larger of 5 s and 10 × window wait',
    ),
  teacherToken: z
    .string()
    .min(1)
    .optional()
    .describe(
      'the token this labeler sends to teachers started with tokens (role predict); for a variable from a secret',
    ),
  teacherTokenFile: z.string().min(1).optional().describe('a file whose first line is that token'),
  teacherTlsCa: z
    .string()
    .min(1)
    .optional()
    .describe("PEM CA bundle to verify the teachers' TLS certificates with: the teachers are reached over TLS"),
  teacherTlsCert: z
    .string()
    .min(1)
    .optional()
    .describe('PEM client certificate for teachers that require one (mutual TLS); with --teacher-tls-key'),
  teacherTlsKey: z.string().min(1).optional().describe('PEM private key of --teacher-tls-cert'),
  maxIngestInFlight: positive.default(256).describe('images per Ingest stream awaiting storage before reading pauses'),
  maxPredictInFlight: positive.default(512).describe('images at the teachers at once'),
  retentionMaxAgeHours: nonNegative.default(168).describe('NS_UNLABELED keeps images this long (0: no limit)'),
  retentionMaxMessages: z.coerce
    .number()
    .int()
    .min(0)
    .default(1_000_000)
    .describe('NS_UNLABELED keeps at most this many images (0: no limit)'),
  retentionMaxBytes: z.coerce
    .number()
    .int()
    .min(0)
    .default(4 * 1024 ** 3)
    .describe('NS_UNLABELED keeps at most this many bytes (0: no limit)'),
  maxMessageBytes: positive
    .default(16 * 1024 * 1024)
    .describe('largest gRPC request in bytes (bigger: RESOURCE_EXHAUSTED)'),
});

export type LabelerConfig = z.infer<typeof labelerConfigSchema>;

export const LABELER_ENV_PREFIX = 'NS_LABELER_';

export function labelerConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): LabelerConfig {
  return parseConfig(labelerConfigSchema, flags, env, LABELER_ENV_PREFIX);
}

/** `balance` as the pseudo-label policy's `targetPerClass`. */
export function targetPerClass(balance: string): number | 'mean' | undefined {
  if (balance === 'none') return undefined;
  if (balance === 'mean') return 'mean';
  return Number(balance);
}
