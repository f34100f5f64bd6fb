// The labeling worker on real parts (nats-server, teacher services, the teacher pool) along the
// paths where a window fails: it is not acknowledged, it comes back, and in the end every image
// has exactly one outcome, from the worker's teacher version.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { labelingConsumer, natsNames, shardSubject, type NatsNames } from '@noisystudent/core';
import { makeTestArtifact, seededValues } from '@noisystudent/ml/testing';
import { startNatsServer, type NatsServer } from '@noisystudent/registry/testing';
import { createLogger } from '@noisystudent/runtime';
import { startTeacher, teacherConfig, type Teacher } from '@noisystudent/teacher';
import { Dtype, Shard, type Image } from '@noisystudent/proto';
import { AckPolicy, connect, DeliverPolicy, DiscardPolicy, type JetStreamManager, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { LogLines, type LogLine } from '../../../test/support/log-lines.js';
import { connectTeacher } from '../../../test/support/teacher-client.js';
import { publishUnlabeled } from './ingest.js';
import { LabelingWorker, type LabelingWorkerOptions } from './labeling-worker.js';
import type { WindowCounts } from './shards.js';
import { DEFAULT_RETENTION, ensureStreams } from '@noisystudent/runtime';
import { TeacherPool } from './teacher-pool.js';
import { readShards, shardOutcomes } from './testing/shard-outcomes.js';

const NOT_LABELED = 'window not labeled; it will be delivered again';

let directory: string;
let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
/** Serves v1: the version the workers below label for. */
let teacherV1: Teacher;
/** Serves v2, other weights: a replica that has already swapped to the next version. */
let teacherV2: Teacher;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'ns-labeling-worker-'));
  const files = { v1: join(directory, 'v1.nsmodel'), v2: join(directory, 'v2.nsmodel') };
  await writeFile(files.v1, (await makeTestArtifact({ version: 'v1', seed: 3 })).bytes);
  await writeFile(files.v2, (await makeTestArtifact({ version: 'v2', seed: 4 })).bytes);
  const start = async (modelFile: string): Promise<Teacher> => {
    const config = teacherConfig({ port: 0, metricsPort: 0, modelFile, maxBatchSize: 16, maxQueueDelayMs: 2 }, {});
    const teacher = await startTeacher(config, createLogger({ service: 'teacher', level: 'silent' }));
    await teacher.serving();
    return teacher;
  };
  [server, teacherV1, teacherV2] = await Promise.all([startNatsServer(), start(files.v1), start(files.v2)]);
  nc = await connect({ servers: server.url });
  jsm = await nc.jetstreamManager();
});

afterAll(async () => {
  await Promise.all([teacherV1?.stop(), teacherV2?.stop()]);
  await nc?.close();
  await server?.stop();
  await rm(directory, { recursive: true, force: true });
});

function pixels(count: number, seed: number): Uint8Array[] {
  return Array.from({ length: count }, (_, index) =>
    Uint8Array.from(seededValues(28 * 28, seed + index), (value) => Math.floor((value + 1) * 127.5)),
  );
}

const uint8Tensor = (data: Uint8Array): Image => ({
  content: { $case: 'tensor', value: { shape: [28, 28, 1], dtype: Dtype.UINT8, data: Buffer.from(data) } },
});

/** Fresh streams under `prefix` holding `count` images (`img-0` …), as Ingest stores them. */
async function streamsWithImages(prefix: string, count: number, seed: number): Promise<NatsNames> {
  const names = natsNames(prefix);
  await ensureStreams(jsm, names, DEFAULT_RETENTION);
  const js = nc.jetstream();
  const images = pixels(count, seed);
  for (const [index, data] of images.entries()) {
    await publishUnlabeled(js, names, 'test', {
      sourceId: `img-${index}`,
      image: uint8Tensor(data),
      ingestedAt: new Date(),
    });
  }
  return names;
}

