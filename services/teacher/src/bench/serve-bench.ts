// npm run bench:serve -- --json: the reference model in-process at its best batch size, then the
// same model behind the teacher service (a child process, as deployed) under 64 concurrent unary
// callers and under one PredictStream with 256 requests in flight. Prints one JSON line.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  buildReferenceResNet,
  decodeModelArtifact,
  encodeModelArtifact,
  FASHION_MNIST_CLASSES,
  initBackend,
  integerOption,
  nativeInferenceGraph,
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

/** USER_HZ: the unit of /proc/<pid>/stat's times on Linux (100 on every common build). */
const CLOCK_TICKS_PER_SECOND = 100;

function percentile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? NaN;
}

/** The model in this process, run the way the service runs it: the native graph when it compiles, else tfjs. */
interface InProcessEngine {
  name: string;
  predict(input: Float32Array, batch: number): void;
}

function inProcessEngine(folded: tfl.LayersModel): InProcessEngine {
  const native = nativeInferenceGraph(folded);
  if (native.ok) return { name: 'native graph', predict: (input, batch) => void native.graph.run(input, batch) };
  return {
    name: `tfjs (${native.reason})`,
    predict: (input, batch) =>
      void tf.tidy(() => (folded.predictOnBatch(tf.tensor4d(input, [batch, 28, 28, 1])) as tf.Tensor).dataSync()),
  };
}

interface InProcessFigures {
  batch: number;
  imagesPerSecond: number;
  /** CPU time of this whole process (every thread) per image. */
  cpuMsPerImage: number;
  /** Wall time of one call, median. */
  callMsP50: number;
}

/** Repeated calls at one batch size for `seconds`: rate, CPU per image, median call time. */
function measureInProcess(engine: InProcessEngine, batch: number, seconds: number): InProcessFigures {
  const input = Float32Array.from(seededValues(batch * 28 * 28, batch), (value) => (value + 1) * 127.5);
  engine.predict(input, batch);
  engine.predict(input, batch);
  const calls: number[] = [];
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  while (performance.now() - started < seconds * 1000) {
    const callStarted = performance.now();
    engine.predict(input, batch);
    calls.push(performance.now() - callStarted);
  }
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const images = calls.length * batch;
  return {
    batch,
    imagesPerSecond: images / elapsed,
    cpuMsPerImage: (cpu.user + cpu.system) / 1000 / images,
    callMsP50: percentile(
      calls.sort((a, b) => a - b),
      0.5,
    ),
  };
}

/** Mean images per batch between two readings of `batchTotals`. */
function meanBatchBetween(before: { sum: number; count: number }, after: { sum: number; count: number }): number {
  return round((after.sum - before.sum) / (after.count - before.count), 1);
}

/** CPU seconds (user + system, every thread) a process has used so far, from /proc (Linux). */
function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
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

