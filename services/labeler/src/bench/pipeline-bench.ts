// npm run bench:pipeline -- --json: the teacher alone (PredictStream) against the whole labeling
// path (Ingest → NS_UNLABELED → labeler → teacher → shards in NS_SHARDS), on the same
// Fashion-MNIST images, the same trained model and the same number of requests at the teacher,
// every service a process of its own. Both phases are warmed first, then alternate (teacher
// alone, pipeline, teacher alone, pipeline, …); each pair gives a ratio. Prints one JSON line
// with the pairs, the rates, the outcome counts, and how many images were lost.
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

import { credentials, type ServiceError } from '@grpc/grpc-js';
import { Command } from 'commander';
import { natsNames, shardSubject } from '@noisystudent/core';
import { initBackend, integerOption, loadFashionMnist, medianSpread, runMain } from '@noisystudent/ml';
import { trainedFashionArtifact } from '@noisystudent/ml/testing';
import {
  Dtype,
  LabelerClient,
  Shard,
  TeacherClient,
  type Image,
  type IngestResponse,
  type PredictStreamResponse,
} from '@noisystudent/proto';
import { openRegistry } from '@noisystudent/registry';
import { startNatsServer } from '@noisystudent/registry/testing';
import { HealthClient, spawnService, type SpawnedService } from '@noisystudent/runtime';
import { connect, type NatsConnection } from 'nats';

import { readShards, shardOutcomes } from '../testing/shard-outcomes.js';

interface BenchOptions {
  json: boolean;
  images: number;
  trainSteps: number;
  inFlight: number;
  pairs: number;
  warmupImages: number;
}

/** One teacher-alone pass and the pipeline pass right after it. */
export interface PipelineBenchPair {
  teacher_img_s: number;
  pipeline_img_s: number;
  /** pipeline_img_s / teacher_img_s of this pair. */
  ratio: number;
}

/**
 * The final line of `npm run bench:pipeline -- --json`. Rates are medians over the pairs; the
 * outcome counts cover every measured pipeline pass together (`images` = images per pass × pairs).
 */
export interface PipelineBenchResult {
  teacher_img_s: number;
  pipeline_img_s: number;
  /** The median of the pairs' ratios (never a ratio of medians); `_min` and `_max` their range. */
  ratio: number;
  ratio_min: number;
  ratio_max: number;
  pairs: PipelineBenchPair[];
  accepted: number;
  cut_by_balancing: number;
  below_threshold: number;
  rejected: number;
  /** Shard parts holding outcomes of the measured passes. */
  shards: number;
  /** Images ingested without an outcome in any shard. */
  lost: number;
  /** Images with more than one outcome. */
  duplicated: number;
  images: number;
  /** Requests unanswered at the teacher in both phases. */
  in_flight: number;
  /** Ingest alone: images stored per second (median over the pipeline passes). */
  ingest_img_s: number;
  /** CPU seconds of each process over the measured pipeline passes. */
  cpu_s: Record<string, number>;
  /** One-minute load average before the run. */
  load_before: number;
}

const TEACHER_VERSION = 'bench1';
const PREFIX = 'bench';
/** The teacher's largest batch: the warm-up runs every size up to it. */
const MAX_BATCH_SIZE = 64;
/** PredictStream calls the labeler's teacher pool opens per teacher (its default); the teacher-alone phase opens as many. */
const STREAMS_PER_TEACHER = 2;
/**
 * A pipeline pass that makes no progress for this long is given up and its missing images count
 * as lost. Longer than the labeler's ack wait (5 s by default), after which an image delivered to it and
 * never labeled is delivered again: such an image is slow, not lost.
 */
const STALL_MS = 180_000;

