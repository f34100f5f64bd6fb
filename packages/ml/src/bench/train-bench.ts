import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import { initBackend } from '../backend/select-backend.js';
import { integerOption, positiveNumberOption, runMain } from '../cli/options.js';
import { medianSpread } from './median-spread.js';
import { foldBatchNorm } from '../models/fold-batch-norm.js';
import { buildReferenceResNet, forwardFlopsPerImage } from '../models/reference-resnet.js';
import { seededValues } from '../random.js';

interface BenchOptions {
  json: boolean;
  backend?: string;
  batch: number;
  trainSeconds: number;
  inferSeconds: number;
  warmup: number;
  profile: boolean;
  vsTorch: boolean;
  repeat: number;
}

/** Our figures of one pass. */
interface OurFigures {
  train_img_s: number;
  infer_img_s_b1: number;
  infer_img_s_b32: number;
  infer_img_s_b32_unfolded: number;
}

/** One pass of ours and the PyTorch pass right after it, with their ratios (ours / PyTorch). */
export interface BenchPair {
  train_img_s: number;
  infer_img_s_b32: number;
  infer_img_s_b32_unfolded: number;
  torch_train_img_s: number;
  torch_infer_img_s_b32_fused: number;
  torch_infer_img_s_b32: number;
  ratio_train: number;
  ratio_infer_b32: number;
  ratio_infer_b32_unfolded: number;
}

/**
 * The figures `npm run bench:train -- --json` prints as its final line. Rates are medians over
 * the passes; a ratio is the median of the per-pair ratios (never a ratio of medians), with the
 * lowest and highest of them in `_min` and `_max`.
 */
export interface TrainBenchResult {
  backend: string;
  native: boolean;
  /** Threads our kernels compute with; PyTorch is given as many. */
  threads: number;
  /** `model name` of /proc/cpuinfo. */
  cpu_model: string;
  /** The widest vector instructions the CPU offers (the kernels' libraries pick theirs at run time). */
  cpu_isa: CpuIsa;
  batch: number;
  train_img_s: number;
  /** Inference as the services run it: batch normalisation folded into the convolutions (foldBatchNorm). */
  infer_img_s_b1: number;
  infer_img_s_b32: number;
  /** The layers model as trained, batch normalisation and ReLU as their own kernels. */
  infer_img_s_b32_unfolded: number;
  flops_per_img: number;
  train_gflop_s: number;
  /** One-minute load average before the first measurement. */
  load_before: number;
  /** Passes of ours (with --vs-torch each followed by one of PyTorch: a pair). */
  repeats: number;
  torch_version?: string;
  /** What `torch.get_num_threads()` reported after `torch.set_num_threads(threads)`. */
  torch_threads?: number;
  torch_train_img_s?: number;
  /** PyTorch with its batch normalisations fused into the convolutions (torch.fx), as our services fold them. */
  torch_infer_img_s_b32_fused?: number;
  /** PyTorch's eval-mode model, batch normalisation as its own kernel. */
  torch_infer_img_s_b32?: number;
  ratio_train?: number;
  ratio_train_min?: number;
  ratio_train_max?: number;
  /** Folded against PyTorch fused: the like-for-like inference figure. */
  ratio_infer_b32?: number;
  ratio_infer_b32_min?: number;
  ratio_infer_b32_max?: number;
  /** Our unfolded layers model against PyTorch's eval-mode model. */
  ratio_infer_b32_unfolded?: number;
  ratio_infer_b32_unfolded_min?: number;
  ratio_infer_b32_unfolded_max?: number;
  pairs?: BenchPair[];
}

type CpuIsa = 'AVX-512' | 'AVX2' | 'older than AVX2' | 'unknown';

const program = new Command()
  .name('bench:train')
  .description(
    'Times training and inference of the reference ResNet (28×28×1, ~152k parameters) on the chosen TensorFlow.js backend.',
  )
  .option('--json', 'print only the final JSON line on stdout', false)
  .option('--backend <name>', 'auto | tensorflow | wasm | cpu (default: NS_BACKEND, else auto)')
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
    'passes (with --vs-torch: pairs, ours then PyTorch); medians and ranges over them',
    integerOption('--repeat', 1, 20),
    1,
  )
  .option(
    '--vs-torch',
    "after each of our passes, time the same model in PyTorch (Debian's python3-torch) on as many threads",
    false,
  )
  .addHelpText(
    'after',
    '\nTargets on a 2-core x86-64: plain wasm train_img_s ≥ 40 and infer_img_s_b32 ≥ 250; with native kernels ratio_train ≥ 1 and ratio_infer_b32 ≥ 1 (folded against PyTorch fused) with --vs-torch.',
  );

