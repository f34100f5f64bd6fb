import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import { initBackend } from '../backend/select-backend.js';
import { integerOption, positiveNumberOption, runMain } from '../cli/options.js';
import { foldBatchNorm } from '../models/fold-batch-norm.js';
import { buildReferenceResNet, forwardFlopsPerImage } from '../models/reference-resnet.js';
import { seededValues } from '../random.js';

interface BenchOptions {
  json: boolean;
  backend: string;
  batch: number;
  trainSeconds: number;
  inferSeconds: number;
  warmup: number;
  profile: boolean;
  vsTorch: boolean;
  repeat: number;
}

/** The figures `npm run bench:train -- --json` prints as its final line. */
export interface TrainBenchResult {
  backend: string;
  native: boolean;
  threads: number;
  batch: number;
  train_img_s: number;
  /** Inference as the services run it: batch normalisation folded into the convolutions (foldBatchNorm). */
  infer_img_s_b1: number;
  infer_img_s_b32: number;
  /** The layers model as trained, batch normalisation and ReLU as their own kernels. */
  infer_img_s_b32_unfolded: number;
  flops_per_img: number;
  train_gflop_s: number;
  load_before: number;
  /** Figures are medians over this many alternating rounds (ours, then PyTorch). */
  repeats: number;
  torch_train_img_s?: number;
  torch_infer_img_s_b32?: number;
  /** PyTorch with its batch normalisations fused into the convolutions too (torch.fx). */
  torch_infer_img_s_b32_fused?: number;
  ratio_train?: number;
  ratio_infer_b32?: number;
  ratio_infer_b32_vs_fused?: number;
}

const program = new Command()
  .name('bench:train')
  .description(
    'Times training and inference of the reference ResNet (28×28×1, ~152k parameters) on the chosen TensorFlow.js backend.',
  )
  .option('--json', 'print only the final JSON line on stdout', false)
  .option(
    '--backend <name>',
    'auto | tensorflow | wasm | cpu (default: NS_BACKEND or auto)',
    process.env['NS_BACKEND'] ?? 'auto',
  )
  .option('--batch <n>', 'training batch size', integerOption('--batch'), 32)
  .option('--train-seconds <s>', 'measured training time after warm-up', positiveNumberOption('--train-seconds'), 8)
  .option(
    '--infer-seconds <s>',
    'measured time for each inference batch size',
    positiveNumberOption('--infer-seconds'),
    3,
  )
  .option('--warmup <steps>', 'untimed steps before each measurement', integerOption('--warmup'), 3)
  .option('--profile', 'print the kernels that dominate one training step (stderr)', false)
  .option(
    '--repeat <n>',
    'alternate the measurements this many times and report medians',
    integerOption('--repeat', 1, 20),
    1,
  )
  .option('--vs-torch', "also time the same model in PyTorch (Debian's python3-torch, 2 threads) in this run", false)
  .addHelpText(
    'after',
    '\nTargets on a 2-core x86-64: plain wasm train_img_s ≥ 40 and infer_img_s_b32 ≥ 250; with native kernels ratio_train ≥ 1 and ratio_infer_b32 ≥ 1 against PyTorch (--vs-torch).',
  );

async function main(): Promise<void> {
  const options = program.parse().opts<BenchOptions>();
  const say = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  const loadBefore = loadavg()[0] ?? 0;
  const choice = await initBackend({ request: options.backend, log: say });
  if (loadBefore > 0.5) say(`warning: load average ${loadBefore.toFixed(2)} before the run; figures will be low`);

  const model = buildReferenceResNet();
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
  const flopsPerImage = forwardFlopsPerImage(model);
  const images = tf.tensor4d(seededValues(options.batch * 28 * 28, 1), [options.batch, 28, 28, 1]);
  const labels = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: options.batch }, (_, i) => i % 10),
      'int32',
    ),
    10,
  );

  const inferImgS = async (inferenceModel: tfl.LayersModel, batch: number, label: string): Promise<number> => {
    const input = tf.tensor4d(seededValues(batch * 28 * 28, 2), [batch, 28, 28, 1]);
    const rate = await measure(options.warmup, options.inferSeconds, batch, async () => {
      const output = inferenceModel.predict(input) as tf.Tensor;
      await output.data();
      output.dispose();
    });
    input.dispose();
    say(`  infer batch ${batch}${label}: ${rate.toFixed(1)} img/s`);
    return rate;
  };
  // Shared 2-core machines are noisy: alternate ours and PyTorch and keep medians.
  const trainRuns: number[] = [];
  const inferB1Runs: number[] = [];
  const inferB32Runs: number[] = [];
  const inferB32UnfoldedRuns: number[] = [];
  const torchRuns: TorchFigures[] = [];
  for (let pass = 1; pass <= options.repeat; pass++) {
    if (options.repeat > 1) say(`pass ${pass}/${options.repeat}`);
    say(`training batch ${options.batch}: ${options.warmup} warm-up steps, then ${options.trainSeconds}s`);
    const trainImgS = await measure(options.warmup, options.trainSeconds, options.batch, async () => {
      await model.trainOnBatch(images, labels);
    });
    say(`  train ${trainImgS.toFixed(1)} img/s (${((trainImgS * 3 * flopsPerImage) / 1e9).toFixed(1)} GFLOP/s)`);
    if (options.profile && pass === 1) await profileStep(() => model.trainOnBatch(images, labels), say);
    trainRuns.push(trainImgS);
    // Folded from the weights as trained so far, as the teacher service folds each model it loads.
    const { model: folded } = await foldBatchNorm(model);
    inferB1Runs.push(await inferImgS(folded, 1, ''));
    inferB32Runs.push(await inferImgS(folded, 32, ''));
    inferB32UnfoldedRuns.push(await inferImgS(model, 32, ' (unfolded layers model)'));
    folded.dispose();
    if (options.vsTorch) {
      const torch = runTorchReference(options, say);
      if (torch === undefined) break;
      torchRuns.push(torch);
    }
  }
  const trainImgS = median(trainRuns);
  const inferB1 = median(inferB1Runs);
  const inferB32 = median(inferB32Runs);

  tf.dispose([images, labels]);
  model.dispose();
  const result: TrainBenchResult = {
    backend: choice.backend,
    native: choice.native,
    threads: choice.threads,
    batch: options.batch,
    train_img_s: round(trainImgS),
    infer_img_s_b1: round(inferB1),
    infer_img_s_b32: round(inferB32),
    infer_img_s_b32_unfolded: round(median(inferB32UnfoldedRuns)),
    flops_per_img: flopsPerImage,
    train_gflop_s: round((trainImgS * 3 * flopsPerImage) / 1e9),
    load_before: round(loadBefore),
    repeats: trainRuns.length,
  };
  if (torchRuns.length > 0) {
    const torchTrain = median(torchRuns.map((figures) => figures.train_img_s));
    const torchInfer = median(torchRuns.map((figures) => figures.infer_img_s_b32));
    result.torch_train_img_s = round(torchTrain);
    result.torch_infer_img_s_b32 = round(torchInfer);
    result.ratio_train = Math.round((trainImgS / torchTrain) * 100) / 100;
    result.ratio_infer_b32 = Math.round((inferB32 / torchInfer) * 100) / 100;
    const torchFused = median(torchRuns.map((figures) => figures.infer_img_s_b32_fused));
    result.torch_infer_img_s_b32_fused = round(torchFused);
    result.ratio_infer_b32_vs_fused = Math.round((inferB32 / torchFused) * 100) / 100;
  }
  if (!options.json) say('');
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

