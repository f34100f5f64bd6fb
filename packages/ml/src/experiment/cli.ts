import { checkVersion } from '@noisystudent/core';
import { Command } from 'commander';

import { initBackend } from '../backend/select-backend.js';
import { integerOption, positiveNumberOption, runMain } from '../cli/options.js';
import { loadFashionMnist } from '../data/fashion-mnist.js';
import { addExperimentOptions, experimentConfigFromFlags, type ExperimentFlags } from './experiment-options.js';
import { PRESETS, studentNoiseOf, type ExperimentConfig } from './presets.js';
import { runNoisyStudentExperiment, type ExperimentResult } from './run-experiment.js';
import { summarizeSeeds, type ExperimentSummary, type Spread } from './seed-summary.js';

interface CliOptions extends ExperimentFlags {
  backend?: string;
  seeds: number;
  studentWidth?: number;
  randAugment?: string;
  dropout?: number;
  finalSurvival?: number;
  teacherCache?: string;
  saveTeacher?: string;
  teacherVersion: string;
}

const program = addExperimentOptions(
  new Command()
    .name('experiment')
    .description(
      'The whole Noisy Student loop offline on Fashion-MNIST: teacher on the labeled split → pseudo-labels (threshold + balancing) → ' +
        'noised student → repeat, with supervised baselines (with and without the noise) at the same step budget. ' +
        'With --services, the same through nats-server, trainer, teacher and labeler (npm run experiment -- --services --help). ' +
        'The demo preset becomes demo-wasm without native kernels.',
    ),
)
  .option('--save-teacher <file>', 'write the last teacher as a model artifact (serve it, or push it to the registry)')
  .option('--teacher-version <version>', 'the version --save-teacher names the artifact', 'v1')
  .option('--backend <name>', 'auto | tensorflow | wasm | cpu (default: NS_BACKEND, else auto)')
  .option(
    '--seeds <n>',
    "run the whole experiment n times with seeds seed, seed+1, …; each run's JSON line goes to stderr and the " +
      'final line on stdout has the mean, min and max of every accuracy, and the runs',
    integerOption('--seeds', 1, 100),
    1,
  )
  .option(
    '--student-width <x>',
    'student width relative to the reference model',
    positiveNumberOption('--student-width'),
  )
  .option(
    '--rand-augment <N,M>',
    "the student's RandAugment: ops per image, magnitude 0–30 ('0,0' = off)",
    parseRandAugment,
  )
  .option('--dropout <p>', "the student's dropout before the classifier (0 = off)", probabilityOption('--dropout'))
  .option(
    '--final-survival <p>',
    "the student's stochastic depth: survival probability of the last block (1 = off)",
    probabilityOption('--final-survival'),
  )
  .option(
    '--teacher-cache <dir>',
    'keep the teacher (trained with the default noise) in this folder and reuse it when the data, seed and teacher budget match',
  );

function parseRandAugment(value: string): string {
  if (!/^\d+,\d+$/.test(value)) throw new Error(`--rand-augment: expected N,M (e.g. 2,9 or 0,0), got "${value}"`);
  return value;
}

function probabilityOption(flag: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!(parsed >= 0 && parsed <= 1)) throw new Error(`${flag}: expected a number in [0, 1], got "${value}"`);
    return parsed;
  };
}