async function main(): Promise<void> {
  const options = program.parse().opts<BenchOptions>();
  const say = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  const loadBefore = loadavg()[0] ?? 0;
  // NS_BACKEND is read by initBackend when no --backend is given.
  const choice = await initBackend({ request: options.backend, log: say });
  if (loadBefore > 0.5) say(`warning: load average ${loadBefore.toFixed(2)} before the run; figures will be low`);
  const cpu = cpuDescription();
  // The tensorflow backend reports 0 (libtensorflow picks its own): PyTorch then gets one per core.
  const threads = choice.threads > 0 ? choice.threads : availableParallelism();
  say(`CPU: ${cpu.model} (${cpu.isa}); ${threads} threads on both sides`);

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
  const ourPass = async (pass: number): Promise<OurFigures> => {
    say(`training batch ${options.batch}: ${options.warmup} warm-up steps, then ${options.trainSeconds}s`);
    const trainImgS = await measure(options.warmup, options.trainSeconds, options.batch, async () => {
      await model.trainOnBatch(images, labels);
    });
    say(`  train ${trainImgS.toFixed(1)} img/s (${((trainImgS * 3 * flopsPerImage) / 1e9).toFixed(1)} GFLOP/s)`);
    if (options.profile && pass === 1) await profileStep(() => model.trainOnBatch(images, labels), say);
    // Folded from the weights as trained so far, as the teacher service folds each model it loads.
    const { model: folded } = await foldBatchNorm(model);
    try {
      return {
        train_img_s: trainImgS,
        infer_img_s_b1: await inferImgS(folded, 1, ''),
        infer_img_s_b32: await inferImgS(folded, 32, ''),
        infer_img_s_b32_unfolded: await inferImgS(model, 32, ' (unfolded layers model)'),
      };
    } finally {
      folded.dispose();
    }
  };

  // Shared machines are noisy and drift: each of our passes is paired with a PyTorch pass right
  // after it, and ratios are taken within a pair.
  const ours: OurFigures[] = [];
  const torchRuns: TorchFigures[] = [];
  let withTorch = options.vsTorch;
  for (let pass = 1; pass <= options.repeat; pass++) {
    if (options.repeat > 1) say(`pass ${pass}/${options.repeat}`);
    ours.push(await ourPass(pass));
    if (withTorch) {
      const torch = runTorchReference(options, threads, say);
      if (torch === undefined) withTorch = false;
      else torchRuns.push(torch);
    }
  }
  tf.dispose([images, labels]);
  model.dispose();

  const middle = (pick: (figures: OurFigures) => number): number => medianSpread(ours.map(pick)).median;
  const trainImgS = middle((figures) => figures.train_img_s);
  const result: TrainBenchResult = {
    backend: choice.backend,
    native: choice.native,
    threads,
    cpu_model: cpu.model,
    cpu_isa: cpu.isa,
    batch: options.batch,
    train_img_s: round(trainImgS),
    infer_img_s_b1: round(middle((figures) => figures.infer_img_s_b1)),
    infer_img_s_b32: round(middle((figures) => figures.infer_img_s_b32)),
    infer_img_s_b32_unfolded: round(middle((figures) => figures.infer_img_s_b32_unfolded)),
    flops_per_img: flopsPerImage,
    train_gflop_s: round((trainImgS * 3 * flopsPerImage) / 1e9),
    load_before: round(loadBefore, 2),
    repeats: ours.length,
  };
  const pairs = torchRuns.map((torch, index): BenchPair => {
    const our = ours[index];
    if (our === undefined) throw new Error(`pair ${index + 1}: no pass of ours before PyTorch's`);
    return {
      train_img_s: round(our.train_img_s),
      infer_img_s_b32: round(our.infer_img_s_b32),
      infer_img_s_b32_unfolded: round(our.infer_img_s_b32_unfolded),
      torch_train_img_s: torch.train_img_s,
      torch_infer_img_s_b32_fused: torch.infer_img_s_b32_fused,
      torch_infer_img_s_b32: torch.infer_img_s_b32,
      ratio_train: round(our.train_img_s / torch.train_img_s, 2),
      ratio_infer_b32: round(our.infer_img_s_b32 / torch.infer_img_s_b32_fused, 2),
      ratio_infer_b32_unfolded: round(our.infer_img_s_b32_unfolded / torch.infer_img_s_b32, 2),
    };
  });
  const [firstTorch] = torchRuns;
  if (firstTorch !== undefined) {
    const over = (pick: (pair: BenchPair) => number) => medianSpread(pairs.map(pick));
    const train = over((pair) => pair.ratio_train);
    const infer = over((pair) => pair.ratio_infer_b32);
    const inferUnfolded = over((pair) => pair.ratio_infer_b32_unfolded);
    Object.assign(result, {
      torch_version: firstTorch.torch_version,
      torch_threads: firstTorch.threads,
      torch_train_img_s: round(over((pair) => pair.torch_train_img_s).median),
      torch_infer_img_s_b32_fused: round(over((pair) => pair.torch_infer_img_s_b32_fused).median),
      torch_infer_img_s_b32: round(over((pair) => pair.torch_infer_img_s_b32).median),
      ratio_train: round(train.median, 2),
      ratio_train_min: train.min,
      ratio_train_max: train.max,
      ratio_infer_b32: round(infer.median, 2),
      ratio_infer_b32_min: infer.min,
      ratio_infer_b32_max: infer.max,
      ratio_infer_b32_unfolded: round(inferUnfolded.median, 2),
      ratio_infer_b32_unfolded_min: inferUnfolded.min,
      ratio_infer_b32_unfolded_max: inferUnfolded.max,
      pairs,
    } satisfies Partial<TrainBenchResult>);
  }
  if (!options.json) say('');
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** The CPU's name and its widest vector instructions, from /proc/cpuinfo (Linux). */
function cpuDescription(): { model: string; isa: CpuIsa } {
  let cpuinfo = '';
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return { model: cpus()[0]?.model ?? 'unknown', isa: 'unknown' };
  }
  const field = (name: string): string | undefined =>
    new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(cpuinfo)?.[1]?.trim();
  const flags = new Set((field('flags') ?? '').split(/\s+/));
  const isa: CpuIsa = flags.has('avx512f') ? 'AVX-512' : flags.has('avx2') ? 'AVX2' : 'older than AVX2';
  return { model: field('model name') ?? cpus()[0]?.model ?? 'unknown', isa };
}

