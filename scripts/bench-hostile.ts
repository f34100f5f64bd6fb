// npm run bench:hostile -- --json: hostile input against the three services, each its own process
// (built mains) under its own NATS user, with TLS-less loopback gRPC and tokens. Cases: random
// and mutated images through Predict, calls with no, unknown or under-privileged tokens on every
// RPC, garbage and oversize gRPC frames, random messages published on the unlabeled and shard
// subjects, random bytes in the teacher pointer. Afterwards: do the services still serve, did the
// teacher leak tensors, does every acknowledged image have an outcome, was any unauthorized call
// accepted, did any process die. Progress on stderr; the last line on stdout is the JSON.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Client, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { connectLabeler, connectTeacher, connectTrainer, type ImageInput } from '@noisystudent/client';
import {
  natsAuthorizationConfig,
  natsNames,
  NATS_USERS,
  newToken,
  shardSubject,
  type NatsUser,
  type Role,
} from '@noisystudent/core';
import { makeTestArtifact } from '@noisystudent/ml/testing';
import { Dtype, Shard, TeacherPointer, UnlabeledImage } from '@noisystudent/proto';
import { openRegistry } from '@noisystudent/registry';
import { startNatsServer } from '@noisystudent/registry/testing';
import { HealthClient, spawnService, type SpawnedService } from '@noisystudent/runtime';
import { Command, InvalidArgumentError } from 'commander';
import fc from 'fast-check';
import sharp from 'sharp';
import { connect, headers } from 'nats';

const PREFIX = 'hostile';
const names = natsNames(PREFIX);
const MAX_MESSAGE_BYTES = 1024 * 1024;

const program = new Command()
  .name('bench:hostile')
  .description('Hostile input against the services: what they answer, and whether they still serve, leak or lose.')
  .option('--json', 'print only the final JSON line on stdout', false)
  .option('--cases <n>', 'hostile calls and messages in all', caseCount, 10_000)
  .option('--seed <n>', 'seed of the generated cases', caseCount, 1)
  .option('--service-logs', "the services' own logs on stderr", false);

function caseCount(value: string): number {
  const count = Number(value);
  if (!Number.isInteger(count) || count < 1)
    throw new InvalidArgumentError(`expected a positive integer, got ${value}`);
  return count;
}

