// The cluster drill: the whole system on a 3-node JetStream cluster at R3 (2 teachers, 2 labelers,
// 1 trainer, each its own process) while a producer streams images through Ingest and a caller
// predicts; one NATS node, one teacher and one labeler are SIGKILLed and restarted while images
// stream in, and the trainer mid-round. What it reports is read from the shards, the registry and
// the trainer's round records. test/cluster/faults.test.ts asserts it; scripts/bench-cluster.ts
// prints it (`npm run bench:cluster`).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { connectLabeler, connectTeacher, connectTrainer, type IngestItem } from '@noisystudent/client';
import { natsNames, shardSubject } from '@noisystudent/core';
import { LabeledIndex, readShards, shardOutcomes } from '@noisystudent/labeler/testing';
import { loadFashionMnist } from '@noisystudent/ml/data';
import { openRegistry } from '@noisystudent/registry';
import { startNatsCluster, type NatsCluster } from '@noisystudent/registry/testing';
import { HealthClient, spawnService, type SpawnedService } from '@noisystudent/runtime';
import { connect, type NatsConnection } from 'nats';

import { freePort } from '../support/free-port.js';

export interface DrillOptions {
  /** Unlabeled images streamed through Ingest. @default 1200 */
  images?: number;
  /** How the services' mains are run: their TypeScript through tsx (tests), or the built dist. @default 'source' */
  build?: 'source' | 'dist';
  /** Progress lines (stage by stage). @default none */
  log?: (line: string) => void;
  /** Where the services' own logs go. @default 'ignore' */
  serviceOutput?: 'ignore' | 'stderr';
}

export interface DrillFault {
  what: 'nats' | 'teacher' | 'labeler' | 'trainer';
  /** What was killed and when, e.g. "SIGKILL nats node-1 at 300 of 1200 images sent". */
  at: string;
  /** Seconds from the SIGKILL until the killed part serves again and the work it held is done. */
  recoverySeconds: number;
}

export interface DrillResult {
  ingested: number;
  shards: number;
  promotions: number;
  /** Acknowledged images without an outcome in a teacher version's shards (summed over versions). */
  lost: number;
  /** Extra outcomes of images with more than one in a version's shards (summed over versions). */
  duplicated: number;
  /** Predict and Ingest calls that failed after the client's retries. */
  failedRequests: number;
  faults: DrillFault[];
  /** Per teacher version: images with an outcome. */
  outcomes: Record<string, number>;
  rounds: Array<{ round: number; teacherVersion: string; decision: string; studentVersion: string }>;
  predictCalls: number;
  failures: string[];
  seconds: number;
}

const PREFIX = 'drill';
const SOURCE_EXEC_ARGV = ['--import', 'tsx', '--conditions', 'source'];
const TRAINER_ARGS = [
  '--preset',
  'smoke',
  '--student-steps',
  '60',
  '--checkpoint-every-steps',
  '10',
  // Every round promotes: the drill checks a promotion happens exactly once, not that it is earned.
  '--min-improvement',
  '-1',
  '--max-rounds',
  '1',
];

/** A service process that can be SIGKILLed and started again on the same ports. */
class Replica {
  private service: SpawnedService | undefined;

  constructor(
    readonly name: string,
    private readonly entry: string,
    private readonly args: string[],
    private readonly options: DrillOptions,
  ) {}

  get address(): string {
    return this.service?.address ?? '';
  }

  async start(): Promise<void> {
    this.service = await spawnService(this.entry, {
      args: this.args,
      execArgv: this.options.build === 'dist' ? [] : SOURCE_EXEC_ARGV,
      output: this.options.serviceOutput ?? 'ignore',
      timeoutMs: 180_000,
    });
  }

  /** SIGKILL, and wait for the exit. */
  async kill(): Promise<void> {
    const child = this.service?.child;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    await this.service?.stop().catch(() => undefined);
  }
}