/** The teacher's batch-size histogram totals so far (images and batches), from /metrics. */
async function batchTotals(metricsPort: number): Promise<{ sum: number; count: number }> {
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
  // Like for like: the service serves the batch-norm-folded copy through the native graph when
  // it compiles, so the in-process figures do too. The best batch size becomes the service's.
  const inProcess = await withFoldedModel(loaded, async (folded) => {
    const engine = inProcessEngine(folded);
    say(`in-process engine: ${engine.name}`);
    const bySize = [1, 8, 16, 32, 64, 128].map((batch) => {
      const figures = measureInProcess(engine, batch, options.seconds / 4);
      say(
        `in-process batch ${batch}: ${figures.imagesPerSecond.toFixed(0)} img/s, ${figures.cpuMsPerImage.toFixed(3)} CPU ms/img`,
      );
      return figures;
    });
    const best = bySize.reduce((a, b) => (b.imagesPerSecond > a.imagesPerSecond ? b : a));
    return { engine: engine.name, best, single: bySize[0] as InProcessFigures };
  });
  loaded.dispose();

  const directory = await mkdtemp(join(tmpdir(), 'ns-bench-serve-'));
  const modelFile = join(directory, 'bench.nsmodel');
  await writeFile(modelFile, artifact.bytes);
  const batchSize = inProcess.best.batch;
  const service = await startService(modelFile, batchSize, options.maxQueueDelayMs, options.profileService);
  const pid = service.child.pid ?? 0;
  try {
    const client = new TeacherClient(service.address, credentials.createInsecure());
    const pixels = Buffer.from(Uint8Array.from(seededValues(784, 5), (value) => Math.floor((value + 1) * 127.5)));
    const image: Image = {
      content: { $case: 'tensor', value: { shape: [28, 28, 1], dtype: Dtype.UINT8, data: pixels } },
    };
    const predict = (images: Image[]): Promise<void> =>
      new Promise((resolve, reject) =>
        client.predict({ images, topK: 0 }, (error: ServiceError | null) =>
          error === null ? resolve() : reject(error),
        ),
      );

    /** `callers` callers each sending `imagesPerCall` images per Predict for `seconds`; the service's CPU per image. */
    const unaryPhase = async (seconds: number, callers: number, imagesPerCall: number, probe: boolean) => {
      const images = Array.from({ length: imagesPerCall }, () => image);
      const latencies: number[] = [];
      const until = performance.now() + seconds * 1000;
      const caller = async (): Promise<void> => {
        while (performance.now() < until) {
          const started = performance.now();
          await predict(images);
          latencies.push(performance.now() - started);
        }
      };
      const cpuBefore = processCpuSeconds(pid);
      const started = performance.now();
      const [probed] = await Promise.all([
        probe ? probeHealth(service.port, seconds) : Promise.resolve([]),
        ...Array.from({ length: callers }, caller),
      ]);
      const served = latencies.length * imagesPerCall;
      return {
        imagesPerSecond: served / ((performance.now() - started) / 1000),
        cpuMsPerImage: ((processCpuSeconds(pid) - cpuBefore) * 1000) / served,
        latencies: latencies.sort((a, b) => a - b),
        healthLatencies: probed.sort((a, b) => a - b),
      };
    };

    const streamPhase = (seconds: number): Promise<{ imagesPerSecond: number; cpuMsPerImage: number }> =>
      new Promise((resolve, reject) => {
        const stream = client.predictStream();
        let sent = 0;
        let answered = 0;
        const cpuBefore = processCpuSeconds(pid);
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
        stream.on('end', () =>
          resolve({
            imagesPerSecond: answered / ((performance.now() - started) / 1000),
            cpuMsPerImage: ((processCpuSeconds(pid) - cpuBefore) * 1000) / answered,
          }),
        );
        stream.on('error', reject);
        for (let index = 0; index < options.inFlight; index++) send();
      });

    say('warming up the service');
    await unaryPhase(Math.min(2, options.seconds), options.clients, 1, false);
    const before = await batchTotals(service.metricsPort);
    say(`unary: ${options.clients} callers × 1 image for ${options.seconds} s`);
    const unary = await unaryPhase(options.seconds, options.clients, 1, true);
    const afterUnary = await batchTotals(service.metricsPort);
    const batchCallers = Math.max(1, Math.round(options.clients / batchSize));
    say(`unary: ${batchCallers} callers × ${batchSize} images for ${options.seconds} s`);
    const unaryBatch = await unaryPhase(options.seconds, batchCallers, batchSize, false);
    const afterUnaryBatch = await batchTotals(service.metricsPort);
    say(`stream: ${options.inFlight} requests in flight for ${options.seconds} s`);
    const stream = await streamPhase(options.seconds);
    const afterStream = await batchTotals(service.metricsPort);
    say(`one caller × 1 image, one call at a time, for ${options.seconds} s`);
    const lone = await unaryPhase(options.seconds, 1, 1, false);
    client.close();

    const reference = inProcess.best;
    const p99TargetMs = options.maxQueueDelayMs + (2 * 1000 * batchSize) / reference.imagesPerSecond;
    const loneTargetMs = inProcess.single.callMsP50 + options.maxQueueDelayMs + 0.5;
    const ms = (value: number): number => round(value, 3);
    const result = {
      engine: inProcess.engine,
      inprocess_img_s: round(reference.imagesPerSecond),
      grpc_unary_c64_img_s: round(unary.imagesPerSecond),
      grpc_stream_img_s: round(stream.imagesPerSecond),
      ratio_unary: round(unary.imagesPerSecond / reference.imagesPerSecond, 2),
      ratio_stream: round(stream.imagesPerSecond / reference.imagesPerSecond, 2),
      p50_ms: round(percentile(unary.latencies, 0.5), 2),
      p99_ms: round(percentile(unary.latencies, 0.99), 2),
      mean_batch: meanBatchBetween(before, afterUnary),
      mean_batch_unary_batched: meanBatchBetween(afterUnary, afterUnaryBatch),
      mean_batch_stream: meanBatchBetween(afterUnaryBatch, afterStream),
      batch_size: batchSize,
      full_batch_ms: round((1000 * batchSize) / reference.imagesPerSecond, 2),
      p99_target_ms: round(p99TargetMs, 2),
      health_p99_ms: round(percentile(unary.healthLatencies, 0.99), 2),
      // CPU per image: the service process (every thread, from /proc) against this process's at
      // the service's batch size. On a machine whose cores the callers share, throughput measures
      // the callers; CPU per image measures the service.
      inprocess_cpu_ms_per_img: ms(reference.cpuMsPerImage),
      cpu_ms_per_img_unary_1: ms(unary.cpuMsPerImage),
      cpu_ms_per_img_unary_batch: ms(unaryBatch.cpuMsPerImage),
      cpu_ms_per_img_stream: ms(stream.cpuMsPerImage),
      cpu_ratio_unary_1: round(unary.cpuMsPerImage / reference.cpuMsPerImage, 2),
      cpu_ratio_unary_batch: round(unaryBatch.cpuMsPerImage / reference.cpuMsPerImage, 2),
      cpu_ratio_stream: round(stream.cpuMsPerImage / reference.cpuMsPerImage, 2),
      grpc_unary_batch_img_s: round(unaryBatch.imagesPerSecond),
      // One caller, one image per call, one call at a time: against one in-process batch-1 call.
      lone_p50_ms: ms(percentile(lone.latencies, 0.5)),
      lone_p99_ms: ms(percentile(lone.latencies, 0.99)),
      inprocess_b1_p50_ms: ms(inProcess.single.callMsP50),
      lone_p50_target_ms: ms(loneTargetMs),
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
