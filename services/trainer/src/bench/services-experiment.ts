// npm run experiment -- --services --json: the offline experiment's preset through the real
// services — nats-server, then trainer, teacher and labeler each a process of its own — with the
// experiment's unlabeled images streamed through the labeler's Ingest. The trainer bootstraps the
// teacher, every round's student learns from the labeler's shards, and promotions go through the
// registry. Prints the experiment's table and one final JSON line with `"services": true` and
// each round's shard count, to set beside `npm run experiment -- --json` for the same seed.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { connectLabeler } from '@noisystudent/client';
import { Command } from 'commander';
import {
  addExperimentOptions,
  experimentConfigFromFlags,
  loadFashionMnist,
  percent,
  PRESETS,
  runMain,
  SelfTraining,
  type ExperimentFlags,
} from '@noisystudent/ml';
import { RoundDecision, type RoundRecord } from '@noisystudent/proto';
import { openRegistry } from '@noisystudent/registry';
import { startNatsServer } from '@noisystudent/registry/testing';
import { spawnService, type SpawnedService } from '@noisystudent/runtime';
import { connect } from 'nats';

import { connectTrainer } from '../testing/trainer-client.js';

interface Options extends ExperimentFlags {
  services: boolean;
  perWindowBalance: boolean;
  keep?: string;
}

const program = addExperimentOptions(
  new Command()
    .name('experiment --services')
    .description(
      "The offline experiment's preset run through the real services: nats-server, trainer, teacher and labeler as " +
        'processes, the unlabeled images streamed through Ingest.',
    ),
)
  .option('--services', 'run through the services (this program)', true)
  .option(
    '--per-window-balance',
    "balance in the labeler's windows (1,024 images) instead of over each round's shards in the trainer",
    false,
  )
  .option('--keep <dir>', "keep the trainer's state folder here instead of a temporary one");

const say = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

async function main(): Promise<void> {
  const options = program.parse().opts<Options>();
  const preset = PRESETS[options.preset];
  if (preset === undefined) {
    throw new Error(`--preset: expected one of ${Object.keys(PRESETS).join(', ')}, got "${options.preset}"`);
  }
  const config = experimentConfigFromFlags(preset, options);
  const started = performance.now();
  const [train, test] = await Promise.all([
    loadFashionMnist('train', options.data),
    loadFashionMnist('test', options.data),
  ]);
  // The experiment's own split: the same unlabeled images, in the same order.
  const { unlabeled } = new SelfTraining(config, { name: 'fashion-mnist', train, test });
  say(
    `${options.preset}: ${unlabeled.length} unlabeled images through Ingest, ${config.rounds} rounds, seed ${config.seed}`,
  );

  const nats = await startNatsServer();
  const stateDir = options.keep ?? (await mkdtemp(join(tmpdir(), 'ns-services-experiment-')));
  const services: SpawnedService[] = [];
  const entry = (service: string): string =>
    fileURLToPath(new URL(`../../../${service}/dist/main.js`, import.meta.url));
  const common = ['--port', '0', '--metrics-port', '0', '--nats-url', nats.url, '--prefix', 'exp'];
  const trainerBalance = config.balance && !options.perWindowBalance;
  const labelerBalance = config.balance && options.perWindowBalance ? 'mean' : 'none';
  try {
    const trainer = await spawnService(entry('trainer'), {
      args: [
        ...common,
        '--state-dir',
        stateDir,
        '--preset',
        options.preset,
        '--seed',
        String(config.seed),
        '--labeled-per-class',
        String(config.labeledPerClass),
        '--eval-images',
        String(config.evalImages),
        '--teacher-steps',
        String(config.teacherSteps),
        '--student-steps',
        String(config.studentSteps),
        // A round starts once the teacher has labeled every ingested image, like the experiment's.
        '--min-images',
        String(unlabeled.length),
        '--max-rounds',
        String(config.rounds),
        '--retry-rejected',
        'true',
        '--baselines',
        'true',
        '--rebalance',
        String(trainerBalance),
        ...(options.data === undefined ? [] : ['--dataset-dir', options.data]),
      ],
      output: 'stderr',
      timeoutMs: 300_000,
    });
    services.push(trainer);
    const nc = await connect({ servers: nats.url });
    const registry = await openRegistry(nc, { prefix: 'exp' });
    const teacher = await spawnService(entry('teacher'), { args: common, output: 'stderr', timeoutMs: 300_000 });
    services.push(teacher);
    const labeler = await spawnService(entry('labeler'), {
      args: [
        ...common,
        '--teachers',
        teacher.address,
        '--threshold',
        String(config.threshold),
        '--label-mode',
        config.labelMode,
        '--temperature',
        String(config.temperature),
        '--balance',
        labelerBalance,
        '--seed',
        String(config.seed),
      ],
      output: 'stderr',
      timeoutMs: 300_000,
    });
    services.push(labeler);

    const labelerClient = connectLabeler(labeler.address);
    const ingested = await labelerClient
      .ingest(
        unlabeled.map((index) => ({
          sourceId: `fashion-mnist-train-${index}`,
          image: {
            shape: [train.height, train.width, train.channels],
            dtype: 'uint8' as const,
            data: train.images.subarray(index * 784, (index + 1) * 784),
          },
        })),
      )
      .finally(() => labelerClient.close());
    say(`ingested ${ingested.stored} images (${ingested.duplicates} duplicates, ${ingested.rejected} rejected)`);

    const client = connectTrainer(trainer.address);
    let rounds: RoundRecord[] = [];
    while (rounds.length < config.rounds) {
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      // ListRounds answers newest first; the table reads oldest first.
      rounds = (await client.rounds()).sort((a, b) => a.round - b.round);
      if (trainer.child.exitCode !== null) throw new Error(`the trainer exited with code ${trainer.child.exitCode}`);
    }
    client.close();
    const v1 = (await registry.history())[0]?.pointer;
    await nc.close();

    const teacherRecipe = (v1?.reason ?? '').includes('supervised_noised') ? 'supervised_noised' : 'supervised';
    const first = rounds[0];
    const result = {
      dataset: 'fashion-mnist',
      seed: config.seed,
      preset: options.preset,
      services: true,
      labels: first?.labeledExamples ?? 0,
      unlabeled: unlabeled.length,
      eval_images: first?.teacherEval?.exampleCount ?? 0,
      test_images: first?.teacherTest?.exampleCount ?? 0,
      chosen_on: 'eval',
      balance: !config.balance ? 'none' : trainerBalance ? 'round' : 'window',
      teacher: {
        accuracy: percent(first?.teacherTest?.top1Accuracy ?? 0),
        eval_accuracy: percent(first?.teacherEval?.top1Accuracy ?? 0),
        steps: config.teacherSteps,
        recipe: teacherRecipe,
      },
      rounds: rounds.map((round) => {
        const baselines = {
          supervised: percent(round.supervisedTest?.top1Accuracy ?? 0),
          supervised_noised: percent(round.supervisedNoisedTest?.top1Accuracy ?? 0),
        };
        const student = percent(round.studentTest?.top1Accuracy ?? 0);
        return {
          student: {
            accuracy: student,
            eval_accuracy: percent(round.studentEval?.top1Accuracy ?? 0),
            steps: Number(round.studentTraining?.steps ?? 0),
            ece: Math.round((round.studentTest?.expectedCalibrationError ?? 0) * 10_000) / 10_000,
          },
          teacher_version: round.teacherVersion,
          teacherAccuracy: percent(round.teacherTest?.top1Accuracy ?? 0),
          teacher_eval_accuracy: percent(round.teacherEval?.top1Accuracy ?? 0),
          shards: Number(round.shards),
          pseudo_labeled_examples: Number(round.pseudoLabeledExamples),
          promoted: round.decision === RoundDecision.PROMOTED,
          baselines,
          gain_over_best_baseline:
            Math.round((student - Math.max(baselines.supervised, baselines.supervised_noised)) * 100) / 100,
        };
      }),
      wall_s: Math.round((performance.now() - started) / 100) / 10,
    };
    if (!options.json) printTable(result);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    for (const service of services.reverse()) await service.stop();
    await nats.stop();
    if (options.keep === undefined) await rm(stateDir, { recursive: true, force: true });
  }
}