async function main(): Promise<void> {
  const options = program.parse().opts<{ json: boolean; cases: number; seed: number; serviceLogs: boolean }>();
  const say = (line: string): void => void process.stderr.write(`bench:hostile: ${line}\n`);
  const started = Date.now();
  const cleanup: Array<() => Promise<unknown>> = [];
  try {
    const passwords = Object.fromEntries(
      NATS_USERS.map((user) => [user, randomBytes(18).toString('base64url')]),
    ) as Record<NatsUser, string>;
    const server = await startNatsServer({ config: natsAuthorizationConfig(PREFIX, passwords) });
    cleanup.push(() => server.stop());
    const as = async (user: NatsUser) => {
      const nc = await connect({ servers: server.url, user, pass: passwords[user] });
      cleanup.push(() => nc.close());
      return nc;
    };
    const [admin, producer, labelerUser, trainerUser] = await Promise.all([
      as('admin'),
      as('producer'),
      as('labeler'),
      as('trainer'),
    ]);
    const registry = await openRegistry(trainerUser, { prefix: PREFIX });
    await registry.putArtifact((await makeTestArtifact({ version: 'v1', seed: 2 })).bytes, 'v1');
    await registry.promote({ version: 'v1', promotedBy: 'trainer', reason: 'bench' }, 0);

    const directory = await mkdtemp(join(tmpdir(), 'ns-bench-hostile-'));
    cleanup.push(() => rm(directory, { recursive: true, force: true }));
    const tokens = {} as Record<Role, string>;
    const lines = (['predict', 'ingest', 'read', 'admin'] as Role[]).map((role) => {
      const created = newToken(`${role}-caller`, [role]);
      tokens[role] = created.token;
      return created.line;
    });
    const tokensFile = join(directory, 'tokens');
    await writeFile(tokensFile, `${lines.join('\n')}\n`, { mode: 0o600 });

    say('starting the teacher, labeler and trainer (each under its NATS user, with tokens)');
    const entry = (service: string): string =>
      fileURLToPath(new URL(`../services/${service}/dist/main.js`, import.meta.url));
    const common = (user: NatsUser): string[] => [
      ...['--port', '0', '--metrics-port', '0', '--nats-url', server.url, '--prefix', PREFIX],
      ...['--nats-user', user, '--nats-password', passwords[user], '--tokens-file', tokensFile],
    ];
    const maxMessage = ['--max-message-bytes', String(MAX_MESSAGE_BYTES)];
    const spawn = async (service: string, args: string[]): Promise<SpawnedService> => {
      const spawned = await spawnService(entry(service), {
        args,
        output: options.serviceLogs ? 'stderr' : 'ignore',
        timeoutMs: 180_000,
      });
      cleanup.push(() => spawned.stop());
      return spawned;
    };
    const teacher = await spawn('teacher', [...common('teacher'), ...maxMessage, '--max-images-per-request', '8']);
    const labeler = await spawn('labeler', [
      ...common('labeler'),
      ...maxMessage,
      ...['--teachers', teacher.address, '--teacher-token', tokens.predict, '--window-wait-ms', '200'],
      ...['--balance', 'none'],
    ]);
    const trainer = await spawn('trainer', [
      ...common('trainer'),
      ...['--state-dir', join(directory, 'trainer'), '--preset', 'smoke', '--min-images', '1000000000'],
    ]);
    const services = { teacher, labeler, trainer };
    const exits: string[] = [];
    for (const [name, service] of Object.entries(services)) {
      service.child.once('exit', (code, signal) => exits.push(`${name} exited (${signal ?? `code ${code}`})`));
    }
    const predictClient = connectTeacher({ address: teacher.address, token: tokens.predict, retry: false });
    cleanup.push(async () => predictClient.close());
    await waitServing(teacher.address);
    const tensorsBefore = await teacherTensors(teacher.metricsPort);
    say(`teacher serving v1 with ${tensorsBefore} tensors; running ${options.cases} cases (seed ${options.seed})`);

    // The cases, in shares of the whole.
    const share = (fraction: number): number => Math.max(1, Math.round(options.cases * fraction));
    const plan = {
      predict: share(0.4),
      unauthorized: share(0.15),
      garbageFrames: share(0.12),
      oversizeFrames: share(0.03),
      unlabeledMessages: share(0.25),
      shardMessages: share(0.04),
      pointerValues: 0,
    };
    plan.pointerValues = Math.max(1, options.cases - Object.values(plan).reduce((sum, count) => sum + count, 0));
    const outcomes: Record<string, Record<string, number>> = {};
    const tally = (kind: string, outcome: string): void => {
      outcomes[kind] ??= {};
      outcomes[kind][outcome] = (outcomes[kind][outcome] ?? 0) + 1;
    };
    const code = (error: unknown): string =>
      error === undefined ? 'OK' : (status[(error as ServiceError).code] ?? String(error));

    // 1. Random and mutated images through Predict.
    const gray = Buffer.from(Array.from({ length: 784 }, (_, index) => (index * 7) % 256));
    const png = await sharp(gray, { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toBuffer();
    const jpeg = await sharp(gray, { raw: { width: 28, height: 28, channels: 1 } })
      .jpeg()
      .toBuffer();
    const images = fc.sample(fc.array(imageArbitrary(png, jpeg), { minLength: 1, maxLength: 10 }), {
      numRuns: plan.predict,
      seed: options.seed,
    });
    for (const batch of images) {
      const error = await predictClient.predict(batch).then(
        () => undefined,
        (failure: unknown) => failure,
      );
      tally('predict', code(error));
    }
    say(`predict: ${JSON.stringify(outcomes['predict'])}`);

    // 2. Calls without a valid token, or with a token lacking the role, on every RPC.
    let unauthorizedAccepted = 0;
    const stranger = newToken('stranger', ['admin']).token;
    const callers: Array<{ label: string; token: string | undefined; allowed: readonly string[] }> = [
      { label: 'no token', token: undefined, allowed: [] },
      { label: 'unknown token', token: stranger, allowed: [] },
      { label: 'ingest token', token: tokens.ingest, allowed: ['Ingest'] },
      { label: 'read token', token: tokens.read, allowed: ['GetModelInfo', 'GetStats', 'GetStatus', 'ListRounds'] },
      { label: 'predict token', token: tokens.predict, allowed: ['Predict', 'GetModelInfo'] },
    ];
    const rpcs = ['Predict', 'GetModelInfo', 'Ingest', 'GetStats', 'GetStatus', 'ListRounds'];
    const refusedPairs = callers.flatMap((caller) =>
      rpcs.filter((rpc) => !caller.allowed.includes(rpc)).map((rpc) => ({ caller, rpc })),
    );
    for (let index = 0; index < plan.unauthorized; index++) {
      const pair = refusedPairs[index % refusedPairs.length];
      if (pair === undefined) break;
      const outcome = await unauthorizedCall(pair.rpc, pair.caller.token, services);
      tally('unauthorized', outcome);
      if (outcome === 'OK') unauthorizedAccepted++;
    }
    say(`unauthorized: ${JSON.stringify(outcomes['unauthorized'])}`);

    // 3. Garbage protobuf frames, and frames over the size limit, on every RPC (admin token).
    const unary = [
      [teacher.address, '/noisystudent.v1.Teacher/Predict'],
      [teacher.address, '/noisystudent.v1.Teacher/GetModelInfo'],
      [labeler.address, '/noisystudent.v1.Labeler/GetStats'],
      [trainer.address, '/noisystudent.v1.Trainer/GetStatus'],
      [trainer.address, '/noisystudent.v1.Trainer/ListRounds'],
    ] as const;
    const streams = [
      [teacher.address, '/noisystudent.v1.Teacher/PredictStream'],
      [labeler.address, '/noisystudent.v1.Labeler/Ingest'],
    ] as const;
    const garbage = fc.sample(fc.uint8Array({ maxLength: 512 }), { numRuns: plan.garbageFrames, seed: options.seed });
    for (const [index, bytes] of garbage.entries()) {
      // Five unary calls, then two streams whose one request is garbage, in turn.
      const turn = index % (unary.length + streams.length);
      const stream = streams[turn - unary.length];
      const [address, path] = unary[turn] ?? stream ?? unary[0];
      const answer =
        stream === undefined
          ? await rawUnary(address, path, Buffer.from(bytes), tokens.admin)
          : await rawStream(address, path, Buffer.from(bytes), tokens.admin);
      tally('garbageFrames', answer);
    }
    for (let index = 0; index < plan.oversizeFrames; index++) {
      const [address, path] = unary[index % unary.length] ?? unary[0];
      tally('oversizeFrames', await rawUnary(address, path, randomBytes(MAX_MESSAGE_BYTES + 1024), tokens.admin));
    }
    say(`frames: ${JSON.stringify(outcomes['garbageFrames'])}, oversize ${JSON.stringify(outcomes['oversizeFrames'])}`);

    // 4. Random messages on the unlabeled subject (producer) and the shard subject (labeler's user).
    const acked = new Set<string>();
    const producerJs = producer.jetstream();
    const messages = fc.sample(unlabeledArbitrary(), { numRuns: plan.unlabeledMessages, seed: options.seed });
    for (const [index, data] of messages.entries()) {
      const id = `hostile-${index}`;
      const header = headers();
      header.set('Nats-Msg-Id', id);
      try {
        await producerJs.publish(`${PREFIX}.unlabeled.bench`, data, { headers: header });
        acked.add(sourceIdOf(data) ?? id);
        tally('unlabeledMessages', 'acked');
      } catch {
        tally('unlabeledMessages', 'refused');
      }
    }
    const labelerJs = labelerUser.jetstream();
    const shardGarbage = fc.sample(fc.uint8Array({ maxLength: 2048 }), {
      numRuns: plan.shardMessages,
      seed: options.seed,
    });
    for (const bytes of shardGarbage) {
      await labelerJs.publish(shardSubject(names, 'v1'), bytes);
      tally('shardMessages', 'published');
    }

    // 5. Random bytes in the teacher pointer (admin), then a good pointer again.
    const adminJs = admin.jetstream();
    const pointerKey = `$KV.${names.registryBucket}.${names.teacherKey}`;
    for (let index = 0; index < plan.pointerValues; index++) {
      await adminJs.publish(pointerKey, randomBytes(1 + (index % 200)));
      tally('pointerValues', 'written');
    }
    await adminJs.publish(
      pointerKey,
      TeacherPointer.encode(
        TeacherPointer.fromPartial({ version: 'v1', promotedBy: 'bench', reason: 'restore' }),
      ).finish(),
    );

    // What is left standing.
    say('waiting for every acknowledged message to have an outcome');
    const jsm = await admin.jetstreamManager();
    const deadline = Date.now() + 180_000;
    let missing = [...acked];
    while (Date.now() < deadline) {
      const seen = await outcomeIds(jsm, names.shardsStream, shardSubject(names, 'v1'));
      missing = [...acked].filter((id) => !seen.has(id));
      if (missing.length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    const servedAfter =
      exits.length === 0 &&
      (await Promise.all(Object.values(services).map((service) => health(service.address)))).every(
        (answer) => answer === 'SERVING',
      ) &&
      (await predictClient
        .predict({ shape: [28, 28, 1], dtype: 'uint8', data: gray })
        .then((answer) => answer.modelVersion === 'v1')
        .catch(() => false));
    const tensorsAfter = await teacherTensors(teacher.metricsPort);
    const cases = Object.values(outcomes).reduce(
      (sum, counts) => sum + Object.values(counts).reduce((total, count) => total + count, 0),
      0,
    );
    const line = {
      cases,
      served_after: servedAfter,
      leaked_tensors: tensorsAfter - tensorsBefore,
      lost: missing.length,
      unauthorized_accepted: unauthorizedAccepted,
      crashes: exits.length,
      outcomes,
      exits,
      seconds: Math.round((Date.now() - started) / 100) / 10,
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
    };
    if (!options.json) {
      say(
        `${cases} cases: served after ${servedAfter}, leaked ${line.leaked_tensors} tensors, lost ${line.lost}, unauthorized accepted ${unauthorizedAccepted}, crashes ${exits.length}`,
      );
    }
    process.stdout.write(`${JSON.stringify(line)}\n`);
  } finally {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
  }
}

/** Random bytes, PNG and JPEG bytes changed or cut, tensors of random shape, dtype and data. */
function imageArbitrary(png: Buffer, jpeg: Buffer): fc.Arbitrary<ImageInput> {
  const mutated = (base: Buffer) =>
    fc
      .tuple(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat())
      .map(([changes, cut]) => {
        const bytes = Buffer.from(base);
        for (const [at, value] of changes) bytes[at % bytes.length] = value;
        return bytes.subarray(0, bytes.length - (cut % 16));
      });
  const floats = fc
    .array(fc.oneof(fc.float({ min: 0, max: 255, noNaN: true }), fc.constantFrom(Number.NaN, Infinity, -Infinity)), {
      minLength: 784,
      maxLength: 784,
    })
    .map((values) => ({ shape: [28, 28, 1], dtype: 'float32' as const, data: Float32Array.from(values) }));
  return fc.oneof(
    fc.uint8Array({ maxLength: 2048 }).map((bytes) => Buffer.from(bytes)),
    mutated(png),
    mutated(jpeg),
    fc
      .tuple(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 3, maxLength: 3 }), fc.nat())
      .map(([shape, seed]) => ({
        shape,
        dtype: 'uint8' as const,
        data: new Uint8Array(shape.reduce((product, side) => product * side, 1)).fill(seed % 256),
      })),
    floats,
  );
}

/** Random bytes, an UnlabeledImage with bytes changed, or one with a tensor of random shape. */
function unlabeledArbitrary(): fc.Arbitrary<Uint8Array> {
  const good = (seed: number) =>
    UnlabeledImage.encode(
      UnlabeledImage.fromPartial({
        sourceId: `good-${seed}`,
        image: {
          content: {
            $case: 'tensor',
            value: { shape: [28, 28, 1], dtype: Dtype.UINT8, data: Buffer.alloc(784, seed % 256) },
          },
        },
      }),
    ).finish();
  return fc.oneof(
    fc.uint8Array({ maxLength: 1024 }),
    fc
      .tuple(fc.nat(1_000_000), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }))
      .map(([seed, changes]) => {
        const bytes = Buffer.from(good(seed));
        for (const [at, value] of changes) bytes[at % bytes.length] = value;
        return bytes;
      }),
    fc.nat(1_000_000).map(good),
  );
}

