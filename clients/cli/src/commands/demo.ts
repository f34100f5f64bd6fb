// nsctl demo (what `npm run demo` runs): the whole self-training system on Fashion-MNIST through
// the real services — a fresh stack, a teacher bootstrapped on 1,000 labels, the unlabeled
// images through Ingest, rounds until the trainer has run them, Predict through the promoted
// model, the round table and the HTML report — with one live status view.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { connectTeacher, connectTrainer, type Round } from '@noisystudent/client';
import type { ExperimentConfig } from '@noisystudent/ml/data';
import type { Command } from 'commander';

import { CliError, EXIT } from '../cli-error.js';
import { allowedPath, allowedRootsOf, makeOutput, parseCount, type Addresses, type GlobalOptions } from '../context.js';
import { datasetImages, type DatasetImage } from '../dataset-images.js';
import { gatherReport } from '../report/gather-report.js';
import { writeReport } from '../report/write-report.js';
import { describeLabeler, describeTeacher, describeTrainer, takeSnapshot, type Snapshot } from '../snapshot.js';
import { readStack, stackRunning, stopStack, type StackFile } from '../stack.js';
import { bar, count, duration, percent, table } from '../view/format.js';
import { LiveView } from '../view/live-view.js';
import { ingestWithProgress } from './ingest.js';
import { reportTestImages } from './report.js';
import { roundsOldestFirst, roundsTable } from './rounds.js';
import { upStack } from './stack-commands.js';

interface DemoFlags {
  preset: string;
  rounds?: string;
  unlabeled?: string;
  report: string;
  keep: boolean;
  testImages: string;
  predictImages: string;
  datasetDir?: string;
  timeoutMinutes: string;
  trainerArg: string[];
}

const DEMO_DATA_DIR = 'runs/demo';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** The status view's lines: elapsed time, the stage, and each service's progress. */
function statusLines(
  started: number,
  stage: string,
  snapshot: Snapshot,
  rounds: number,
  roundsDone: number,
  unlabeled: number,
): string[] {
  const labeled = snapshot.labeler.detail?.versions.find(
    (v) => v.teacherVersion === snapshot.labeler.detail?.teacherVersion,
  );
  const status = snapshot.trainer.detail;
  const training =
    status !== undefined && status.steps > 0 && (status.phase === 'training' || status.phase === 'bootstrapping');
  return [
    `noisystudent demo  ${duration((Date.now() - started) / 1000)}  ${stage}`,
    `  rounds    ${bar(roundsDone, rounds, 16)} ${roundsDone}/${rounds}`,
    `  training  ${training ? `${bar(status.step, status.steps, 16)} ` : ''}${describeTrainer(snapshot.trainer)}`,
    `  labeling  ${labeled === undefined ? '' : `${bar(labeled.labeled, unlabeled, 16)} `}${describeLabeler(snapshot.labeler)}`,
    `  teacher   ${describeTeacher(snapshot.teacher)}`,
  ];
}

function stageOf(snapshot: Snapshot, roundsDone: number): string {
  const phase = snapshot.trainer.detail?.phase;
  if (phase === 'bootstrapping') return 'bootstrapping teacher v1 on the labeled images';
  if (phase === 'collecting') return `round ${roundsDone + 1}: the teacher labels the unlabeled images`;
  if (phase === 'training')
    return `round ${snapshot.trainer.detail?.round ?? roundsDone + 1}: training the noised student`;
  if (phase === 'evaluating' || phase === 'promoting')
    return `round ${snapshot.trainer.detail?.round ?? ''}: evaluating the student against the teacher`;
  return phase ?? 'starting';
}

async function waitForRounds(
  addresses: Addresses,
  stack: StackFile,
  rounds: number,
  unlabeled: number,
  view: LiveView,
  started: number,
  deadline: number,
): Promise<Round[]> {
  const trainer = connectTrainer({ address: addresses.trainer, deadlineMs: 5_000 });
  let seen = 0;
  try {
    for (;;) {
      const [snapshot, done] = await Promise.all([takeSnapshot(addresses), roundsOldestFirst(trainer)]);
      for (const round of done.slice(seen)) {
        const student =
          round.studentEval === undefined
            ? ''
            : `student ${percent(round.studentEval.top1Accuracy)} vs teacher ${percent(round.teacherEval?.top1Accuracy ?? 0)} on eval: `;
        view.log(
          `round ${round.round} (${round.teacherVersion} → ${round.studentVersion}): ${student}${round.decision} — ${round.reason}`,
        );
      }
      seen = done.length;
      view.render(statusLines(started, stageOf(snapshot, done.length), snapshot, rounds, done.length, unlabeled));
      if (done.length >= rounds) return done;
      const trainerProcess = stack.services.trainer;
      if (trainerProcess !== undefined && !stackRunning({ ...stack, services: { trainer: trainerProcess } })) {
        throw new CliError(`the trainer stopped; see ${trainerProcess.log}`);
      }
      if (Date.now() > deadline)
        throw new CliError(
          `the rounds did not finish within the demo's time limit (--timeout-minutes); see ${stack.dataDir}/logs`,
        );
      await new Promise((done) => setTimeout(done, 1_000));
    }
  } finally {
    trainer.close();
  }
}