export async function runClusterDrill(options: DrillOptions = {}): Promise<DrillResult> {
  const images = options.images ?? 1_200;
  const log = options.log ?? (() => undefined);
  const started = Date.now();
  const entry = (service: string): string =>
    options.build === 'dist'
      ? fileURLToPath(new URL(`../../services/${service}/dist/main.js`, import.meta.url))
      : fileURLToPath(new URL(`../../services/${service}/src/main.ts`, import.meta.url));
  const cleanup: Array<() => Promise<unknown>> = [];
  const names = natsNames(PREFIX);

  try {
    log('starting a 3-node JetStream cluster');
    const cluster: NatsCluster = await startNatsCluster(3);
    cleanup.push(() => cluster.stop());
    const nc: NatsConnection = await connect({
      servers: cluster.url.split(','),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 100,
    });
    cleanup.push(() => nc.close());
    const common = (port: number): string[] => [
      ...['--port', String(port), '--metrics-port', '0', '--nats-url', cluster.url],
      ...['--nats-replicas', '3', '--prefix', PREFIX],
    ];

    const stateDir = await mkdtemp(join(tmpdir(), 'ns-drill-'));
    cleanup.push(() => rm(stateDir, { recursive: true, force: true }));
    const [trainerPort, ...ports] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const trainer = new Replica(
      'trainer',
      entry('trainer'),
      [...common(trainerPort ?? 0), ...['--state-dir', stateDir, '--min-images', String(images)], ...TRAINER_ARGS],
      options,
    );
    const teacherAddresses = [ports[0], ports[1]].map((port) => `127.0.0.1:${port}`);
    const teachers = [0, 1].map(
      (index) => new Replica(`teacher-${index}`, entry('teacher'), common(ports[index] ?? 0), options),
    );
    const labelers = [2, 3].map(
      (index, replica) =>
        new Replica(
          `labeler-${replica}`,
          entry('labeler'),
          [
            ...common(ports[index] ?? 0),
            ...['--teachers', teacherAddresses.join(','), '--window-size', '100', '--window-wait-ms', '300'],
          ],
          options,
        ),
    );
    const everyReplica = [trainer, ...teachers, ...labelers];
    cleanup.push(() => Promise.all(everyReplica.map((replica) => replica.stop())));

    log('starting the trainer (it bootstraps teacher v1), 2 teachers and 2 labelers at R3');
    // The streams and buckets are created by whichever service comes first; a fresh cluster may
    // still elect leaders, which the services ride out.
    await trainer.start();
    await Promise.all([...teachers, ...labelers].map((replica) => replica.start()));
    const registry = await eventually('the registry', () => openRegistry(nc, { prefix: PREFIX, replicas: 3 }));
    await until('teacher v1 in the registry', async () => (await registry.readTeacher())?.pointer, 300_000);
    const teacherClient = connectTeacher({
      address: teacherAddresses,
      retry: { attempts: 20, initialBackoffMs: 100, maxBackoffMs: 1_000 },
    });
    cleanup.push(async () => teacherClient.close());
    for (const address of teacherAddresses) {
      const one = connectTeacher(address);
      await until(`${address} serving v1`, async () => ((await one.modelInfo()).version === 'v1' ? true : undefined));
      one.close();
    }
    log('teacher v1 served by both teachers');

    const data = await loadFashionMnist('train');
    const items: IngestItem[] = Array.from({ length: images }, (_, i) => {
      const index = data.count - 1 - i;
      return {
        sourceId: `drill-${index}`,
        image: { shape: [28, 28, 1], dtype: 'uint8', data: data.images.subarray(index * 784, (index + 1) * 784) },
      };
    });
    const sample = items[0]?.image;
    if (sample === undefined) throw new Error('no images');

    // A caller predicting throughout, through both teachers.
    const failures: string[] = [];
    let predictCalls = 0;
    let calling = true;
    const caller = (async () => {
      while (calling) {
        await teacherClient.predict(sample, { deadlineMs: 15_000 }).then(
          () => predictCalls++,
          (error: Error) => failures.push(`Predict: ${error.message}`),
        );
        await pause(50);
      }
    })();

    const indexes = new Map<string, LabeledIndex>();
    const jsm = await nc.jetstreamManager();
    for (const version of ['v1', 'v2']) {
      indexes.set(version, new LabeledIndex(nc.jetstream(), jsm, names.shardsStream, shardSubject(names, version)));
    }
    /** Resolves once every one of the first `sent` images has an outcome for `version`. */
    const labeledThrough = async (version: string, sent: number): Promise<void> => {
      const ids = items.slice(0, sent).map((item) => item.sourceId);
      const index = indexes.get(version);
      if (index === undefined) throw new Error(`no index for ${version}`);
      await until(
        `the first ${sent} images labeled with ${version}`,
        async () => ((await index.labeled(ids)).size === ids.length ? true : undefined),
        300_000,
        100,
      );
    };

    const faults: DrillFault[] = [];
    /** Kills, restarts, and measures until the replacement serves and the images sent before the kill are labeled. */
    const inject = async (
      what: DrillFault['what'],
      sent: number,
      kill: () => Promise<string>,
      back: () => Promise<void>,
    ): Promise<void> => {
      const at = Date.now();
      const killed = await kill();
      const description = `SIGKILL ${killed} at ${sent} of ${images} images sent`;
      log(description);
      await Promise.all([back(), labeledThrough('v1', sent)]);
      const recoverySeconds = (Date.now() - at) / 1000;
      faults.push({ what, at: description, recoverySeconds });
      log(`${killed} recovered in ${recoverySeconds.toFixed(1)} s`);
    };
    const waitServing = async (replica: Replica): Promise<void> => {
      const health = new HealthClient(replica.address);
      try {
        await health.waitFor('SERVING', '', 180_000);
      } finally {
        health.close();
      }
    };

    log(`ingesting ${images} images through both labelers`);
    const labelerClient = connectLabeler({
      address: labelers.map((replica) => replica.address),
      retry: { attempts: 20, initialBackoffMs: 100, maxBackoffMs: 1_000 },
    });
    cleanup.push(async () => labelerClient.close());
    const replicaFault = (what: 'teacher' | 'labeler', replica: Replica | undefined) => (sent: number) => {
      if (replica === undefined) throw new Error(`no ${what} replica`);
      return inject(
        what,
        sent,
        async () => {
          await replica.kill();
          return replica.name;
        },
        async () => {
          await replica.start();
          await waitServing(replica);
        },
      );
    };
    // One fault at a time, each under load: the producer keeps sending while a part is down, and
    // waits at the next fault's point until the previous one has recovered.
    const plan: Array<[number, (sent: number) => Promise<void>]> = [
      [
        Math.round(images * 0.25),
        (sent) =>
          inject(
            'nats',
            sent,
            async () => {
              await cluster.nodes[1]?.kill();
              return 'nats node-1';
            },
            async () => {
              await cluster.restart(1);
            },
          ),
      ],
      [Math.round(images * 0.5), replicaFault('teacher', teachers[0])],
      [Math.round(images * 0.75), replicaFault('labeler', labelers[0])],
    ];
    let fault: Promise<void> = Promise.resolve();
    async function* produce(): AsyncGenerator<IngestItem> {
      for (const [sent, item] of items.entries()) {
        const next = plan[0];
        if (next !== undefined && sent >= next[0]) {
          plan.shift();
          await fault;
          fault = next[1](sent);
          fault.catch(() => undefined);
        }
        yield item;
      }
    }
    const summary = await labelerClient.ingest(produce(), { window: 64 });
    for (const rejection of summary.rejections)
      failures.push(`Ingest ${rejection.sourceId}: ${rejection.codeName} ${rejection.reason}`);
    log(`ingested: ${summary.stored} stored, ${summary.duplicates} duplicates, ${summary.rejected} rejected`);
    await fault;
    await labeledThrough('v1', images);
    log('every image labeled with v1');

    // The trainer: killed mid-round once it has checkpointed, restarted on its state folder.
    const trainerClient = connectTrainer({ address: `127.0.0.1:${trainerPort}` });
    cleanup.push(async () => trainerClient.close());
    const killStep = 25;
    await until(
      `round 1 training past step ${killStep}`,
      async () => {
        const status = await trainerClient.status();
        return status.phase === 'training' && status.round === 1 && status.step >= killStep ? true : undefined;
      },
      600_000,
      100,
    );
    const trainerKilledAt = Date.now();
    await trainer.kill();
    log(`SIGKILL trainer in round 1 at step ≥ ${killStep}`);
    await trainer.start();
    // Its step counts on from the checkpoint once the round has resumed; a round already
    // decided (the kill came after its last step) counts as resumed too.
    const resumedAt = await until('the trainer training round 1 again', async () => {
      const status = await trainerClient.status();
      if (status.round === 1 && status.phase === 'training' && status.step > 0) return status.step;
      return (await trainerClient.rounds()).some((record) => record.round === 1) ? 0 : undefined;
    });
    const trainerRecovery = (Date.now() - trainerKilledAt) / 1000;
    faults.push({
      what: 'trainer',
      at: `SIGKILL trainer in round 1 at step ≥ ${killStep}`,
      recoverySeconds: trainerRecovery,
    });
    log(`trainer training round 1 again at step ${resumedAt}, ${trainerRecovery.toFixed(1)} s after the kill`);

    const round = await until(
      'round 1 decided',
      async () => (await trainerClient.rounds()).find((record) => record.round === 1),
      600_000,
    );
    log(`round 1: ${round.decision} (${round.studentVersion})`);
    if (round.decision === 'promoted') {
      await labeledThrough('v2', images);
      log('every image labeled again with v2');
    }
    calling = false;
    await caller;

    // The accounting, from the shards and the registry.
    const outcomes: Record<string, number> = {};
    let lost = 0;
    let duplicated = 0;
    const expected = new Set(items.map((item) => item.sourceId));
    const versions = round.decision === 'promoted' ? ['v1', round.studentVersion] : ['v1'];
    for (const version of versions) {
      const everyId = shardOutcomes(await readShards(jsm, names.shardsStream, shardSubject(names, version))).everyId;
      const distinct = new Set(everyId);
      outcomes[version] = distinct.size;
      duplicated += everyId.length - distinct.size;
      lost += [...expected].filter((id) => !distinct.has(id)).length;
    }
    const history = await registry.history();
    const rounds = (await trainerClient.rounds()).map((record) => ({
      round: record.round,
      teacherVersion: record.teacherVersion,
      decision: record.decision,
      studentVersion: record.studentVersion,
    }));
    return {
      ingested: summary.stored + summary.duplicates,
      shards: (await jsm.streams.info(names.shardsStream)).state.messages,
      // Pointer writes after the bootstrap's v1.
      promotions: history.filter((record) => record.pointer.version !== 'v1').length,
      lost,
      duplicated,
      failedRequests: failures.length,
      faults,
      outcomes,
      rounds,
      predictCalls,
      failures: failures.slice(0, 20),
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 240_000,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await pause(everyMs);
  }
}

/** `call`, asked again for up to 30 s while it fails (a fresh cluster electing leaders). */
async function eventually<T>(what: string, call: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${what}: ${String(error)}`);
      await pause(250);
    }
  }
}