function sourceIdOf(data: Uint8Array): string | undefined {
  try {
    return UnlabeledImage.decode(data).sourceId || undefined;
  } catch {
    return undefined;
  }
}

/** Every source id with an outcome in the shards of `subject`; messages that are no Shard are skipped. */
async function outcomeIds(
  jsm: Awaited<ReturnType<Awaited<ReturnType<typeof connect>>['jetstreamManager']>>,
  stream: string,
  subject: string,
): Promise<Set<string>> {
  const info = await jsm.streams.info(stream);
  const ids = new Set<string>();
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const message = await jsm.streams.getMessage(stream, { seq }).catch(() => undefined);
    if (message === undefined || message.subject !== subject) continue;
    let shard: Shard;
    try {
      shard = Shard.decode(message.data);
    } catch {
      continue;
    }
    for (const example of shard.examples) ids.add(example.sourceId);
    for (const id of [...shard.belowThresholdIds, ...shard.cutByBalancingIds]) ids.add(id);
    for (const rejected of shard.rejected) ids.add(rejected.sourceId);
  }
  return ids;
}

async function unauthorizedCall(
  rpc: string,
  token: string | undefined,
  services: Record<'teacher' | 'labeler' | 'trainer', SpawnedService>,
): Promise<string> {
  const options = (address: string) => ({ address, retry: false as const, ...(token === undefined ? {} : { token }) });
  const outcome = async (call: () => Promise<unknown>): Promise<string> =>
    call().then(
      () => 'OK',
      (error: { codeName?: string }) => error.codeName ?? 'ERROR',
    );
  if (rpc === 'Predict' || rpc === 'GetModelInfo') {
    const client = connectTeacher(options(services.teacher.address));
    try {
      return await outcome(() =>
        rpc === 'Predict'
          ? client.predict({ shape: [28, 28, 1], dtype: 'uint8', data: new Uint8Array(784) })
          : client.modelInfo(),
      );
    } finally {
      client.close();
    }
  }
  if (rpc === 'Ingest' || rpc === 'GetStats') {
    const client = connectLabeler(options(services.labeler.address));
    try {
      return await outcome(async () => {
        if (rpc === 'GetStats') return client.stats();
        const summary = await client.ingest([
          {
            sourceId: `unauthorized-${randomBytes(4).toString('hex')}`,
            image: { shape: [28, 28, 1], dtype: 'uint8', data: new Uint8Array(784) },
          },
        ]);
        if (summary.rejected > 0) throw { codeName: summary.rejections[0]?.codeName ?? 'REJECTED' };
        return summary;
      });
    } finally {
      client.close();
    }
  }
  const client = connectTrainer(options(services.trainer.address));
  try {
    return await outcome(() => (rpc === 'GetStatus' ? client.status() : client.rounds()));
  } finally {
    client.close();
  }
}

