// npm run bench:pipeline -- --json: the teacher alone (one PredictStream, 256 in flight) against
// the whole labeling path (Ingest → NS_UNLABELED → labeler → teacher → shards in NS_SHARDS), on
// the same Fashion-MNIST images and the same trained model, every service a process of its own.
// Prints one JSON line with both rates, the outcome counts, and how many images were lost.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { credentials, type ServiceError } from '@grpc/grpc-js';
import { Command } from 'commander';
import { initBackend, integerOption, loadFashionMnist, runMain } from '@noisystudent/ml';
import { trainedFashionArtifact } from '@noisystudent/ml/testing';
import {
  Dtype,
  LabelerClient,
  TeacherClient,
  type GetStatsResponse,
  type Image,
  type IngestResponse,
  type PredictStreamResponse,
} from '@noisystudent/proto';
import { openRegistry } from '@noisystudent/registry';
import { startNatsServer } from '@noisystudent/registry/testing';
import { connect } from 'nats';

import { natsNames, shardSubject } from '@noisystudent/core';
import { readShards, shardOutcomes } from '../testing/shard-outcomes.js';

interface BenchOptions {
  json: boolean;
  images: number;
  trainSteps: number;
}

const program = new Command()
  .name('bench:pipeline')
  .description('Throughput of the labeling pipeline against the teacher alone, with exact accounting.')
  .option('--json', 'print only the final JSON line on stdout', false)
  .option('--images <n>', 'Fashion-MNIST test images to push through', integerOption('--images'), 5_000)
  .option(
    '--train-steps <n>',
    'training steps of the teacher (batch 32) before the run',
    integerOption('--train-steps'),
    150,
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

/** Starts a service's dist/main.js and resolves with its ports once its log says `readyMessage`. */
async function startService(
  main: string,
  args: string[],
  readyMessage: string,
): Promise<{ child: ChildProcess; port: number }> {
  // NS_BENCH_PROFILE_DIR: write a V8 CPU profile of each service there.
  const profile = process.env['NS_BENCH_PROFILE_DIR'];
  const nodeArgs = profile === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profile];
  const child = spawn(process.execPath, [...nodeArgs, main, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout ?? process.stdin });
  const port = await new Promise<number>((resolve, reject) => {
    let found = 0;
    lines.on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string; port?: number; level?: number };
      if (entry.port !== undefined) found = entry.port;
      if (entry.msg === readyMessage) resolve(found);
      if ((entry.level ?? 0) >= 50) process.stderr.write(`${line}\n`);
    });
    child.once('exit', (code) => reject(new Error(`${main} exited with code ${code} before it was ready`)));
  });
  return { child, port };
}