const program = new Command()
  .name('bench:pipeline')
  .description('Throughput of the labeling pipeline against the teacher alone, with exact accounting.')
  .option('--json', 'print only the final JSON line on stdout', false)
  .option('--images <n>', 'Fashion-MNIST test images per pass', integerOption('--images'), 5_000)
  .option(
    '--train-steps <n>',
    'training steps of the teacher (batch 32) before the run',
    integerOption('--train-steps'),
    150,
  )
  .option(
    '--in-flight <n>',
    "requests unanswered at the teacher in both phases (the labeler's --max-predict-in-flight)",
    integerOption('--in-flight', STREAMS_PER_TEACHER),
    256,
  )
  .option(
    '--pairs <n>',
    'alternating pairs of passes (teacher alone, then pipeline)',
    integerOption('--pairs', 1, 20),
    3,
  )
  .option(
    '--warmup-images <n>',
    'images of the untimed warm-up pass of each phase',
    integerOption('--warmup-images'),
    2_048,
  );

const round = (value: number, digits = 1): number => Number(value.toFixed(digits));

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); NaN elsewhere. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** The nats-server process serving `storeDir` (the harness starts it under a watchdog shell). */
function natsServerPid(storeDir: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (command[0]?.endsWith('nats-server') && command.includes(storeDir)) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** Node flags of the services: NS_BENCH_PROFILE_DIR writes a V8 CPU profile of each there. */
function serviceExecArgv(): string[] {
  const profile = process.env['NS_BENCH_PROFILE_DIR'];
  return profile === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profile];
}

/** One Predict of each size from 1 to `largest`, one at a time: each runs as a batch of its own size. */
async function warmEveryBatchSize(client: TeacherClient, images: Image[], largest: number): Promise<void> {
  for (let size = 1; size <= largest; size++) {
    await new Promise<void>((resolve, reject) =>
      client.predict({ images: images.slice(0, size), topK: 0 }, (error: ServiceError | null) =>
        error === null ? resolve() : reject(error),
      ),
    );
  }
}

/**
 * The teacher alone: every image through `streams` PredictStreams with `inFlight` requests
 * unanswered across them, as the labeler's pool keeps them. Resolves with images per second.
 */
async function teacherAlone(client: TeacherClient, images: Image[], inFlight: number, streams: number) {
  let next = 0;
  const runStream = (share: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const stream = client.predictStream();
      let pending = 0;
      const fill = (): void => {
        while (pending < share && next < images.length) {
          const index = next++;
          pending++;
          stream.write({ id: String(index), image: images[index], topK: 0 });
        }
        if (pending === 0) stream.end();
      };
      stream.on('data', (answer: PredictStreamResponse) => {
        if (answer.result?.$case === 'error') {
          reject(new Error(`image ${answer.id}: ${answer.result.value.message}`));
          stream.cancel();
          return;
        }
        pending--;
        fill();
      });
      stream.on('end', resolve);
      stream.on('error', reject);
      fill();
    });
  const started = performance.now();
  await Promise.all(
    Array.from({ length: streams }, (_, index) =>
      runStream(Math.floor(inFlight / streams) + (index < inFlight % streams ? 1 : 0)),
    ),
  );
  return images.length / ((performance.now() - started) / 1000);
}

/**
 * The pipeline: every image ingested as `<tag>/fmnist-test-<index>`, timed until each has an
 * outcome in a published shard (seen on the shard subject as it is published).
 */
async function pipelinePass(
  labeler: LabelerClient,
  nc: NatsConnection,
  images: Image[],
  tag: string,
  say: (line: string) => void,
): Promise<{ seconds: number; ingestSeconds: number; seen: number }> {
  const expected = images.length;
  const seen = new Set<string>();
  let ingestSeconds = NaN;
  let finish: (() => void) | undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  let stall: NodeJS.Timeout | undefined;
  const watchStall = (): void => {
    clearTimeout(stall);
    stall = setTimeout(() => {
      say(`  ${tag}: no new outcome for ${STALL_MS / 1000} s; ${seen.size} of ${expected} seen`);
      finish?.();
    }, STALL_MS);
  };
  const subscription = nc.subscribe(shardSubject(natsNames(PREFIX), TEACHER_VERSION), {
    callback: (error, message) => {
      if (error !== null) return;
      for (const id of shardOutcomes([Shard.decode(message.data)]).everyId) {
        if (id.startsWith(`${tag}/`)) seen.add(id);
      }
      watchStall();
      if (seen.size === expected) finish?.();
    },
  });
  await nc.flush();
  const started = performance.now();
  try {
    watchStall();
    await new Promise<void>((resolve, reject) => {
      const stream = labeler.ingest();
      stream.on('data', (answer: IngestResponse) => {
        if (answer.result?.$case !== 'stored')
          reject(new Error(`image ${answer.sourceId} not stored: ${JSON.stringify(answer.result)}`));
      });
      stream.on('end', resolve);
      stream.on('error', reject);
      void (async () => {
        for (let index = 0; index < expected; index++) {
          const request = { sourceId: `${tag}/fmnist-test-${index}`, image: images[index] };
          if (!stream.write(request)) await once(stream, 'drain');
        }
        stream.end();
      })();
    });
    ingestSeconds = (performance.now() - started) / 1000;
    await done;
    return { seconds: (performance.now() - started) / 1000, ingestSeconds, seen: seen.size };
  } finally {
    clearTimeout(stall);
    subscription.unsubscribe();
  }
}

