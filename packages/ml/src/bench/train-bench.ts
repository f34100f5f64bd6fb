import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import { initBackend } from '../backend/select-backend.js';
import { integerOption, positiveNumberOption, runMain } from '../cli/options.js';
import { medianSpread } from './median-spread.js';
import { foldBatchNorm } from '../models/fold-batch-norm.js';
import { nativeInferenceGraph } from '../models/native-graph.js';
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
  vsOrt: boolean;
  repeat: number;
}

/** Our figures of one pass. */
interface OurFigures {
  train_img_s: number;
  /** Inference as the teacher serves it: the native graph when the model compiles, else tfjs. */
  infer_img_s_b1: number;
  infer_img_s_b32: number;
  /** The folded model on tfjs' kernels (the native ones, one per layer). */
  infer_img_s_b1_tfjs: number;
  infer_img_s_b32_tfjs: number;
  infer_img_s_b32_unfolded: number;
}

/** One pass of ours and the peers' passes right after it, with their ratios (ours / theirs). */
export interface BenchPair {
  train_img_s: number;
  infer_img_s_b1: number;
  infer_img_s_b32: number;
  infer_img_s_b32_unfolded: number;
  torch_train_img_s?: number;
  torch_infer_img_s_b32_fused?: number;
  torch_infer_img_s_b32?: number;
  ort_infer_img_s_b1?: number;
  ort_infer_img_s_b32?: number;
  ratio_train?: number;
  ratio_infer_b32?: number;
  ratio_infer_b32_unfolded?: number;
  ratio_infer_b1_ort?: number;
  ratio_infer_b32_ort?: number;
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
  /**
   * Inference as the teacher serves it: batch normalisation folded into the convolutions
   * (foldBatchNorm), run as one native graph (`engine`) when the model compiles.
   */
  infer_img_s_b1: number;
  infer_img_s_b32: number;
  /** What ran inference: "native graph" or "tfjs (<why not the graph>)". */
  engine: string;
  /** The folded model on tfjs, one kernel per layer. */
  infer_img_s_b1_tfjs: number;
  infer_img_s_b32_tfjs: number;
  /** The layers model as trained, batch normalisation and ReLU as their own kernels. */
  infer_img_s_b32_unfolded: number;
  flops_per_img: number;
  train_gflop_s: number;
  /** One-minute load average before the first measurement. */
  load_before: number;
  /** Passes of ours (with --vs-torch / --vs-ort each followed by one of each peer: a pair). */
  repeats: number;
  /** Each side's memory layout (PyTorch: the faster of NCHW and channels_last, per figure). */
  layouts: { ours: string; torch?: string; ort?: string };
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
  ort_version?: string;
  ort_threads?: number;
  ort_infer_img_s_b1?: number;
  ort_infer_img_s_b32?: number;
  ratio_infer_b1_ort?: number;
  ratio_infer_b1_ort_min?: number;
  ratio_infer_b1_ort_max?: number;
  ratio_infer_b32_ort?: number;
  ratio_infer_b32_ort_min?: number;
  ratio_infer_b32_ort_max?: number;
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
  .option(
    '--vs-ort',
    'after each of our passes, time the same model in ONNX Runtime (onnxruntime-node, on the ONNX file PyTorch exports) on as many threads',
    false,
  )
  .addHelpText(
    'after',
    '\nRatios are ours / theirs, the median (and _min, _max) of the per-pair ratios. Targets on a 2-core x86-64 with native kernels: ratio_train ≥ 1.2 (PyTorch at its faster layout), ratio_infer_b32_ort ≥ 1.1, ratio_infer_b1_ort ≥ 1.0.',
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
  let engine = 'tfjs';
  const ourPass = async (pass: number): Promise<OurFigures> => {
    say(`training batch ${options.batch}: ${options.warmup} warm-up steps, then ${options.trainSeconds}s`);
    const trainImgS = await measure(options.warmup, options.trainSeconds, options.batch, async () => {
      await model.trainOnBatch(images, labels);
    });
    say(`  train ${trainImgS.toFixed(1)} img/s (${((trainImgS * 3 * flopsPerImage) / 1e9).toFixed(1)} GFLOP/s)`);
    if (options.profile && pass === 1) await profileStep(() => model.trainOnBatch(images, labels), say);
    // Folded from the weights as trained so far, as the teacher service folds each model it loads,
    // and run as it runs it: one native graph when the model compiles.
    const { model: folded } = await foldBatchNorm(model);
    try {
      const native = nativeInferenceGraph(folded);
      engine = native.ok ? 'native graph' : `tfjs (${native.reason})`;
      const tfjsB1 = await inferImgS(folded, 1, ' (tfjs)');
      const tfjsB32 = await inferImgS(folded, 32, ' (tfjs)');
      const graphImgS = async (batch: number): Promise<number> => {
        if (!native.ok) return batch === 1 ? tfjsB1 : tfjsB32;
        const input = Float32Array.from(seededValues(batch * 28 * 28, 2));
        const rate = await measure(options.warmup, options.inferSeconds, batch, () => {
          native.graph.run(input, batch);
          return Promise.resolve();
        });
        say(`  infer batch ${batch} (native graph): ${rate.toFixed(1)} img/s`);
        return rate;
      };
      return {
        train_img_s: trainImgS,
        infer_img_s_b1: await graphImgS(1),
        infer_img_s_b32: await graphImgS(32),
        infer_img_s_b1_tfjs: tfjsB1,
        infer_img_s_b32_tfjs: tfjsB32,
        infer_img_s_b32_unfolded: await inferImgS(model, 32, ' (unfolded layers model)'),
      };
    } finally {
      folded.dispose();
    }
  };

  // Shared machines are noisy and drift: each of our passes is followed by one pass of each peer,
  // and ratios are taken within such a pair, never across passes.
  const workDirectory = mkdtempSync(join(tmpdir(), 'ns-bench-train-'));
  let onnxFile = options.vsOrt ? exportOnnx(workDirectory, say) : undefined;
  const ours: OurFigures[] = [];
  const torchRuns: Array<TorchFigures | undefined> = [];
  const ortRuns: Array<OrtFigures | undefined> = [];
  let withTorch = options.vsTorch;
  try {
    for (let pass = 1; pass <= options.repeat; pass++) {
      if (options.repeat > 1) say(`pass ${pass}/${options.repeat}`);
      ours.push(await ourPass(pass));
      const torch = withTorch ? runTorchReference(options, threads, say) : undefined;
      if (torch === undefined) withTorch = false;
      torchRuns.push(torch);
      const ort = onnxFile === undefined ? undefined : runOrtReference(onnxFile, options, threads, say);
      if (ort === undefined) onnxFile = undefined;
      ortRuns.push(ort);
    }
  } finally {
    rmSync(workDirectory, { recursive: true, force: true });
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
    engine,
    infer_img_s_b1_tfjs: round(middle((figures) => figures.infer_img_s_b1_tfjs)),
    infer_img_s_b32_tfjs: round(middle((figures) => figures.infer_img_s_b32_tfjs)),
    infer_img_s_b32_unfolded: round(middle((figures) => figures.infer_img_s_b32_unfolded)),
    flops_per_img: flopsPerImage,
    train_gflop_s: round((trainImgS * 3 * flopsPerImage) / 1e9),
    load_before: round(loadBefore, 2),
    repeats: ours.length,
    layouts: {
      ours: engine === 'native graph' ? 'NHWC (training); oneDNN blocked (inference graph)' : 'NHWC',
    },
  };
  const pairs = ours.map((our, index): BenchPair => {
    const torch = torchRuns[index];
    const ort = ortRuns[index];
    return {
      train_img_s: round(our.train_img_s),
      infer_img_s_b1: round(our.infer_img_s_b1),
      infer_img_s_b32: round(our.infer_img_s_b32),
      infer_img_s_b32_unfolded: round(our.infer_img_s_b32_unfolded),
      ...(torch === undefined
        ? {}
        : {
            torch_train_img_s: torch.train_img_s,
            torch_infer_img_s_b32_fused: torch.infer_img_s_b32_fused,
            torch_infer_img_s_b32: torch.infer_img_s_b32,
            ratio_train: round(our.train_img_s / torch.train_img_s, 2),
            ratio_infer_b32: round(our.infer_img_s_b32 / torch.infer_img_s_b32_fused, 2),
            ratio_infer_b32_unfolded: round(our.infer_img_s_b32_unfolded / torch.infer_img_s_b32, 2),
          }),
      ...(ort === undefined
        ? {}
        : {
            ort_infer_img_s_b1: ort.infer_img_s_b1,
            ort_infer_img_s_b32: ort.infer_img_s_b32,
            ratio_infer_b1_ort: round(our.infer_img_s_b1 / ort.infer_img_s_b1, 2),
            ratio_infer_b32_ort: round(our.infer_img_s_b32 / ort.infer_img_s_b32, 2),
          }),
    };
  });
  /** Median, min and max of a per-pair figure over the pairs that have it. */
  const over = (pick: (pair: BenchPair) => number | undefined) =>
    medianSpread(pairs.map(pick).filter((value): value is number => value !== undefined));
  const [firstTorch] = torchRuns;
  if (firstTorch !== undefined && withTorch) {
    const train = over((pair) => pair.ratio_train);
    const infer = over((pair) => pair.ratio_infer_b32);
    const inferUnfolded = over((pair) => pair.ratio_infer_b32_unfolded);
    result.layouts.torch = `${firstTorch.train_layout} (training), ${firstTorch.infer_layout} (inference)`;
    Object.assign(result, {
      torch_version: firstTorch.torch_version,
      torch_threads: firstTorch.threads,
      torch_train_img_s: round(over((pair) => pair.torch_train_img_s).median),
      torch_infer_img_s_b32_fused: round(over((pair) => pair.torch_infer_img_s_b32_fused).median),
      torch_infer_img_s_b32: round(over((pair) => pair.torch_infer_img_s_b32).median),
      ...ratioFields('ratio_train', train),
      ...ratioFields('ratio_infer_b32', infer),
      ...ratioFields('ratio_infer_b32_unfolded', inferUnfolded),
    } satisfies Partial<TrainBenchResult>);
  }
  const [firstOrt] = ortRuns;
  if (firstOrt !== undefined && onnxFile !== undefined) {
    const b1 = over((pair) => pair.ratio_infer_b1_ort);
    const b32 = over((pair) => pair.ratio_infer_b32_ort);
    result.layouts.ort = 'NCHW in; its own blocked layout inside';
    Object.assign(result, {
      ort_version: firstOrt.ort_version,
      ort_threads: firstOrt.threads,
      ort_infer_img_s_b1: round(over((pair) => pair.ort_infer_img_s_b1).median),
      ort_infer_img_s_b32: round(over((pair) => pair.ort_infer_img_s_b32).median),
      ...ratioFields('ratio_infer_b1_ort', b1),
      ...ratioFields('ratio_infer_b32_ort', b32),
    } satisfies Partial<TrainBenchResult>);
  }
  if (withTorch || onnxFile !== undefined) result.pairs = pairs;
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
  layouts: Record<string, { train_img_s: number; infer_img_s_b32_fused: number }>;
  /** The layouts the figures above come from (the faster of each). */
  train_layout: string;
  infer_layout: string;
}

interface OrtFigures {
  ort_version: string;
  threads: number;
  infer_img_s_b1: number;
  infer_img_s_b32: number;
}

const TORCH_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'torch_reference.py');