/** A worker for v1 whose windows hold every image at once; `labeled` resolves with the first window it stores. */
function startWorker(
  names: NatsNames,
  pool: TeacherPool,
  logs: LogLines,
  options: Partial<LabelingWorkerOptions>,
): { worker: LabelingWorker; windows: WindowCounts[]; labeled: Promise<WindowCounts>; alreadyLabeled: number[] } {
  const windows: WindowCounts[] = [];
  const alreadyLabeled: number[] = [];
  let stored: (counts: WindowCounts) => void = () => undefined;
  const labeled = new Promise<WindowCounts>((resolve) => (stored = resolve));
  const worker = new LabelingWorker(
    nc.jetstream(),
    jsm,
    names,
    pool,
    {
      teacherVersion: 'v1',
      classes: 10,
      // Threshold 0, no balancing: every predicted image goes into a shard.
      policy: { threshold: 0, mode: 'hard' },
      windowSize: 1024,
      windowWaitMs: 1_000,
      maxPayloadBytes: 1024 * 1024,
      concurrentWindows: 1,
      ...options,
    },
    logs.log,
    (counts) => {
      windows.push(counts);
      stored(counts);
    },
    () => nc.flush(),
    (images) => alreadyLabeled.push(images),
  );
  return { worker, windows, labeled, alreadyLabeled };
}

/** How the worker's durable consumer stands: deliveries (first and again), and what is not finished. */
async function consumerState(names: NatsNames) {
  const info = await jsm.consumers.info(names.unlabeledStream, labelingConsumer('v1'));
  return { delivered: info.delivered.consumer_seq, pending: info.num_pending, unacknowledged: info.num_ack_pending };
}

const notLabeled = (line: LogLine): boolean => line.msg === NOT_LABELED;

