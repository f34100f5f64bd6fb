// The reference ResNet in ONNX Runtime (onnxruntime-node, a benchmark-only dev dependency), timed
// like bench:train times ours: run by `bench:train --vs-ort` in a process of its own, on the ONNX
// file the PyTorch reference exports (BN fused, NCHW, batch dimension dynamic). Prints one JSON
// line: {"ort_version", "threads", "infer_img_s_b1", "infer_img_s_b32"}.
import { createRequire } from 'node:module';

import { Command } from 'commander';

import { integerOption, positiveNumberOption, runMain } from '../cli/options.js';

interface Options {
  model: string;
  threads: number;
  seconds: number;
  warmup: number;
}

interface OrtTensor {
  readonly dims: readonly number[];
}

interface OrtSession {
  readonly inputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>): Promise<unknown>;
}

interface OrtModule {
  InferenceSession: { create(path: string, options: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => OrtTensor;
}

const program = new Command()
  .name('ort-reference')
  .description('Times the reference ResNet in ONNX Runtime at batch 1 and 32 (used by bench:train --vs-ort).')
  .requiredOption('--model <file>', 'the ONNX file')
  .requiredOption('--threads <n>', 'intra-op threads', integerOption('--threads'))
  .option('--seconds <s>', 'measured time per batch size', positiveNumberOption('--seconds'), 3)
  .option('--warmup <n>', 'untimed runs first', integerOption('--warmup', 0), 20);

runMain('ort-reference', async () => {
  const options = program.parse().opts<Options>();
  const require = createRequire(import.meta.url);
  const ort = require('onnxruntime-node') as OrtModule;
  const version = (require('onnxruntime-node/package.json') as { version: string }).version;
  const session = await ort.InferenceSession.create(options.model, {
    intraOpNumThreads: options.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const inputName = session.inputNames[0] ?? 'x';
  const rate = async (batch: number): Promise<number> => {
    const input = new ort.Tensor('float32', new Float32Array(batch * 28 * 28).fill(0.5), [batch, 1, 28, 28]);
    for (let i = 0; i < options.warmup; i++) await session.run({ [inputName]: input });
    let runs = 0;
    const started = performance.now();
    while (performance.now() - started < options.seconds * 1000) {
      await session.run({ [inputName]: input });
      runs++;
    }
    return (runs * batch) / ((performance.now() - started) / 1000);
  };
  const b1 = await rate(1);
  const b32 = await rate(32);
  const round = (value: number): number => Number(value.toFixed(1));
  process.stdout.write(
    `${JSON.stringify({ ort_version: version, threads: options.threads, infer_img_s_b1: round(b1), infer_img_s_b32: round(b32) })}\n`,
  );
});