/** Debian's python3-torch lives in the system Python, which may not be the first python3 on PATH. */
function torchPython(): string {
  return process.env['NS_TORCH_PYTHON'] ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
}

/** Why a child failed (its spawn error, else its last line on stderr), or undefined when it exited 0. */
function failureOf(run: ReturnType<typeof spawnSync>): string | undefined {
  if (run.error === undefined && run.status === 0) return undefined;
  return (
    run.error?.message ??
    String(run.stderr ?? '')
      .trim()
      .split('\n')
      .slice(-1)[0] ??
    `exit status ${run.status}`
  );
}

/** The last line of a child's stdout as JSON, or why the child did not give one. */
function childJson<T>(run: ReturnType<typeof spawnSync>): { ok: true; value: T } | { ok: false; why: string } {
  const failure = failureOf(run);
  if (failure !== undefined) return { ok: false, why: failure };
  const stdout = String(run.stdout ?? '');
  try {
    return { ok: true, value: JSON.parse(stdout.trim().split('\n').slice(-1)[0] ?? '') as T };
  } catch {
    return { ok: false, why: `no JSON line on its stdout (${stdout.slice(-200)})` };
  }
}

/** The PyTorch reference exported as ONNX (BN fused, NCHW, dynamic batch) into `directory`, or undefined with the reason said. */
function exportOnnx(directory: string, say: (line: string) => void): string | undefined {
  const file = join(directory, 'reference-resnet.onnx');
  const run = spawnSync(torchPython(), [TORCH_SCRIPT, '--threads', '1', '--export-onnx', file, '--only-export'], {
    encoding: 'utf8',
  });
  const failure = failureOf(run) ?? (existsSync(file) ? undefined : `${file} was not written`);
  if (failure !== undefined) {
    say(`ONNX Runtime skipped: the ONNX export needs Debian's python3-torch (${failure})`);
    return undefined;
  }
  return file;
}