interface TorchFigures {
  torch_version: string;
  threads: number;
  train_img_s: number;
  infer_img_s_b32: number;
  infer_img_s_b32_fused: number;
}

/** Runs bench/torch_reference.py after our own measurement (never concurrently: they share the cores). */
function runTorchReference(options: BenchOptions, say: (line: string) => void): TorchFigures | undefined {
  const script = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'torch_reference.py');
  say('PyTorch: the same reference ResNet, NCHW and channels_last (the faster of each counts), 2 threads');
  // Debian's python3-torch lives in the system Python, which may not be the first python3 on PATH.
  const python = process.env['NS_TORCH_PYTHON'] ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
  const run = spawnSync(
    python,
    [
      script,
      '--threads',
      '2',
      '--batch',
      String(options.batch),
      '--train-seconds',
      String(options.trainSeconds),
      '--infer-seconds',
      String(options.inferSeconds),
    ],
    { encoding: 'utf8' },
  );
  if (run.error !== undefined || run.status !== 0) {
    const why = run.error?.message ?? run.stderr.trim().split('\n').slice(-1)[0] ?? `exit status ${run.status}`;
    say(`  skipped: PyTorch did not run (${why}); install Debian's python3-torch to compare`);
    return undefined;
  }
  const figures = JSON.parse(run.stdout.trim().split('\n').slice(-1)[0] ?? '{}') as TorchFigures;
  say(
    `  torch ${figures.torch_version}, ${figures.threads} threads: train ${figures.train_img_s} img/s, infer batch 32 ${figures.infer_img_s_b32} img/s (BN fused: ${figures.infer_img_s_b32_fused})`,
  );
  return figures;
}

/** Images per second over at least `seconds` of repeated `step`s, after `warmup` untimed ones. */
async function measure(warmup: number, seconds: number, imagesPerStep: number, step: () => Promise<void>) {
  for (let i = 0; i < warmup; i++) await step();
  let steps = 0;
  const start = performance.now();
  while (performance.now() - start < seconds * 1000) {
    await step();
    steps++;
  }
  return (steps * imagesPerStep) / ((performance.now() - start) / 1000);
}

async function profileStep(step: () => Promise<unknown>, say: (line: string) => void): Promise<void> {
  const profile = await tf.profile(async () => {
    await step();
  });
  const byKernel = new Map<string, { ms: number; calls: number }>();
  // Fused ops also appear as `<name>__op` wrappers around their kernel: count the kernels only.
  const kernels = profile.kernels.filter((kernel) => !kernel.name.endsWith('__op'));
  for (const kernel of kernels) {
    const entry = byKernel.get(kernel.name) ?? { ms: 0, calls: 0 };
    entry.ms += Number(kernel.kernelTimeMs);
    entry.calls++;
    byKernel.set(kernel.name, entry);
  }
  const total = [...byKernel.values()].reduce((sum, entry) => sum + entry.ms, 0);
  say(`  one training step: ${total.toFixed(0)} ms in ${kernels.length} kernel calls`);
  for (const [name, entry] of [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 15)) {
    say(`    ${name.padEnd(28)} ${entry.ms.toFixed(1).padStart(7)} ms  ${String(entry.calls).padStart(4)} calls`);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

runMain('bench:train', main);
