// npm run bench:serve -- --json: the reference model in-process at its best batch size, then the
// same model behind the teacher service (a child process, as deployed) under 64 concurrent unary
// callers and under one PredictStream with 256 requests in flight. Prints one JSON line.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import {
  buildReferenceResNet,
  decodeModelArtifact,
  encodeModelArtifact,
  FASHION_MNIST_CLASSES,
  initBackend,
  integerOption,
  positiveNumberOption,
  runMain,
  seededValues,
  withFoldedModel,
} from '@noisystudent/ml';
import { Dtype, TeacherClient, type Image, type PredictStreamResponse } from '@noisystudent/proto';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { HealthClient, spawnService, type SpawnedService } from '@noisystudent/runtime';

interface BenchOptions {
  json: boolean;
  seconds: number;
  clients: number;
  inFlight: number;
  maxQueueDelayMs: number;
  profileService?: string;
}

const program = new Command()
  .name('bench:serve')
  .description('Throughput and latency of the teacher service against in-process predict, on the reference ResNet.')
  .option('--json', 'print only the final JSON line on stdout', false)
  .option('--seconds <s>', 'measured time per phase', positiveNumberOption('--seconds'), 8)
  .option('--clients <n>', 'concurrent unary callers', integerOption('--clients'), 64)
  .option('--in-flight <n>', 'PredictStream requests kept in flight', integerOption('--in-flight'), 256)
  .option('--profile-service <dir>', 'write a V8 CPU profile of the service process into this folder')
  .option(
    '--max-queue-delay-ms <ms>',
    "the service's maxQueueDelayMs",
    positiveNumberOption('--max-queue-delay-ms'),
    2,
  );

const round = (value: number, digits = 1): number => Number(value.toFixed(digits));

function percentile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? NaN;
}

/** In-process predictOnBatch at several batch sizes: images per second of the best and its size. */
function bestInProcess(model: ReturnType<typeof buildReferenceResNet>, seconds: number, say: (line: string) => void) {
  let best = { batch: 1, imagesPerSecond: 0, batchMs: 0 };
  for (const batch of [1, 8, 16, 32, 64, 128]) {
    const input = tf.tensor4d(
      seededValues(batch * 28 * 28, batch).map((value) => (value + 1) * 127.5),
      [batch, 28, 28, 1],
    );
    const step = (): void => {
      tf.tidy(() => (model.predictOnBatch(input) as tf.Tensor).dataSync());
    };
    step();
    step();
    let images = 0;
    const started = performance.now();
    while (performance.now() - started < (seconds * 1000) / 4) {
      step();
      images += batch;
    }
    const elapsed = (performance.now() - started) / 1000;
    input.dispose();
    const imagesPerSecond = images / elapsed;
    say(`in-process batch ${batch}: ${imagesPerSecond.toFixed(0)} img/s`);
    if (imagesPerSecond > best.imagesPerSecond)
      best = { batch, imagesPerSecond, batchMs: (1000 * batch) / imagesPerSecond };
  }
  return best;
}

/** Starts services/teacher/dist/main.js on a model file; resolves once its health says it serves the model. */
async function startService(
  modelFile: string,
  batch: number,
  maxQueueDelayMs: number,
  profileDirectory?: string,
): Promise<SpawnedService> {
  const service = await spawnService(fileURLToPath(new URL('../main.js', import.meta.url)), {
    args: [
      '--model-file',
      modelFile,
      '--port',
      '0',
      '--metrics-port',
      '0',
      '--log-level',
      'warn',
      '--max-batch-size',
      String(batch),
      '--max-queue-delay-ms',
      String(maxQueueDelayMs),
      '--max-queue-size',
      '4096',
    ],
    execArgv: profileDirectory === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDirectory],
    output: 'stderr',
  });
  const health = new HealthClient(service.address);
  try {
    // Listening comes first; SERVING once the model is loaded and warmed up.
    await health.waitFor('SERVING', '', 120_000);
  } catch (error) {
    await service.stop();
    throw error;
  } finally {
    health.close();
  }
  return service;
}

/**
 * Health-check latencies measured from a process of their own, every 50 ms for `seconds`: the
 * bench's own event loop is busy with its callers and would add its delays to the figure.
 */