/** Runs ort-reference.js (ONNX Runtime in a process of its own) after our measurement. */
function runOrtReference(
  onnxFile: string,
  options: BenchOptions,
  threads: number,
  say: (line: string) => void,
): OrtFigures | undefined {
  say(`ONNX Runtime: the same model (exported from PyTorch), ${threads} threads`);
  const script = join(dirname(fileURLToPath(import.meta.url)), 'ort-reference.js');
  const run = spawnSync(
    process.execPath,
    [script, '--model', onnxFile, '--threads', String(threads), '--seconds', String(options.inferSeconds)],
    { encoding: 'utf8' },
  );
  const parsed = childJson<OrtFigures>(run);
  if (!parsed.ok) {
    say(`  skipped: ONNX Runtime did not run (${parsed.why}); \`npm ci\` installs onnxruntime-node`);
    return undefined;
  }
  const figures = parsed.value;
  say(
    `  onnxruntime ${figures.ort_version}: infer batch 1 ${figures.infer_img_s_b1} img/s, batch 32 ${figures.infer_img_s_b32} img/s`,
  );
  return figures;
}

/** Runs bench/torch_reference.py after our own measurement (never concurrently: they share the cores). */
function runTorchReference(
  options: BenchOptions,
  threads: number,
  say: (line: string) => void,
): TorchFigures | undefined {
  say(`PyTorch: the same reference ResNet, NCHW and channels_last (the faster of each counts), ${threads} threads`);
  const run = spawnSync(
    torchPython(),
    [
      TORCH_SCRIPT,
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
  const parsed = childJson<Omit<TorchFigures, 'train_layout' | 'infer_layout'>>(run);
  if (!parsed.ok) {
    say(`  skipped: PyTorch did not run (${parsed.why}); install Debian's python3-torch to compare`);
    return undefined;
  }
  const fastest = (pick: (figures: { train_img_s: number; infer_img_s_b32_fused: number }) => number): string =>
    Object.entries(parsed.value.layouts).reduce((best, entry) => (pick(entry[1]) > pick(best[1]) ? entry : best))[0];
  const figures: TorchFigures = {
    ...parsed.value,
    train_layout: fastest((layout) => layout.train_img_s),
    infer_layout: fastest((layout) => layout.infer_img_s_b32_fused),
  };
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

/** `name` (the median), `name_min` and `name_max` of a ratio's spread over the pairs. */
function ratioFields<Name extends string>(
  name: Name,
  spread: { median: number; min: number; max: number },
): Record<Name | `${Name}_min` | `${Name}_max`, number> {
  return { [name]: round(spread.median, 2), [`${name}_min`]: spread.min, [`${name}_max`]: spread.max } as Record<
    Name | `${Name}_min` | `${Name}_max`,
    number
  >;
}

function round(value: number, digits = 1): number {
  return Number(value.toFixed(digits));
}

runMain('bench:train', main);