function printTable(result: {
  seed: number;
  eval_images: number;
  test_images: number;
  teacher: { accuracy: number; eval_accuracy: number; recipe: string; steps: number };
  rounds: Array<{
    student: { accuracy: number; eval_accuracy: number };
    teacherAccuracy: number;
    teacher_eval_accuracy: number;
    baselines: { supervised: number; supervised_noised: number };
    gain_over_best_baseline: number;
    shards: number;
    pseudo_labeled_examples: number;
    promoted: boolean;
  }>;
  wall_s: number;
}): void {
  say('');
  say(
    `seed ${result.seed}; chosen on ${result.eval_images} eval images, reported on ${result.test_images} test images (through the services)`,
  );
  say(
    `teacher (${result.teacher.recipe}, ${result.teacher.steps} steps): ${result.teacher.accuracy}% on test, ${result.teacher.eval_accuracy}% on eval`,
  );
  say(
    'round  student  teacher  supervised  supervised+noise    gain  shards  pseudo-labeled  student/teacher on eval  promoted',
  );
  result.rounds.forEach((round, index) => {
    const gain = `${round.gain_over_best_baseline >= 0 ? '+' : ''}${round.gain_over_best_baseline.toFixed(2)}`;
    say(
      `${String(index + 1).padStart(5)}  ${round.student.accuracy.toFixed(2).padStart(7)}  ${round.teacherAccuracy.toFixed(2).padStart(7)}  ` +
        `${round.baselines.supervised.toFixed(2).padStart(10)}  ${round.baselines.supervised_noised.toFixed(2).padStart(16)}  ` +
        `${gain.padStart(6)}  ${String(round.shards).padStart(6)}  ${String(round.pseudo_labeled_examples).padStart(14)}  ` +
        `${`${round.student.eval_accuracy.toFixed(2)} / ${round.teacher_eval_accuracy.toFixed(2)}`.padStart(24)}  ${round.promoted ? 'yes' : 'no'}`,
    );
  });
  say(`wall time ${result.wall_s} s`);
}

runMain('experiment --services', main);