describe('LabelingWorker', () => {
  it('naks a window stored only in part; when it comes back the stored part keeps its outcomes and the rest is labeled: one per image', async () => {
    const IMAGES = 40;
    const names = await streamsWithImages('partial', IMAGES, 100);
    // Room for one message: of the window's parts, the first to arrive is stored, the others refused.
    const shards = await jsm.streams.info(names.shardsStream);
    await jsm.streams.update(names.shardsStream, { ...shards.config, max_msgs: 1, discard: DiscardPolicy.New });
    const pool = TeacherPool.connect([`127.0.0.1:${teacherV1.port}`]);
    const logs = new LogLines('labeler');
    // 40 examples of ~0.8 kB under an 8 kB payload: the window goes out in several parts.
    const { worker, windows, labeled, alreadyLabeled } = startWorker(names, pool, logs, {
      maxPayloadBytes: 8 * 1024,
    });
    try {
      await worker.start();
      const failure = await logs.waitFor(notLabeled, 'the window to fail');
      expect(failure).toMatchObject({ level: 40, teacherVersion: 'v1', images: IMAGES });
      expect(failure.err).toMatchObject({ api_error: { err_code: 10077, description: 'maximum messages exceeded' } });
      expect((await jsm.streams.info(names.shardsStream)).state.messages).toBe(1);
      await jsm.streams.update(names.shardsStream, shards.config);

      const counts = await labeled;
      const parts = await readShards(jsm, names.shardsStream, shardSubject(names, 'v1'));
      // The part stored before the failure keeps its images' outcomes: when they come back they are
      // acknowledged, and the rest of the window is labeled as a window of its own.
      const kept = shardOutcomes(parts.slice(0, 1)).everyId.length;
      expect(kept).toBeGreaterThan(0);
      expect(alreadyLabeled.reduce((sum, images) => sum + images, 0)).toBe(kept);
      expect(counts).toMatchObject({ labeled: IMAGES - kept, inShards: IMAGES - kept, rejected: 0 });
      expect(windows).toHaveLength(1);
      expect(parts.length).toBeGreaterThan(1);
      expect(new Set(parts.map((part) => part.shardId)).size).toBe(parts.length);
      const { everyId } = shardOutcomes(parts);
      expect(everyId.sort()).toEqual(Array.from({ length: IMAGES }, (_, index) => `img-${index}`).sort());
      // Delivered at least twice, and finished.
      const state = await consumerState(names);
      expect(state.delivered).toBeGreaterThanOrEqual(2 * IMAGES);
      expect(state.pending + state.unacknowledged).toBe(0);
    } finally {
      await worker.stop();
      await pool.close();
    }
  });

  it('naks a window answered in part by another teacher version and labels it with its own once that one answers alone', async () => {
    const IMAGES = 16;
    const names = await streamsWithImages('mixed', IMAGES, 200);
    const images = pixels(IMAGES, 200);
    // Replicas mid-swap: one still serves v1, the other v2 already. A window's requests go to both.
    const pool = TeacherPool.connect([`127.0.0.1:${teacherV1.port}`, `127.0.0.1:${teacherV2.port}`], {
      retryDelayMs: 50,
    });
    await pool.waitForStreams(4);
    const logs = new LogLines('labeler');
    const { worker, labeled } = startWorker(names, pool, logs, {});
    try {
      await worker.start();
      const failure = await logs.waitFor(notLabeled, 'the window to fail');
      expect(failure).toMatchObject({
        level: 40,
        teacherVersion: 'v1',
        images: IMAGES,
        err: { type: 'VersionMismatch', message: 'teacher answered as v2, this worker labels for v1' },
      });
      expect((await jsm.streams.info(names.shardsStream)).state.messages).toBe(0);
      // The v2 replica leaves; the window comes back and is answered by v1 alone.
      await teacherV2.stop();

      const counts = await labeled;
      expect(counts).toMatchObject({ labeled: IMAGES, inShards: IMAGES });
      expect(await readShards(jsm, names.shardsStream, shardSubject(names, 'v2'))).toEqual([]);
      const parts = await readShards(jsm, names.shardsStream, shardSubject(names, 'v1'));
      const examples = parts.flatMap((part) => part.examples);
      expect(examples.map((example) => example.sourceId).sort()).toEqual(
        images.map((_, index) => `img-${index}`).sort(),
      );
      // Every label is v1's: what v1 answers for the image directly.
      const direct = connectTeacher(teacherV1.port);
      const answers = await direct.predict({ images: images.map(uint8Tensor) }).finally(() => direct.close());
      for (const example of examples) {
        const answer = answers.predictions[Number(example.sourceId.slice('img-'.length))];
        expect(example.confidence).toBeCloseTo(answer?.confidence ?? NaN, 4);
        // The label is v1's top class (compared by probability: a near tie may pick either).
        expect(answer?.probabilities[example.hardLabel]).toBeCloseTo(answer?.confidence ?? NaN, 4);
      }
      const state = await consumerState(names);
      expect(state.delivered).toBeGreaterThanOrEqual(2 * IMAGES);
      expect(state.pending + state.unacknowledged).toBe(0);
    } finally {
      await worker.stop();
      await pool.close();
    }
  });

  it('keeps a window it holds past the ack wait (a teacher away) from being delivered again', async () => {
    const IMAGES = 12;
    const ACK_WAIT_MS = 3_000;
    const names = await streamsWithImages('held', IMAGES, 300);
    // The teacher's address, with nothing listening on it yet.
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = probe.address() as { port: number };
        probe.close(() => resolve(free));
      });
    });
    const pool = TeacherPool.connect([`127.0.0.1:${port}`], { retryDelayMs: 50 });
    const logs = new LogLines('labeler');
    // Two windows at once: an image delivered again would land in the second one.
    const { worker, windows, labeled } = startWorker(names, pool, logs, {
      ackWaitMs: ACK_WAIT_MS,
      windowWaitMs: 200,
      concurrentWindows: 2,
    });
    let teacher: Teacher | undefined;
    try {
      await worker.start();
      // The window is held for three ack waits before any teacher answers: only time can show
      // that NATS did not deliver its images again meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 3 * ACK_WAIT_MS));
      const config = teacherConfig(
        { port, metricsPort: 0, modelFile: join(directory, 'v1.nsmodel'), maxBatchSize: 16, maxQueueDelayMs: 2 },
        {},
      );
      teacher = await startTeacher(config, createLogger({ service: 'teacher', level: 'silent' }));
      await labeled;
      // The images may have been split between the two windows; wait until all are acknowledged.
      for (let state = await consumerState(names); state.pending + state.unacknowledged > 0;) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        state = await consumerState(names);
      }
      // Each image delivered once: none came back while its window waited for the teacher.
      expect(await consumerState(names)).toEqual({ delivered: IMAGES, pending: 0, unacknowledged: 0 });
      expect(windows.reduce((sum, counts) => sum + counts.labeled, 0)).toBe(IMAGES);
      expect(logs.lines.filter(notLabeled)).toEqual([]);
      const { everyId } = shardOutcomes(await readShards(jsm, names.shardsStream, shardSubject(names, 'v1')));
      expect(everyId.sort()).toEqual(Array.from({ length: IMAGES }, (_, index) => `img-${index}`).sort());
    } finally {
      await worker.stop();
      await pool.close();
      await teacher?.stop();
    }
  });

  it('stores one outcome per image when two replicas label the same images at once (each a first delivery)', async () => {
    const IMAGES = 48;
    // The same images in two streams, each with its own consumer, one shards subject: as when a
    // consumer's new leader delivers again what its dead leader had delivered, not knowing it did.
    const names = await streamsWithImages('twice', IMAGES, 600);
    const other = await streamsWithImages('twice-b', IMAGES, 600);
    const pool = TeacherPool.connect([`127.0.0.1:${teacherV1.port}`]);
    const options = { windowSize: 8, windowWaitMs: 100, concurrentWindows: 2 };
    const first = startWorker(names, pool, new LogLines('labeler'), options);
    const second = startWorker(
      { ...names, unlabeledStream: other.unlabeledStream },
      pool,
      new LogLines('labeler'),
      options,
    );
    const workers = [first, second];
    try {
      await Promise.all(workers.map(({ worker }) => worker.start()));
      const finished = async (stream: string) => {
        const info = await jsm.consumers.info(stream, labelingConsumer('v1'));
        return info.num_pending + info.num_ack_pending === 0;
      };
      while (!((await finished(names.unlabeledStream)) && (await finished(other.unlabeledStream)))) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const { everyId } = shardOutcomes(await readShards(jsm, names.shardsStream, shardSubject(names, 'v1')));
      expect(everyId.sort()).toEqual(Array.from({ length: IMAGES }, (_, index) => `img-${index}`).sort());
      // Each image labeled by one worker and found taken by the other.
      const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
      expect(sum(workers.flatMap(({ windows }) => windows.map((counts) => counts.labeled)))).toBe(IMAGES);
      expect(sum(workers.flatMap(({ alreadyLabeled }) => alreadyLabeled))).toBe(IMAGES);
    } finally {
      await Promise.all(workers.map(({ worker }) => worker.stop()));
      await pool.close();
    }
  });

  it('acknowledges images delivered again that already have an outcome (their ack was lost) without labeling them twice', async () => {
    const IMAGES = 20;
    // Shorter than a window takes to fill (a pull waits at least 1 s): the images are also
    // delivered a third time while the worker's window fills, and must take one place in it.
    const ACK_WAIT_MS = 1_000;
    const names = await streamsWithImages('lost-ack', IMAGES, 500);
    // An earlier delivery, as a replica that stored the shard of half the images and died before
    // its acks reached the consumer: the consumer as the worker makes it, every image pulled, none acked.
    await jsm.consumers.add(names.unlabeledStream, {
      durable_name: labelingConsumer('v1'),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: ACK_WAIT_MS * 1_000_000,
      max_ack_pending: 2 * 1024,
    });
    const js = nc.jetstream();
    const consumer = await js.consumers.get(names.unlabeledStream, labelingConsumer('v1'));
    let pulled = 0;
    for await (const message of await consumer.fetch({ max_messages: IMAGES, expires: 2_000 })) {
      expect(message.redelivered).toBe(false);
      pulled++;
    }
    expect(pulled).toBe(IMAGES);
    const ids = Array.from({ length: IMAGES }, (_, index) => `img-${index}`);
    const earlier = Shard.fromPartial({
      shardId: 'v1.earlier.0',
      teacherVersion: 'v1',
      windowId: 'earlier',
      belowThresholdIds: ids.slice(0, IMAGES / 2),
    });
    await js.publish(shardSubject(names, 'v1'), Shard.encode(earlier).finish(), { msgID: earlier.shardId });

    const pool = TeacherPool.connect([`127.0.0.1:${teacherV1.port}`]);
    const { worker, windows, alreadyLabeled } = startWorker(names, pool, new LogLines('labeler'), {
      ackWaitMs: ACK_WAIT_MS,
      windowWaitMs: 200,
    });
    try {
      await worker.start();
      for (let state = await consumerState(names); state.pending + state.unacknowledged > 0;) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        state = await consumerState(names);
      }
      expect(alreadyLabeled.reduce((sum, images) => sum + images, 0)).toBe(IMAGES / 2);
      expect(windows.reduce((sum, counts) => sum + counts.labeled, 0)).toBe(IMAGES / 2);
      const { everyId } = shardOutcomes(await readShards(jsm, names.shardsStream, shardSubject(names, 'v1')));
      expect(everyId.sort()).toEqual([...ids].sort());
    } finally {
      await worker.stop();
      await pool.close();
    }
  });
});
