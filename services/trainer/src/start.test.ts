// The trainer's start and stop on a real nats-server: settings that cannot work stop it at start
// with a message naming what to fix; --import-teacher makes an artifact file or a tfjs Layers
// folder teacher v1 of an empty registry; SIGTERM in the middle of a round's training checkpoints
// and exits 0, and a restart finishes the round. Shards are published to NS_SHARDS directly, as a
// producer other than the labeler would.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { natsNames, shardSubject } from '@noisystudent/core';
import {
  buildReferenceResNet,
  decodeModelArtifact,
  encodeModelArtifact,
  FASHION_MNIST_CLASSES,
  initBackend,
} from '@noisystudent/ml';
import { makeTestArtifact, seededValues } from '@noisystudent/ml/testing';
import {
  Dtype,
  RoundDecision,
  Shard,
  TrainerPhase,
  type GetStatusResponse,
  type RoundRecord,
} from '@noisystudent/proto';
import { openRegistry } from '@noisystudent/registry';
import { startNatsServer, type NatsServer } from '@noisystudent/registry/testing';
import { createLogger, spawnService, type SpawnedService } from '@noisystudent/runtime';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { connect, headers, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { trainerConfig } from './config.js';
import { connectTrainer } from './testing/trainer-client.js';
import { startTrainer } from './trainer.js';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const EXEC_ARGV = ['--import', 'tsx', '--conditions', 'source'];
const SMALL = ['--preset', 'smoke', '--teacher-steps', '20', '--student-steps', '20'];
/** The Fashion-MNIST training images as an artifact describes them. */
const FASHION = { height: 28, width: 28, channels: 1, classNames: FASHION_MNIST_CLASSES };
const SHOW_LOGS = process.env['NS_TEST_SERVICE_LOGS'] === '1';
const log = createLogger({ service: 'trainer', level: SHOW_LOGS ? 'info' : 'silent' });

let server: NatsServer;
let nc: NatsConnection;
const cleanup: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  await initBackend({ request: 'cpu', log: () => undefined });
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});

afterAll(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
  await nc?.close();
  await server?.stop();
});

async function temporaryFolder(name: string): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), `ns-${name}-`));
  cleanup.push(() => rm(folder, { recursive: true, force: true }));
  return folder;
}