/** A unary call whose request is `bytes` as they are (no protobuf encoding): the status it ends with. */
function rawUnary(address: string, path: string, bytes: Buffer, token: string): Promise<string> {
  const client = new Client(address, credentials.createInsecure(), {
    'grpc.max_send_message_length': 8 * 1024 * 1024,
  });
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (value: Buffer) => value,
      (value: Buffer) => value,
      bytes,
      metadata,
      { deadline: Date.now() + 10_000 },
      (error: ServiceError | null) => {
        client.close();
        resolve(error === null ? 'OK' : (status[error.code] ?? String(error.code)));
      },
    );
  });
}

/** A bidirectional stream that sends `bytes` as its one request: the status it ends with. */
function rawStream(address: string, path: string, bytes: Buffer, token: string): Promise<string> {
  const client = new Client(address, credentials.createInsecure());
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  return new Promise((resolve) => {
    const call = client.makeBidiStreamRequest(
      path,
      (value: Buffer) => value,
      (value: Buffer) => value,
      metadata,
      { deadline: Date.now() + 10_000 },
    );
    call.on('data', () => undefined);
    call.on('status', (outcome: { code: number }) => {
      client.close();
      resolve(status[outcome.code] ?? String(outcome.code));
    });
    call.on('error', () => undefined);
    call.write(bytes);
    call.end();
  });
}

async function health(address: string): Promise<string> {
  const client = new HealthClient(address);
  try {
    return await client.check('');
  } catch (error) {
    return String(error);
  } finally {
    client.close();
  }
}

async function waitServing(address: string): Promise<void> {
  const client = new HealthClient(address);
  try {
    await client.waitFor('SERVING', '', 120_000);
  } finally {
    client.close();
  }
}

async function teacherTensors(metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const match = /^teacher_tensors (\d+)/m.exec(text);
  if (match === null) throw new Error('teacher_tensors is not in the teacher metrics');
  return Number(match[1]);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench:hostile failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});