async function main(): Promise<void> {
  const options = program.parse().opts<CliOptions>();
  if (PRESETS[options.preset] === undefined) {
    throw new Error(`--preset: expected one of ${Object.keys(PRESETS).join(', ')}, got "${options.preset}"`);
  }
  const say = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  const choice = await initBackend({ request: options.backend, log: say });
  // The demo is sized for a few minutes either way; plain wasm trains ~15× slower.
  const presetName = options.preset === 'demo' && !choice.native ? 'demo-wasm' : options.preset;
  const preset = PRESETS[presetName];
  if (preset === undefined) throw new Error(`--preset: no preset ${presetName}`);
  if (presetName !== options.preset)
    say(`no native kernels: running preset ${presetName} instead of ${options.preset}`);
  const config: ExperimentConfig = {
    ...experimentConfigFromFlags(preset, options),
    ...(options.studentWidth !== undefined ? { studentWidth: options.studentWidth } : {}),
  };
  config.studentNoise = studentNoiseOf(config, options);
  const [train, test] = await Promise.all([
    loadFashionMnist('train', options.data),
    loadFashionMnist('test', options.data),
  ]);
  if (options.saveTeacher !== undefined && options.seeds > 1) {
    program.error('--save-teacher: expected one run, got --seeds ' + String(options.seeds));
  }
  checkVersion(options.teacherVersion, '--teacher-version');
  const started = performance.now();
  const runs: ExperimentResult[] = [];
  for (let run = 0; run < options.seeds; run++) {
    const result = await runNoisyStudentExperiment(
      { ...config, seed: config.seed + run },
      { name: 'fashion-mnist', train, test },
      say,
      {
        ...(options.teacherCache === undefined ? {} : { teacherCache: options.teacherCache }),
        ...(options.saveTeacher === undefined
          ? {}
          : { saveTeacher: { path: options.saveTeacher, version: options.teacherVersion } }),
      },
    );
    if (!options.json) printTable(result, say);
    if (options.seeds > 1) say(JSON.stringify(result));
    runs.push(result);
  }
  const [only] = runs;
  if (runs.length === 1 && only !== undefined) {
    process.stdout.write(`${JSON.stringify(only)}\n`);
    return;
  }
  const summary = summarizeSeeds(runs);
  if (!options.json) printSummaryTable(summary, say);
  const wall_s = Math.round((performance.now() - started) / 100) / 10;
  process.stdout.write(`${JSON.stringify({ ...summary, runs, wall_s })}\n`);
}

function printTable(result: ExperimentResult, say: (line: string) => void): void {
  const { teacher } = result;
  say('');
  say(
    `seed ${result.seed}; chosen on ${result.eval_images} eval images, reported on ${result.test_images} test images`,
  );
  say(
    `teacher (${teacher.recipe}, ${teacher.steps} steps): ${teacher.accuracy}% on test, ${teacher.eval_accuracy}% on eval ` +
      `(supervised ${teacher.recipes.supervised.eval_accuracy}%, supervised+noise ${teacher.recipes.supervised_noised.eval_accuracy}% on eval)`,
  );
  say(
    'round  student  teacher  supervised  supervised+noise    gain  pseudo-labels kept  correct  student/teacher on eval  promoted',
  );
  result.rounds.forEach((round, index) => {
    say(
      `${String(index + 1).padStart(5)}  ${round.student.accuracy.toFixed(2).padStart(7)}  ${round.teacherAccuracy.toFixed(2).padStart(7)}  ` +
        `${round.baselines.supervised.toFixed(2).padStart(10)}  ${round.baselines.supervised_noised.toFixed(2).padStart(16)}  ` +
        `${signed(round.gain_over_best_baseline).padStart(6)}  ${String(round.accepted).padStart(18)}  ` +
        `${round.pseudo_label_accuracy.toFixed(2).padStart(7)}  ` +
        `${`${round.student.eval_accuracy.toFixed(2)} / ${round.teacher_eval_accuracy.toFixed(2)}`.padStart(24)}  ${round.promoted ? 'yes' : 'no'}`,
    );
  });
  say(`wall time ${result.wall_s} s`);
}

function printSummaryTable(summary: ExperimentSummary, say: (line: string) => void): void {
  const runs = summary.seeds.length;
  const { teacher } = summary;
  say('');
  say(`${runs} seeds (${summary.seeds.join(', ')}): test accuracy, mean ± half the range`);
  say(
    `teacher: ${plusMinus(teacher.accuracy)} (on eval ${plusMinus(teacher.eval_accuracy)}); recipe supervised ` +
      `${teacher.recipes.supervised}×, supervised+noise ${teacher.recipes.supervised_noised}×`,
  );
  say('round          student       supervised  supervised+noise  gain over best     promoted');
  summary.rounds.forEach((round, index) => {
    say(
      `${String(index + 1).padStart(5)}  ${plusMinus(round.student.accuracy).padStart(15)}  ${plusMinus(round.baselines.supervised).padStart(15)}  ` +
        `${plusMinus(round.baselines.supervised_noised).padStart(16)}  ${plusMinus(round.gain_over_best_baseline, true).padStart(14)}  ` +
        `${`${round.promoted} of ${runs}`.padStart(11)}`,
    );
  });
}

function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(2)}`;
}

function plusMinus(value: Spread, withSign = false): string {
  return `${withSign ? signed(value.mean) : value.mean.toFixed(2)} ± ${((value.max - value.min) / 2).toFixed(2)}`;
}

runMain('experiment', main);
