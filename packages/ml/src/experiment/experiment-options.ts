import type { Command } from 'commander';

import { integerOption, positiveNumberOption } from '../cli/options.js';
import { PRESETS, type ExperimentConfig } from './presets.js';

/** The flags that size an experiment, as commander parses them (`addExperimentOptions`). */
export interface ExperimentFlags {
  preset: string;
  json: boolean;
  data?: string;
  seed?: number;
  evalImages?: number;
  rounds?: number;
  teacherSteps?: number;
  studentSteps?: number;
  unlabeled?: number;
  labeledPerClass?: number;
  threshold?: number;
  hard: boolean;
  /** commander's `--no-balance`: false when given. */
  balance?: boolean;
}

/**
 * The flags every way of running the experiment shares (offline, and `--services` through the
 * real services), spelled and checked the same in both.
 */
export function addExperimentOptions(command: Command): Command {
  return command
    .option('--preset <name>', `one of ${Object.keys(PRESETS).join(', ')}`, 'default')
    .option('--json', 'print only the final JSON line on stdout (progress still goes to stderr)', false)
    .option('--data <dir>', 'folder with the Fashion-MNIST idx files (default: NS_FASHION_MNIST_DIR or Debian path)')
    .option(
      '--seed <n>',
      'seed for splits, batches, noise and initial weights',
      integerOption('--seed', 0, 2 ** 31 - 1),
    )
    .option(
      '--eval-images <n>',
      'training images held out to choose the teacher recipe and decide promotion (the test images are only reported)',
      integerOption('--eval-images'),
    )
    .option('--rounds <n>', 'self-training rounds', integerOption('--rounds', 1, 20))
    .option('--teacher-steps <n>', 'training steps of each supervised teacher recipe', integerOption('--teacher-steps'))
    .option(
      '--student-steps <n>',
      'training steps of each student (and of its baselines)',
      integerOption('--student-steps'),
    )
    .option(
      '--unlabeled <n>',
      'unlabeled images sampled from the rest of the training split',
      integerOption('--unlabeled'),
    )
    .option('--labeled-per-class <n>', 'labels per class', integerOption('--labeled-per-class'))
    .option(
      '--threshold <p>',
      'keep pseudo-labels whose top probability is at least this',
      positiveNumberOption('--threshold'),
    )
    .option('--hard', 'hard (one-hot) pseudo-labels instead of soft', false)
    .option('--no-balance', 'do not balance pseudo-labels across classes');
}

/** `preset` with the sizes the flags give. */
export function experimentConfigFromFlags(preset: ExperimentConfig, flags: ExperimentFlags): ExperimentConfig {
  return {
    ...preset,
    ...(flags.seed !== undefined ? { seed: flags.seed } : {}),
    ...(flags.evalImages !== undefined ? { evalImages: flags.evalImages } : {}),
    ...(flags.rounds !== undefined ? { rounds: flags.rounds } : {}),
    ...(flags.teacherSteps !== undefined ? { teacherSteps: flags.teacherSteps } : {}),
    ...(flags.studentSteps !== undefined ? { studentSteps: flags.studentSteps } : {}),
    ...(flags.unlabeled !== undefined ? { unlabeled: flags.unlabeled } : {}),
    ...(flags.labeledPerClass !== undefined ? { labeledPerClass: flags.labeledPerClass } : {}),
    ...(flags.threshold !== undefined ? { threshold: flags.threshold } : {}),
    ...(flags.hard ? { labelMode: 'hard' as const } : {}),
    ...(flags.balance === false ? { balance: false } : {}),
  };
}