runMain('bench:pipeline', async () => {
  const options = program.parse().opts<BenchOptions>();
  const say = (line: string): void => void process.stderr.write(`${line}\n`);
  const loadBefore = loadavg()[0] ?? 0;
  await initBackend({ log: options.json ? () => undefined : say });
  const test = await loadFashionMnist('test');
  const count = Math.min(options.images, test.count);
  const images: Image[] = Array.from({ length: count }, (_, index) => ({
    content: {
      $case: 'tensor',
      value: {
        shape: [28, 28, 1],
        dtype: Dtype.UINT8,
        data: Buffer.from(test.images.subarray(index * 784, (index + 1) * 784)),
      },
    },
  }));
  const warmupImages = images.slice(0, Math.min(options.warmupImages, count));

  say(`training the teacher (${options.trainSteps} steps)`);
  const artifact = await trainedFashionArtifact({ version: TEACHER_VERSION, steps: options.trainSteps, images: 5_000 });

  const nats = await startNatsServer();
  const services: SpawnedService[] = [];
  try {
    const nc = await connect({ servers: nats.url });
    const registry = await openRegistry(nc, { prefix: PREFIX });
    await registry.putArtifact(artifact.bytes, TEACHER_VERSION);
    await registry.promote({ version: TEACHER_VERSION, promotedBy: 'bench', reason: 'bench' }, 0);

    const common = ['--nats-url', nats.url, '--prefix', PREFIX, '--port', '0', '--metrics-port', '0'];
    const serviceOptions = { output: 'stderr', execArgv: serviceExecArgv() } as const;
    const teacher = await spawnService(fileURLToPath(new URL('../../../teacher/dist/main.js', import.meta.url)), {
      ...serviceOptions,
      args: [...common, '--log-level', 'warn', '--max-batch-size', String(MAX_BATCH_SIZE)],
    });
    services.push(teacher);
    const health = new HealthClient(teacher.address);
    await health.waitFor('SERVING', '', 120_000).finally(() => health.close());
    const labelerService = await spawnService(fileURLToPath(new URL('../main.js', import.meta.url)), {
      ...serviceOptions,
      args: [
        ...common,
        '--log-level',
        'warn',
        '--teachers',
        teacher.address,
        '--max-predict-in-flight',
        String(options.inFlight),
      ],
    });
    services.push(labelerService);
    const teacherClient = new TeacherClient(teacher.address, credentials.createInsecure());
    const labelerClient = new LabelerClient(labelerService.address, credentials.createInsecure());

    say(`warm-up: one batch of every size from 1 to ${MAX_BATCH_SIZE}, then ${warmupImages.length} images per phase`);
    await warmEveryBatchSize(teacherClient, images, MAX_BATCH_SIZE);
    await teacherAlone(teacherClient, warmupImages, options.inFlight, STREAMS_PER_TEACHER);
    await pipelinePass(labelerClient, nc, warmupImages, 'warmup', say);

    const natsPid = natsServerPid(nats.storeDir);
    const processes = { teacher: teacher.child.pid, labeler: labelerService.child.pid, nats: natsPid };
    const cpu = { bench: 0, teacher: 0, labeler: 0, nats: 0 };
    const pairs: PipelineBenchPair[] = [];
    const ingestRates: number[] = [];
    let pipelineSeconds = 0;
    for (let pair = 1; pair <= options.pairs; pair++) {
      say(`pair ${pair}/${options.pairs}: teacher alone, ${count} images, ${options.inFlight} in flight`);
      const teacherImagesPerSecond = await teacherAlone(teacherClient, images, options.inFlight, STREAMS_PER_TEACHER);
      say(`  teacher alone: ${teacherImagesPerSecond.toFixed(1)} img/s`);

      const benchBefore = process.cpuUsage();
      const before = Object.fromEntries(Object.entries(processes).map(([name, pid]) => [name, cpuSeconds(pid)]));
      const pass = await pipelinePass(labelerClient, nc, images, `pass${pair}`, say);
      const benchCpu = process.cpuUsage(benchBefore);
      cpu.bench += (benchCpu.user + benchCpu.system) / 1e6;
      for (const [name, pid] of Object.entries(processes) as Array<[keyof typeof processes, number | undefined]>) {
        cpu[name] += cpuSeconds(pid) - (before[name] ?? NaN);
      }
      pipelineSeconds += pass.seconds;
      ingestRates.push(count / pass.ingestSeconds);
      const pipelineImagesPerSecond = pass.seen / pass.seconds;
      say(`  pipeline: ${pipelineImagesPerSecond.toFixed(1)} img/s (${pass.seen} of ${count} with an outcome)`);
      pairs.push({
        teacher_img_s: round(teacherImagesPerSecond),
        pipeline_img_s: round(pipelineImagesPerSecond),
        ratio: round(pipelineImagesPerSecond / teacherImagesPerSecond, 2),
      });
    }
    say(
      `CPU seconds over the pipeline passes (${pipelineSeconds.toFixed(1)} s wall, ${availableParallelism()} cores = ${(availableParallelism() * pipelineSeconds).toFixed(1)} s): ${Object.entries(
        cpu,
      )
        .map(([name, seconds]) => `${name} ${seconds.toFixed(2)}`)
        .join(', ')}`,
    );
    teacherClient.close();
    labelerClient.close();

    const jsm = await nc.jetstreamManager();
    const names = natsNames(PREFIX);
    const measured = (id: string): boolean => /^pass\d+\//.test(id);
    const shards = (await readShards(jsm, names.shardsStream, shardSubject(names, TEACHER_VERSION))).filter((shard) =>
      shardOutcomes([shard]).everyId.some(measured),
    );
    const outcome = shardOutcomes(shards);
    const outcomeIds = outcome.everyId.filter(measured);
    const distinct = new Set(outcomeIds);
    await nc.close();

    const ratio = medianSpread(pairs.map((entry) => entry.ratio));
    const result: PipelineBenchResult = {
      teacher_img_s: round(medianSpread(pairs.map((entry) => entry.teacher_img_s)).median),
      pipeline_img_s: round(medianSpread(pairs.map((entry) => entry.pipeline_img_s)).median),
      ratio: ratio.median,
      ratio_min: ratio.min,
      ratio_max: ratio.max,
      pairs,
      accepted: outcome.inShards.filter(measured).length,
      cut_by_balancing: outcome.cutByBalancing.filter(measured).length,
      below_threshold: outcome.belowThreshold.filter(measured).length,
      rejected: outcome.rejected.filter((entry) => measured(entry.sourceId)).length,
      shards: shards.length,
      lost: count * pairs.length - distinct.size,
      duplicated: outcomeIds.length - distinct.size,
      images: count * pairs.length,
      in_flight: options.inFlight,
      ingest_img_s: round(medianSpread(ingestRates).median),
      cpu_s: Object.fromEntries(Object.entries(cpu).map(([name, seconds]) => [name, round(seconds, 2)])),
      load_before: round(loadBefore, 2),
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await Promise.all(services.map((service) => service.stop()));
    await nats.stop();
  }
});
