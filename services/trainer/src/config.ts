import { BACKEND_REQUESTS, PRESETS, studentNoiseOf, type ExperimentConfig } from '@noisystudent/ml';
import type { AllowedRoots } from '@noisystudent/core';
import { allowedRootsSettings, ConfigError, parseConfig, portSetting, serviceSettings } from '@noisystudent/runtime';
import { z } from 'zod';

import type { DatasetSpec } from './ml-protocol.js';
import { checkRoundTrigger, type RoundTrigger } from './round-trigger.js';

const positive = z.coerce.number().int().positive();
const flag = (description: string, fallback: boolean) => z.stringbool().default(fallback).describe(description);
const probability = z.coerce.number().min(0).max(1);

/** The architectures a student can be built as. */
export const STUDENT_ARCHITECTURES = ['reference-resnet'] as const;

/** Every setting of the trainer: flag `--min-pseudo-labeled`, variable `NS_TRAINER_MIN_PSEUDO_LABELED`, default. */
export const trainerConfigSchema = z.object({
  ...serviceSettings,
  ...allowedRootsSettings,
  port: portSetting(50053, 'gRPC port'),
  maxMessageBytes: positive
    .default(64 * 1024)
    .describe('largest gRPC request in bytes (its requests are a few bytes; bigger: RESOURCE_EXHAUSTED)'),
  metricsPort: portSetting(9466, 'Prometheus /metrics port'),
  stateDir: z
    .string()
    .min(1)
    .default('trainer-state')
    .describe("the trainer's own folder: shards kept, checkpoints, round records (keep it across restarts)"),
  dataset: z
    .enum(['fashion-mnist', 'cifar10', 'folder'])
    .default('fashion-mnist')
    .describe('labeled data: the labeled, eval and test splits come from it'),
  datasetDir: z
    .string()
    .min(1)
    .optional()
    .describe(
      'its files: Fashion-MNIST idx files (default NS_FASHION_MNIST_DIR or the Debian path), CIFAR-10 binary batches, or an image folder <class>/<image>',
    ),
  testDir: z.string().min(1).optional().describe('with --dataset folder: the test images, <class>/<image>'),
  imageSize: z
    .string()
    .regex(/^[1-9][0-9]*x[1-9][0-9]*x[13]$/, 'expected HEIGHTxWIDTHxCHANNELS with 1 or 3 channels, e.g. 32x32x3')
    .optional()
    .describe('with --dataset folder: the size images are resized to'),
  preset: z
    .enum(Object.keys(PRESETS) as [string, ...string[]])
    .default('default')
    .describe("the offline experiment's preset that sizes everything below (labels, steps, batches, noise)"),
  seed: z.coerce.number().int().min(0).optional().describe('seed of the splits, batches, noise and weights'),
  labeledPerClass: positive.optional().describe('labeled images per class'),
  evalImages: positive.optional().describe('training images held out to decide the teacher recipe and every promotion'),
  testImages: positive.optional().describe('test images every model is reported on (never used to choose)'),
  teacherSteps: positive.optional().describe('training steps of each bootstrap teacher recipe'),
  studentSteps: positive.optional().describe('training steps of each student'),
  architecture: z.enum(STUDENT_ARCHITECTURES).default('reference-resnet').describe('student architecture'),
  studentWidth: z.coerce
    .number()
    .positive()
    .optional()
    .describe("student width relative to the bootstrap teacher's (≥ 1)"),
  unlabeledRatio: z.coerce
    .number()
    .positive()
    .optional()
    .describe('pseudo-labeled examples per labeled example in each batch'),
  randAugment: z
    .string()
    .regex(/^\d+,\d+$/, "expected N,M (ops per image, magnitude 0–30), e.g. 2,9 ('0,0' = off)")
    .optional()
    .describe("the student's RandAugment N,M"),
  dropout: probability.optional().describe("the student's dropout before the classifier"),
  finalSurvival: probability
    .optional()
    .describe("the student's stochastic depth: survival of the last block (1 = off)"),
  minPseudoLabeled: positive
    .optional()
    .describe('a round starts once this many new pseudo-labeled examples (copies counted) are held'),
  minImages: positive.optional().describe('a round starts once new shards report on this many labeled images'),
  maxWaitSeconds: z.coerce
    .number()
    .positive()
    .optional()
    .describe('a round starts this long after the first new shard, with whatever is held'),
  minImprovement: z.coerce
    .number()
    .min(-1)
    .max(1)
    .default(0)
    .describe(
      'a student is promoted when its eval top-1 beats the teacher’s by at least this (fraction; < 0 lets a worse one through)',
    ),
  rebalance: flag(
    "balance each round's examples over all its shards (the paper's way) instead of the labeler's per-window copies",
    true,
  ),
  baselines: flag(
    'also train the supervised recipes at the student’s budget and record them (the experiment’s columns)',
    false,
  ),
  retryRejected: flag(
    'after a rejected student, train the next one at once on the same shards (the offline experiment does)',
    false,
  ),
  maxRounds: z.coerce.number().int().min(0).default(0).describe('stop training after this many rounds (0: no limit)'),
  checkpointEverySteps: positive.default(50).describe('training steps between checkpoints'),
  importTeacher: z
    .string()
    .min(1)
    .optional()
    .describe(
      'with an empty registry: make this the first teacher instead of training one (an artifact file, or a tfjs Layers folder with model.json)',
    ),
  importClassNames: z
    .string()
    .min(1)
    .optional()
    .describe("an imported Layers model's class names, comma-separated (default: the data set's)"),
  importScale: z.coerce
    .number()
    .default(1 / 255)
    .describe("an imported Layers model's input: pixel (0–255) × scale + offset"),
  importOffset: z.coerce.number().default(0).describe("an imported Layers model's input offset"),
  backend: z
    .enum(BACKEND_REQUESTS)
    .optional()
    .describe('tfjs backend: auto, tensorflow, wasm or cpu (default: NS_BACKEND, else auto)'),
});