runMain('bench:pipeline', async () => {
  const options = program.parse().opts<BenchOptions>();
  const say = (line: string): void => void process.stderr.write(`${line}\n`);
  const loadBefore = loadavg()[0] ?? 0;
  await initBackend({ log: options.json ? () => undefined : say });
  const test = await loadFashionMnist('test');
  const count = Math.min(options.images, test.count);

  say(`training the teacher (${options.trainSteps} steps)`);
  const artifact = await trainedFashionArtifact({ version: 'bench1', steps: options.trainSteps, images: 5_000 });

  const nats = await startNatsServer();
  const children: ChildProcess[] = [];
  try {
    const nc = await connect({ servers: nats.url });
    const registry = await openRegistry(nc, { prefix: 'bench' });
    await registry.putArtifact(artifact.bytes, 'bench1');
    await registry.promote({ version: 'bench1', promotedBy: 'bench', reason: 'bench' }, 0);
    const teacherMain = fileURLToPath(new URL('../../../teacher/dist/main.js', import.meta.url));
    const labelerMain = fileURLToPath(new URL('../main.js', import.meta.url));
    const teacher = await startService(
      teacherMain,
      [
        '--nats-url',
        nats.url,
        '--registry-prefix',
        'bench',
        '--port',
        '0',
        '--metrics-port',
        '0',
        '--max-batch-size',
        '64',
      ],
      'serving new teacher version',
    );
    children.push(teacher.child);
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

    say(`teacher alone: PredictStream, ${count} images, 256 in flight`);
    const teacherClient = new TeacherClient(`127.0.0.1:${teacher.port}`, credentials.createInsecure());
    const teacherImagesPerSecond = await new Promise<number>((resolve, reject) => {
      const stream = teacherClient.predictStream();
      let next = 0;
      let answered = 0;
      const started = performance.now();
      const send = (): void => {
        if (next < count) stream.write({ id: String(next), image: images[next++], topK: 0 });
        else if (answered === count) stream.end();
      };
      stream.on('data', (answer: PredictStreamResponse) => {
        if (answer.result?.$case === 'error') reject(new Error(answer.result.value.message));
        answered++;
        send();
      });
      stream.on('end', () => resolve(count / ((performance.now() - started) / 1000)));
      stream.on('error', reject);
      for (let index = 0; index < 256; index++) send();
    });
    teacherClient.close();

    const labeler = await startService(
      labelerMain,
      [
        '--nats-url',
        nats.url,
        '--prefix',
        'bench',
        '--teachers',
        `127.0.0.1:${teacher.port}`,
        '--port',
        '0',
        '--metrics-port',
        '0',
      ],
      'labeling with new teacher version',
    );
    children.push(labeler.child);
    const labelerClient = new LabelerClient(`127.0.0.1:${labeler.port}`, credentials.createInsecure());
    const stats = (): Promise<GetStatsResponse> =>
      new Promise((resolve, reject) =>
        labelerClient.getStats({}, (error: ServiceError | null, response: GetStatsResponse) =>
          error === null ? resolve(response) : reject(error),
        ),
      );

    say(`pipeline: Ingest ${count} images, wait until every one has an outcome in a shard`);
    const natsPid = natsServerPid(nats.storeDir);
    const processes = { bench: undefined, teacher: teacher.child.pid, labeler: labeler.child.pid, nats: natsPid };
    const cpuBefore = Object.fromEntries(
      Object.entries(processes).map(([name, pid]) => [name, name === 'bench' ? process.cpuUsage() : cpuSeconds(pid)]),
    );
    const started = performance.now();
    const stored = await new Promise<number>((resolve, reject) => {
      const stream = labelerClient.ingest();
      let storedCount = 0;
      stream.on('data', (answer: IngestResponse) => {
        if (answer.result?.$case === 'stored') storedCount++;
        else reject(new Error(`image ${answer.sourceId} rejected: ${JSON.stringify(answer.result)}`));
      });
      stream.on('end', () => resolve(storedCount));
      stream.on('error', reject);
      void (async () => {
        for (let index = 0; index < count; index++) {
          if (!stream.write({ sourceId: `fmnist-test-${index}`, image: images[index] })) await once(stream, 'drain');
        }
        stream.end();
      })();
    });
    const ingestSeconds = (performance.now() - started) / 1000;
    let labeled = 0;
    while (labeled < stored) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      labeled = (await stats()).versions.find((entry) => entry.teacherVersion === 'bench1')?.labeled ?? 0;
    }
    const pipelineSeconds = (performance.now() - started) / 1000;
    const pipelineImagesPerSecond = stored / pipelineSeconds;
    const benchCpu = process.cpuUsage(cpuBefore['bench'] as NodeJS.CpuUsage);
    const cpu = {
      bench: (benchCpu.user + benchCpu.system) / 1e6,
      teacher: cpuSeconds(processes.teacher) - (cpuBefore['teacher'] as number),
      labeler: cpuSeconds(processes.labeler) - (cpuBefore['labeler'] as number),
      nats: cpuSeconds(processes.nats) - (cpuBefore['nats'] as number),
    };
    say(
      `CPU seconds during the pipeline phase (${pipelineSeconds.toFixed(1)} s wall, 2 cores = ${(2 * pipelineSeconds).toFixed(1)} s): ${Object.entries(
        cpu,
      )
        .map(([name, seconds]) => `${name} ${seconds.toFixed(2)}`)
        .join(', ')}`,
    );
    labelerClient.close();

    const names = natsNames('bench');
    const jsm = await nc.jetstreamManager();
    const shards = await readShards(jsm, names.shardsStream, shardSubject(names, 'bench1'));
    const outcome = shardOutcomes(shards);
    const seen = new Set(outcome.everyId);
    let lost = 0;
    for (let index = 0; index < count; index++) if (!seen.has(`fmnist-test-${index}`)) lost++;
    await nc.close();

    const result = {
      teacher_img_s: round(teacherImagesPerSecond),
      pipeline_img_s: round(pipelineImagesPerSecond),
      ratio: round(pipelineImagesPerSecond / teacherImagesPerSecond, 2),
      accepted: outcome.inShards.length,
      cut_by_balancing: outcome.cutByBalancing.length,
      below_threshold: outcome.belowThreshold.length,
      rejected: outcome.rejected.length,
      shards: shards.length,
      lost,
      images: count,
      ingest_img_s: round(stored / ingestSeconds),
      cpu_s: Object.fromEntries(Object.entries(cpu).map(([name, seconds]) => [name, round(seconds, 2)])),
      load_before: round(loadBefore),
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(children.map((child) => (child.exitCode === null ? once(child, 'exit') : undefined)));
    await nats.stop();
  }
});