interface TorchFigures {
  torch_version: string;
  threads: number;
  train_img_s: number;
  infer_img_s_b32: number;
  infer_img_s_b32_fused: number;
}

/** Runs bench/torch_reference.py after our own measurement (never concurrently: they share the cores). */
function runTorchReference(
  options: BenchOptions,
  threads: number,
  say: (line: string) => void,
): TorchFigures | undefined {
  const script = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'torch_reference.py');
  say(`PyTorch: the same reference ResNet, NCHW and channels_last (the faster of each counts), ${threads} threads`);
  // Debian's python3-torch lives in the system Python, which may not be the first python3 on PATH.
  const python = process.env['NS_TORCH_PYTHON'] ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
  const run = spawnSync(
    python,
    [
      script,
      '--threads',
      String(threads),
      '--batch',
      String(options.batch),
      '--train-seconds',
      String(options.trainSeconds),
      '--infer-seconds',
      String(options.inferSeconds),
      '--warmup',
      String(options.warmup),
    ],
    { encoding: 'utf8' },
  );
  if (run.error !== undefined || run.status !== 0) {
    const why = run.error?.message ?? run.stderr.trim().split('\n').slice(-1)[0] ?? `exit status ${run.status}`;
    say(`  skipped: PyTorch did not run (${why}); install Debian's python3-torch to compare`);
    return undefined;
  }
  const figures = JSON.parse(run.stdout.trim().split('\n').slice(-1)[0] ?? '{}') as TorchFigures;
  if (figures.threads !== threads) say(`  warning: PyTorch runs on ${figures.threads} threads, asked for ${threads}`);
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

function round(value: number, digits = 1): number {
  return Number(value.toFixed(digits));
}

runMain('bench:train', main);