export type TrainerConfig = z.infer<typeof trainerConfigSchema>;

export const TRAINER_ENV_PREFIX = 'NS_TRAINER_';

export function trainerConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): TrainerConfig {
  const config = parseConfig(trainerConfigSchema, flags, env, TRAINER_ENV_PREFIX);
  // Settings that are fine alone but not together: fail at start, naming what to fix.
  const problems: string[] = [];
  if (config.dataset !== 'fashion-mnist' && config.datasetDir === undefined) {
    problems.push(
      `setting datasetDir (--dataset-dir or NS_TRAINER_DATASET_DIR): --dataset ${config.dataset} needs its folder`,
    );
  }
  if (config.dataset === 'folder' && (config.testDir === undefined || config.imageSize === undefined)) {
    problems.push('settings testDir and imageSize (--test-dir, --image-size): --dataset folder needs both');
  }
  if (config.studentWidth !== undefined && config.studentWidth < 1) {
    problems.push(
      `setting studentWidth (--student-width or NS_TRAINER_STUDENT_WIDTH): expected ≥ 1 (the student is at least as large as the teacher), got ${config.studentWidth}`,
    );
  }
  try {
    checkRoundTrigger(roundTrigger(config));
  } catch (error) {
    problems.push(
      `round trigger (--min-pseudo-labeled, --min-images, --max-wait-seconds): ${(error as Error).message}`,
    );
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  return config;
}

/** When a round starts; with nothing set, 5,000 new examples or 10 minutes after the first new shard. */
export function roundTrigger(config: TrainerConfig): RoundTrigger {
  const { minPseudoLabeled, minImages, maxWaitSeconds } = config;
  if (minPseudoLabeled === undefined && minImages === undefined && maxWaitSeconds === undefined) {
    return { minPseudoLabeled: 5_000, maxWaitSeconds: 600 };
  }
  return {
    ...(minPseudoLabeled === undefined ? {} : { minPseudoLabeled }),
    ...(minImages === undefined ? {} : { minImages }),
    ...(maxWaitSeconds === undefined ? {} : { maxWaitSeconds }),
  };
}

/** The experiment configuration the trainer trains with: the preset, with the settings given. */
export function experimentConfig(config: TrainerConfig): ExperimentConfig {
  const preset = PRESETS[config.preset];
  if (preset === undefined) throw new ConfigError(`setting preset: no preset ${config.preset}`);
  const labeledBatchSize = preset.labeledBatchSize;
  return {
    ...preset,
    ...(config.seed === undefined ? {} : { seed: config.seed }),
    ...(config.labeledPerClass === undefined ? {} : { labeledPerClass: config.labeledPerClass }),
    ...(config.evalImages === undefined ? {} : { evalImages: config.evalImages }),
    ...(config.testImages === undefined ? {} : { testImages: config.testImages }),
    ...(config.teacherSteps === undefined ? {} : { teacherSteps: config.teacherSteps }),
    ...(config.studentSteps === undefined ? {} : { studentSteps: config.studentSteps }),
    ...(config.studentWidth === undefined ? {} : { studentWidth: config.studentWidth }),
    ...(config.unlabeledRatio === undefined
      ? {}
      : { pseudoBatchSize: Math.max(1, Math.round(config.unlabeledRatio * labeledBatchSize)) }),
    studentNoise: studentNoiseOf(preset, config),
  };
}

/**
 * The paths the trainer was given, checked against `--allowed-roots` before anything opens: its
 * state folder (made if missing), the data set's folders, the imported teacher. The loaders check
 * every file they read again.
 */
export async function checkPaths(config: TrainerConfig, roots: AllowedRoots): Promise<void> {
  await roots.writable('--state-dir', config.stateDir);
  if (config.datasetDir !== undefined) await roots.readable('--dataset-dir', config.datasetDir);
  if (config.testDir !== undefined) await roots.readable('--test-dir', config.testDir);
  if (config.importTeacher !== undefined) await roots.readable('--import-teacher', config.importTeacher);
}

/** Where the labeled data comes from. */
export function datasetSpec(config: TrainerConfig): DatasetSpec {
  switch (config.dataset) {
    case 'fashion-mnist':
      return { kind: 'fashion-mnist', ...(config.datasetDir === undefined ? {} : { dir: config.datasetDir }) };
    case 'cifar10':
      return { kind: 'cifar10', dir: config.datasetDir ?? '' };
    case 'folder': {
      const [height = 0, width = 0, channels = 0] = (config.imageSize ?? '').split('x').map(Number);
      return {
        kind: 'folder',
        dir: config.datasetDir ?? '',
        testDir: config.testDir ?? '',
        height,
        width,
        channels: channels === 1 ? 1 : 3,
      };
    }
  }
}