/** Waits until the teacher service serves `version` (it swaps after the registry's pointer moves). */
async function waitForServed(address: string, version: string, timeoutMs: number): Promise<void> {
  const teacher = connectTeacher({ address, deadlineMs: 5_000 });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const served = await teacher.modelInfo().then(
        (info) => info.version,
        () => '',
      );
      if (served === version) return;
      if (Date.now() > deadline) {
        throw new CliError(
          `the teacher service still serves ${served || 'nothing'}, not ${version}, after ${timeoutMs / 1000} s`,
        );
      }
      await new Promise((done) => setTimeout(done, 250));
    }
  } finally {
    teacher.close();
  }
}

async function predictSome(
  address: string,
  images: DatasetImage[],
  classNames: string[],
): Promise<{
  version: string;
  rows: Array<{ sourceId: string; truth: string; predicted: string; confidence: number }>;
}> {
  const teacher = connectTeacher(address);
  try {
    const answer = await teacher.predict(
      images.map((item) => item.image),
      { topK: 1 },
    );
    return {
      version: answer.modelVersion,
      rows: answer.predictions.map((prediction, i) => ({
        sourceId: images[i]?.sourceId ?? '',
        truth: classNames[images[i]?.label ?? 0] ?? '',
        predicted: prediction.label,
        confidence: prediction.confidence,
      })),
    };
  } finally {
    teacher.close();
  }
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'the whole loop through the real services on Fashion-MNIST with 1,000 labels: fresh stack, bootstrap, ingest, rounds, Predict, round table, HTML report (what `npm run demo` runs)',
    )
    .option(
      '--preset <name>',
      "the trainer's preset (demo; full = the paper's whole noise at a longer budget; smoke = seconds)",
      'demo',
    )
    .option('--rounds <n>', "self-training rounds (default: the preset's; demo: 2)")
    .option('--unlabeled <n>', "unlabeled images to ingest (default: the preset's)")
    .option('--report <dir>', 'where to write report.json and index.html', 'report')
    .option('--keep', 'leave the stack running afterwards (then: nsctl --data runs/demo status, … down)', false)
    .option('--test-images <n>', 'test images the report measures the served teacher on', '2000')
    .option('--predict-images <n>', 'test images to predict through the promoted teacher at the end', '8')
    .option(
      '--dataset-dir <dir>',
      'folder with the Fashion-MNIST idx files (default: NS_FASHION_MNIST_DIR or Debian path)',
    )
    .option('--timeout-minutes <m>', 'give up after this long', '40')
    .option('--trainer-arg <flag>', 'pass a flag to ns-trainer (repeat)', collect, [])
    .action(async (flags: DemoFlags, command: Command) => {
      const global = command.optsWithGlobals<GlobalOptions>();
      const out = makeOutput(global.json);
      const started = Date.now();
      const deadline = started + Number(flags.timeoutMinutes) * 60_000;
      const preset = flags.preset === 'demo' && !nativeKernelsBuilt() ? 'demo-wasm' : flags.preset;
      if (preset !== flags.preset) {
        out.note(
          'demo: no native kernels (NS_NATIVE_KERNELS=0, or not built): the demo-wasm preset, sized for plain wasm',
        );
      }
      const rounds =
        flags.rounds === undefined ? (await presetOf(preset)).rounds : parseCount('--rounds', flags.rounds, 1);
      const dataDir = global.data === '.noisystudent' ? DEMO_DATA_DIR : global.data;
      const roots = await allowedRootsOf(global);
      await allowedPath(roots, '--report', flags.report, 'write');
      await allowedPath(roots, '--data', dataDir, 'write');
      const existing = await readStack(dataDir);
      if (existing !== undefined && stackRunning(existing)) {
        throw new CliError(
          `a stack already runs from ${resolve(dataDir)}: \`nsctl down --data ${dataDir}\` first`,
          EXIT.refused,
        );
      }
      // A fresh registry and trainer every time: the demo shows the loop from its start.
      for (const part of ['nats', 'trainer', 'logs']) await rm(join(dataDir, part), { recursive: true, force: true });

      const { images: unlabeled, classNames } = await datasetImages({
        split: 'unlabeled',
        preset,
        limit:
          flags.unlabeled === undefined
            ? (await presetOf(preset)).unlabeled
            : parseCount('--unlabeled', flags.unlabeled, 1),
        ...(flags.datasetDir === undefined ? {} : { dataDir: flags.datasetDir }),
        roots,
      });
      out.note(
        `demo: preset ${preset}, ${rounds} rounds, ${count(unlabeled.length)} unlabeled images; stack in ${resolve(dataDir)}`,
      );

      const stack = await upStack(
        { ...global, data: dataDir },
        {
          freePorts: true,
          preset,
          trainerArg: [
            '--max-rounds',
            String(rounds),
            // A round starts once the teacher has labeled every ingested image.
            '--min-images',
            String(unlabeled.length),
            '--baselines',
            'true',
            '--retry-rejected',
            'true',
            ...(flags.datasetDir === undefined ? [] : ['--dataset-dir', flags.datasetDir]),
            ...flags.trainerArg,
          ],
          labelerArg: [],
          teacherArg: [],
          timeoutSeconds: '120',
        },
        (line) => out.note(`  ${line}`),
      );
      const addresses: Addresses = {
        teacher: stack.services.teacher?.address ?? '',
        labeler: stack.services.labeler?.address ?? '',
        trainer: stack.services.trainer?.address ?? '',
        natsUrl: stack.nats.url,
        prefix: stack.prefix,
        ...(stack.nats.user === undefined ? {} : { natsUser: stack.nats.user }),
        ...(stack.nats.passwordFile === undefined ? {} : { natsPasswordFile: stack.nats.passwordFile }),
        stack,
      };
      let stopped = false;
      const stop = async (): Promise<void> => {
        if (stopped || flags.keep) return;
        stopped = true;
        await stopStack(stack, { timeoutMs: 30_000, say: (line) => out.note(`  ${line}`) });
      };
      const onSignal = (): void => {
        out.note('\ndemo: interrupted, stopping the stack');
        void stop().finally(() => process.exit(EXIT.interrupted));
      };
      process.on('SIGINT', onSignal);
      try {
        const view = new LiveView();
        const ingest = await ingestWithProgress(addresses.labeler, unlabeled, { window: 256, view, label: 'ingest' });
        view.log(
          `ingested ${count(ingest.stored)} images (${count(ingest.duplicates)} duplicates, ${count(ingest.rejected)} rejected) in ${duration(ingest.seconds)}`,
        );
        const done = await waitForRounds(addresses, stack, rounds, unlabeled.length, view, started, deadline);
        view.done();

        const current = (await takeSnapshot(addresses)).trainer.detail?.teacherVersion;
        if (current !== undefined && current !== '') await waitForServed(addresses.teacher, current, 60_000);
        const testImages = await reportTestImages(
          parseCount('--test-images', flags.testImages),
          flags.datasetDir,
          roots,
          out.note,
        );
        const predicted = await predictSome(
          addresses.teacher,
          testImages.slice(0, parseCount('--predict-images', flags.predictImages, 1)),
          classNames,
        );
        out.line('');
        out.line(`Predict through the teacher service (${predicted.version}):`);
        out.line(
          table([
            ['image', 'true class', 'predicted', 'confidence'],
            ...predicted.rows.map((row) => [
              row.sourceId,
              row.truth,
              `${row.predicted}${row.predicted === row.truth ? '' : '  ✗'}`,
              percent(row.confidence, 1),
            ]),
          ]),
        );
        out.line('');
        out.line('Rounds (accuracy on the eval split decides promotion; test is reported):');
        out.line(roundsTable(done));

        out.note('demo: writing the report');
        const report = await gatherReport(addresses, {
          title: `Noisy Student on Fashion-MNIST — ${preset} preset`,
          testImages,
          samplesPerVersion: 30,
          settings: { preset, rounds, 'unlabeled images': count(unlabeled.length) },
          say: out.note,
        });
        const written = await writeReport(flags.report, report);
        const promoted = done.filter((round) => round.decision === 'promoted');
        const summary = {
          preset,
          rounds: done.length,
          promoted: promoted.length,
          teacher: report.teacherVersion,
          served_accuracy: report.served?.accuracy ?? null,
          first_teacher_test: done[0]?.teacherTest?.top1Accuracy ?? null,
          best_student_test: Math.max(...done.map((round) => round.studentTest?.top1Accuracy ?? 0)),
          report: written.htmlPath,
          wall_s: Math.round((Date.now() - started) / 100) / 10,
        };
        out.line('');
        out.line(
          `${promoted.length} of ${done.length} students promoted; the teacher is ${report.teacherVersion}` +
            (report.served === undefined
              ? ''
              : `, ${percent(report.served.accuracy)} on ${count(report.served.images)} test images through Predict`) +
            `. Report: ${written.htmlPath}. ${duration(summary.wall_s)} in all.`,
        );
        if (flags.keep) {
          out.line(
            `The stack keeps running: nsctl --data ${dataDir} status | rounds | predict FILE | models ls | down`,
          );
        }
        if (global.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      } finally {
        process.off('SIGINT', onSignal);
        await stop();
      }
    });
}

/** Whether the trainer will train on the native kernels (plain wasm trains ~15× slower). */
function nativeKernelsBuilt(): boolean {
  if (process.env['NS_NATIVE_KERNELS'] === '0') return false;
  return existsSync(
    fileURLToPath(new URL('../../../../packages/kernels/build/Release/ns_kernels.node', import.meta.url)),
  );
}

async function presetOf(name: string): Promise<ExperimentConfig> {
  const { PRESETS } = await import('@noisystudent/ml/data');
  const preset = PRESETS[name];
  if (preset === undefined) {
    throw new CliError(`--preset: expected one of ${Object.keys(PRESETS).join(', ')}, got "${name}"`, EXIT.usage);
  }
  return preset;
}