async function probeHealth(port: number, seconds: number): Promise<number[]> {
  const runtime = import.meta.resolve('@noisystudent/runtime');
  const code = `
    const { HealthClient } = await import(${JSON.stringify(runtime)});
    const health = new HealthClient('127.0.0.1:${port}');
    const latencies = [];
    const until = performance.now() + ${seconds * 1000};
    while (performance.now() < until) {
      const started = performance.now();
      await health.check('', 5000);
      latencies.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    health.close();
    process.stdout.write(JSON.stringify(latencies));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [exitCode] = (await once(child, 'exit')) as [number | null];
  if (exitCode !== 0) throw new Error(`health prober exited with code ${exitCode}`);
  return JSON.parse(output) as number[];
}

async function meanBatch(metricsPort: number): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const read = (name: string): number =>
    Number(
      /^(\S+) (\S+)$/m.exec(
        text
          .split('\n')
          .filter((line) => line.startsWith(name + ' '))
          .join('\n'),
      )?.[2] ?? NaN,
    );
  return { sum: read('teacher_batch_size_sum'), count: read('teacher_batch_size_count') };
}

runMain('bench:serve', async () => {
  const options = program.parse().opts<BenchOptions>();
  const say = (line: string): void => void process.stderr.write(`${line}\n`);
  const loadBefore = loadavg()[0] ?? 0;
  const backend = await initBackend({ log: options.json ? () => undefined : say });
  const model = buildReferenceResNet({ seed: 1 });
  const artifact = await encodeModelArtifact(
    model,
    { version: 'bench', architecture: 'reference-resnet' },
    { height: 28, width: 28, channels: 1, classNames: FASHION_MNIST_CLASSES },
  );
  const loaded = (await decodeModelArtifact(artifact.bytes)).model;
  model.dispose();
  // Like for like: the service serves the batch-norm-folded copy, so the in-process figure does too.
  const inProcess = await withFoldedModel(loaded, async (folded) => bestInProcess(folded, options.seconds, say));
  loaded.dispose();

  const directory = await mkdtemp(join(tmpdir(), 'ns-bench-serve-'));
  const modelFile = join(directory, 'bench.nsmodel');
  await writeFile(modelFile, artifact.bytes);
  const service = await startService(modelFile, inProcess.batch, options.maxQueueDelayMs, options.profileService);
  try {
    const client = new TeacherClient(service.address, credentials.createInsecure());
    const pixels = Buffer.from(Uint8Array.from(seededValues(784, 5), (value) => Math.floor((value + 1) * 127.5)));
    const image: Image = {
      content: { $case: 'tensor', value: { shape: [28, 28, 1], dtype: Dtype.UINT8, data: pixels } },
    };
    const predictOne = (): Promise<void> =>
      new Promise((resolve, reject) =>
        client.predict({ images: [image], topK: 0 }, (error: ServiceError | null) =>
          error === null ? resolve() : reject(error),
        ),
      );

    const unaryPhase = async (seconds: number) => {
      const latencies: number[] = [];
      const healthLatencies: number[] = [];
      const until = performance.now() + seconds * 1000;
      const caller = async (): Promise<void> => {
        while (performance.now() < until) {
          const started = performance.now();
          await predictOne();
          latencies.push(performance.now() - started);
        }
      };
      const started = performance.now();
      const [probed] = await Promise.all([
        probeHealth(service.port, seconds),
        ...Array.from({ length: options.clients }, caller),
      ]);
      healthLatencies.push(...probed);
      return { imagesPerSecond: latencies.length / ((performance.now() - started) / 1000), latencies, healthLatencies };
    };

    const streamPhase = (seconds: number): Promise<number> =>
      new Promise((resolve, reject) => {
        const stream = client.predictStream();
        let sent = 0;
        let answered = 0;
        const started = performance.now();
        const until = started + seconds * 1000;
        const send = (): void => {
          stream.write({ id: String(sent++), image, topK: 0 });
        };
        stream.on('data', (answer: PredictStreamResponse) => {
          if (answer.result?.$case === 'error')
            reject(new Error(`stream request ${answer.id}: ${answer.result.value.message}`));
          answered++;
          if (performance.now() < until) send();
          else if (answered === sent) stream.end();
        });
        stream.on('end', () => resolve(answered / ((performance.now() - started) / 1000)));
        stream.on('error', reject);
        for (let index = 0; index < options.inFlight; index++) send();
      });

    say('warming up the service');
    await unaryPhase(Math.min(2, options.seconds));
    const before = await meanBatch(service.metricsPort);
    say(`unary: ${options.clients} callers × 1 image for ${options.seconds} s`);
    const unary = await unaryPhase(options.seconds);
    const afterUnary = await meanBatch(service.metricsPort);
    say(`stream: ${options.inFlight} requests in flight for ${options.seconds} s`);
    const streamImagesPerSecond = await streamPhase(options.seconds);
    const afterStream = await meanBatch(service.metricsPort);
    client.close();

    const latencies = unary.latencies.sort((a, b) => a - b);
    const healthLatencies = unary.healthLatencies.sort((a, b) => a - b);
    const p99TargetMs = options.maxQueueDelayMs + 2 * inProcess.batchMs;
    const result = {
      inprocess_img_s: round(inProcess.imagesPerSecond),
      grpc_unary_c64_img_s: round(unary.imagesPerSecond),
      grpc_stream_img_s: round(streamImagesPerSecond),
      ratio_unary: round(unary.imagesPerSecond / inProcess.imagesPerSecond, 2),
      ratio_stream: round(streamImagesPerSecond / inProcess.imagesPerSecond, 2),
      p50_ms: round(percentile(latencies, 0.5), 2),
      p99_ms: round(percentile(latencies, 0.99), 2),
      mean_batch: round((afterUnary.sum - before.sum) / (afterUnary.count - before.count), 1),
      mean_batch_stream: round((afterStream.sum - afterUnary.sum) / (afterStream.count - afterUnary.count), 1),
      batch_size: inProcess.batch,
      full_batch_ms: round(inProcess.batchMs, 2),
      p99_target_ms: round(p99TargetMs, 2),
      health_p99_ms: round(percentile(healthLatencies, 0.99), 2),
      clients: options.clients,
      backend: backend.backend,
      native: backend.native,
      load_before: round(loadBefore),
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    const code = await service.stop();
    if (code !== 0) say(`the service exited with code ${code}`);
    await rm(directory, { recursive: true, force: true });
  }
});