/** Runs the trainer's main until it exits by itself: its exit code and everything it wrote. */
async function runUntilExit(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [...EXEC_ARGV, MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  if (SHOW_LOGS) process.stderr.write(output);
  return { code, output };
}

/** Flags every trainer run here shares: loopback ports it picks, this nats-server, its own prefix and folder. */
const serviceArgs = (prefix: string, stateDir: string): string[] => [
  '--port',
  '0',
  '--metrics-port',
  '0',
  '--nats-url',
  server.url,
  '--prefix',
  prefix,
  '--state-dir',
  stateDir,
  ...SMALL,
];

/** Makes `bytes` teacher v1 of an empty registry, as an operator would. */
async function pushTeacher(prefix: string, bytes: Uint8Array): Promise<void> {
  const registry = await openRegistry(nc, { prefix });
  await registry.putArtifact(bytes, 'v1');
  await registry.promote({ version: 'v1', promotedBy: 'start.test', reason: 'given' }, 0);
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('a configuration that cannot work stops the trainer at start, naming what to fix', () => {
  it.concurrent.each([
    { args: ['--architecture', 'foo'], code: 2, names: ['--architecture', 'reference-resnet'] },
    { args: ['--student-width', '0.5'], code: 2, names: ['--student-width', '≥ 1'] },
    { args: ['--eval-images', '0'], code: 2, names: ['--eval-images'] },
    { args: ['--dataset', 'cifar10'], code: 2, names: ['--dataset-dir', 'cifar10'] },
  ])('$args', async ({ args, code, names }) => {
    const run = await runUntilExit([...SMALL, ...args]);
    expect(run.code).toBe(code);
    for (const name of names) expect(run.output).toContain(name);
  });

  it.concurrent('a Fashion-MNIST folder that does not exist', async () => {
    const run = await runUntilExit([
      ...serviceArgs('nodata', await temporaryFolder('nodata')),
      '--dataset-dir',
      '/nonexistent',
    ]);
    expect(run.code).toBe(1);
    expect(run.output).toContain('--dataset-dir');
    expect(run.output).toContain('--dataset-dir: /nonexistent does not exist');
  });

  it.concurrent('a NATS server that does not answer', async () => {
    // connectNats fails at once when the first connection is refused (it retries only after one succeeded).
    const run = await runUntilExit([...SMALL, '--nats-url', 'nats://127.0.0.1:1']);
    expect(run.code).toBe(1);
    expect(run.output).toContain('NATS at nats://127.0.0.1:1');
    expect(run.output).toContain('CONNECTION_REFUSED');
  });

  it.concurrent('a teacher in the registry larger than the student', async () => {
    const wide = buildReferenceResNet({ widthMultiplier: 2 });
    const { bytes } = await encodeModelArtifact(wide, { version: 'v1', architecture: 'reference-resnet' }, FASHION);
    wide.dispose();
    await pushTeacher('wide', bytes);
    const run = await runUntilExit(serviceArgs('wide', await temporaryFolder('wide')));
    expect(run.code).toBe(1);
    expect(run.output).toContain('studentWidth');
    expect(run.output).toContain('--student-width');
  });
});

describe('--import-teacher makes a given model teacher v1 of an empty registry', () => {
  /** Starts the trainer in this process, waits for its v1 and stops it: v1's pointer and bytes. */
  async function importedTeacher(prefix: string, flags: Record<string, unknown>) {
    const trainer = await startTrainer(
      trainerConfig(
        {
          port: 0,
          metricsPort: 0,
          natsUrl: server.url,
          prefix,
          stateDir: await temporaryFolder(prefix),
          preset: 'smoke',
          ...flags,
        },
        {},
      ),
      log,
    );
    try {
      const registry = await openRegistry(nc, { prefix });
      const record = await until('teacher v1', async () => (await registry.readTeacher())?.pointer);
      expect(record.version).toBe('v1');
      expect(record.promotedBy).toBe('trainer');
      expect(record.reason.startsWith('bootstrap: imported')).toBe(true);
      return { record, bytes: (await registry.getArtifact('v1')).bytes };
    } finally {
      await trainer.stop();
    }
  }

  it('an artifact file: stored as it is', async () => {
    const artifact = await makeTestArtifact({ version: 'v1', seed: 5 });
    const file = join(await temporaryFolder('artifact'), 'teacher.nsmodel');
    await writeFile(file, artifact.bytes);
    const { record, bytes } = await importedTeacher('import-file', { importTeacher: file });
    expect(record.reason).toBe(`bootstrap: imported from ${file}`);
    expect(Buffer.from(bytes).equals(Buffer.from(artifact.bytes))).toBe(true);
    expect(record.sha256).toBe(artifact.sha256);
  });

  it('a tfjs Layers folder: with the class names and input scale given', async () => {
    const model = tfl.sequential({
      layers: [tfl.layers.flatten({ inputShape: [28, 28, 1] }), tfl.layers.dense({ units: 10, activation: 'softmax' })],
    });
    const folder = await temporaryFolder('layers');
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        const weightData = artifacts.weightData === undefined ? new ArrayBuffer(0) : artifacts.weightData;
        await writeFile(join(folder, 'weights.bin'), new Uint8Array(tf.io.CompositeArrayBuffer.join(weightData)));
        await writeFile(
          join(folder, 'model.json'),
          JSON.stringify({
            modelTopology: artifacts.modelTopology,
            weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
          }),
        );
        return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON' } };
      }),
    );
    model.dispose();
    const classNames = Array.from({ length: 10 }, (_, index) => `kind-${index}`);
    const { bytes } = await importedTeacher('import-layers', {
      importTeacher: folder,
      importClassNames: classNames.join(','),
      importScale: '0.0078125',
      importOffset: '-1',
    });
    const decoded = await decodeModelArtifact(bytes);
    decoded.model.dispose();
    expect(decoded.metadata.version).toBe('v1');
    expect(decoded.metadata.classNames).toEqual(classNames);
    expect(decoded.metadata.inputShape).toEqual([28, 28, 1]);
    expect(decoded.metadata.preprocessing?.normalization).toEqual({
      $case: 'rescale',
      value: { scale: 0.0078125, offset: -1 },
    });
  });
});

describe('SIGTERM during training', () => {
  const SHARDS = 4;
  const EXAMPLES_PER_SHARD = 16;
  const STUDENT_STEPS = 40;

  /** A shard of v1 as any producer may publish it: uint8 tensors, soft labels, one copy each. */
  function shard(index: number): Shard {
    return Shard.fromPartial({
      shardId: `direct-${index}`,
      teacherVersion: 'v1',
      windowId: `direct-${index}`,
      partCount: 1,
      examples: Array.from({ length: EXAMPLES_PER_SHARD }, (_, row) => {
        const hardLabel = (index * EXAMPLES_PER_SHARD + row) % 10;
        const pixels = Uint8Array.from(seededValues(28 * 28, 100 * index + row), (value) =>
          Math.floor((value + 1) * 127.5),
        );
        return {
          sourceId: `direct-${index}-${row}`,
          image: {
            content: { $case: 'tensor', value: { shape: [28, 28, 1], dtype: Dtype.UINT8, data: Buffer.from(pixels) } },
          },
          softLabel: Array.from({ length: 10 }, (_, label) => (label === hardLabel ? 0.91 : 0.01)),
          hardLabel,
          confidence: 0.91,
          copyCount: 1,
        };
      }),
    });
  }

  async function spawnTrainer(stateDir: string): Promise<{
    service: SpawnedService;
    status(): Promise<GetStatusResponse>;
    rounds(): Promise<RoundRecord[]>;
  }> {
    const service = await spawnService(MAIN, {
      args: [
        ...serviceArgs('sigterm', stateDir),
        '--student-steps',
        String(STUDENT_STEPS),
        '--checkpoint-every-steps',
        '1000000',
        '--min-images',
        String(SHARDS * EXAMPLES_PER_SHARD),
        '--min-improvement',
        '-1',
        '--shutdown-timeout-ms',
        '10000',
        // The round trains on the examples as published (no rebalancing), so they can be counted.
        '--rebalance',
        'false',
        '--rand-augment',
        '1,4',
        '--dropout',
        '0.25',
      ],
      execArgv: EXEC_ARGV,
      output: SHOW_LOGS ? 'stderr' : 'ignore',
      timeoutMs: 120_000,
    });
    const client = connectTrainer(service.address);
    service.child.once('exit', () => client.close());
    cleanup.push(() => service.stop());
    return { service, status: () => client.status(), rounds: () => client.rounds() };
  }

  it('checkpoints the student and exits 0; a restart finishes the round', async () => {
    await pushTeacher('sigterm', (await makeTestArtifact({ version: 'v1', seed: 7 })).bytes);
    const stateDir = await temporaryFolder('sigterm');
    const first = await spawnTrainer(stateDir);
    const js = nc.jetstream();
    for (let index = 0; index < SHARDS; index++) {
      const shardHeaders = headers();
      shardHeaders.set('Nats-Msg-Id', `direct-${index}`);
      await js.publish(shardSubject(natsNames('sigterm'), 'v1'), Shard.encode(shard(index)).finish(), {
        headers: shardHeaders,
      });
    }
    // GetStatus's step moves every 5 s of training (trainModel's progress), longer than this round
    // trains: the checkpoint's step below says where the SIGTERM found it.
    const training = await until('round 1 training', async () => {
      const status = await first.status();
      return status.phase === TrainerPhase.TRAINING ? status : undefined;
    });
    expect(training.round).toBe(1);

    const exited = once(first.service.child, 'exit');
    first.service.child.kill('SIGTERM');
    const [code] = (await Promise.race([
      exited,
      new Promise((_, reject) => setTimeout(() => reject(new Error('no exit within the shutdown timeout')), 15_000)),
    ])) as [number | null];
    expect(code).toBe(0);
    // The only checkpoint is the one written on stop (--checkpoint-every-steps is beyond the run).
    const checkpoint = await readFile(join(stateDir, 'rounds', '1', 'student.ckpt'));
    const manifest = JSON.parse(checkpoint.subarray(4, 4 + checkpoint.readUInt32LE(0)).toString('utf8')) as {
      step: number;
    };
    expect(manifest.step).toBeGreaterThan(0);
    expect(manifest.step).toBeLessThan(STUDENT_STEPS);

    const second = await spawnTrainer(stateDir);
    const round = await until('round 1 after the restart', async () =>
      (await second.rounds()).find((record) => record.round === 1),
    );
    expect(round.decision).toBe(RoundDecision.PROMOTED);
    expect(round.studentVersion).toBe('v2');
    expect(round.shards).toBe(SHARDS);
    // Labels 0–9 in turn over the 64 examples: 7 each of classes 0–3, 6 of the others.
    expect(round.examplesPerClass).toEqual([7, 7, 7, 7, 6, 6, 6, 6, 6, 6]);
    expect(round.pseudoLabeledExamples).toBe(SHARDS * EXAMPLES_PER_SHARD);
    expect(round.studentTraining?.steps).toBe(STUDENT_STEPS);
    // The record says how the student was trained, noise included (the report and nsctl show it).
    expect(round.studentTraining?.noise).toMatchObject({
      randaugmentNumOps: 1,
      randaugmentMagnitude: 4,
      dropoutRate: 0.25,
    });
    expect(round.studentTraining?.unlabeledBatchSize).toBeGreaterThan(0);
    expect(await second.service.stop()).toBe(0);
  });
});
