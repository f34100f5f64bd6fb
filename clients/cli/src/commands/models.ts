// nsctl models ls | show | push | promote | rollback | export | history: the registry on NATS.
import { readFile, writeFile } from 'node:fs/promises';

import { ModelArtifact, type ModelMetadata } from '@noisystudent/proto';
import { openRegistry, type Registry, type TeacherRecord } from '@noisystudent/registry';
import type { Command } from 'commander';

import { CliError, EXIT } from '../cli-error.js';
import {
  allowedPath,
  allowedRootsOf,
  connectStackNats,
  makeOutput,
  resolveAddresses,
  type GlobalOptions,
} from '../context.js';
import { count, percent, table } from '../view/format.js';

export async function withRegistry<T>(global: GlobalOptions, use: (registry: Registry) => Promise<T>): Promise<T> {
  const addresses = await resolveAddresses(global);
  const nats = await connectStackNats(addresses, 'nsctl');
  try {
    return await use(await openRegistry(nats, { prefix: addresses.prefix }));
  } finally {
    await nats.close();
  }
}

function describePointer(record: TeacherRecord): string {
  const { pointer } = record;
  const accuracy =
    pointer.metrics === undefined ? '' : `, ${percent(pointer.metrics.top1Accuracy)} on ${pointer.metrics.dataset}`;
  return `${pointer.version}${accuracy} (by ${pointer.promotedBy}: ${pointer.reason})`;
}

function pointerJson(record: TeacherRecord): Record<string, unknown> {
  return { ...record.pointer, revision: record.revision };
}

function decodeArtifact(bytes: Uint8Array, where: string): ModelMetadata {
  let metadata: ModelMetadata | undefined;
  try {
    metadata = ModelArtifact.decode(bytes).metadata;
  } catch (error) {
    throw new CliError(`${where}: expected an encoded ModelArtifact (.nsmodel), it did not decode`, EXIT.usage, {
      cause: error,
    });
  }
  if (metadata === undefined) {
    throw new CliError(
      `${where}: expected an encoded ModelArtifact (.nsmodel), it holds no model metadata`,
      EXIT.usage,
    );
  }
  if (metadata.version === '') throw new CliError(`${where}: the artifact's metadata names no version`, EXIT.usage);
  return metadata;
}

function describeMetadata(metadata: ModelMetadata): string[] {
  const lines = [
    `version       ${metadata.version}${metadata.parentVersion === '' ? '' : ` (parent ${metadata.parentVersion})`}`,
    `architecture  ${metadata.architecture} ${metadata.architectureConfigJson}`,
    `input         ${metadata.inputShape.join('×')}, classes: ${metadata.classNames.join(', ')}`,
  ];
  if (metadata.createdAt !== undefined) lines.push(`created       ${metadata.createdAt.toISOString()}`);
  const training = metadata.trainingConfig;
  if (training !== undefined) {
    const noise = training.noise;
    lines.push(
      `training      ${count(training.steps)} steps, batch ${training.labeledBatchSize} labeled + ${training.unlabeledBatchSize} pseudo-labeled, lr ${training.learningRate}, seed ${training.seed}` +
        (noise === undefined
          ? ''
          : `; noise: RandAugment ${noise.randaugmentNumOps}/${noise.randaugmentMagnitude}, dropout ${noise.dropoutRate}, stochastic depth ${noise.stochasticDepthFinalSurvival}`),
    );
  }
  for (const [name, metrics] of [
    ['eval', metadata.metrics],
    ['test', metadata.testMetrics],
  ] as const) {
    if (metrics === undefined) continue;
    lines.push(
      `${name.padEnd(13)} ${percent(metrics.top1Accuracy)} top-1 on ${count(metrics.exampleCount)} ${metrics.dataset} images, ECE ${metrics.expectedCalibrationError.toFixed(4)}`,
    );
  }
  return lines;
}

export function registerModels(program: Command): void {
  const models = program
    .command('models')
    .description('model versions in the registry (NATS): list, inspect, push, promote, roll back, export');

  const action =
    <A extends unknown[]>(run: (global: GlobalOptions, ...args: A) => Promise<void>) =>
    async (...args: [...A, Command]): Promise<void> => {
      const command = args[args.length - 1] as Command;
      await run(command.optsWithGlobals<GlobalOptions>(), ...(args.slice(0, -1) as A));
    };

  models
    .command('ls')
    .description('stored versions; * marks the teacher')
    .action(
      action(async (global) => {
        const out = makeOutput(global.json);
        const { versions, teacher } = await withRegistry(global, async (registry) => ({
          versions: await registry.listVersions(),
          teacher: await registry.readTeacher(),
        }));
        out.result({ teacher: teacher?.pointer.version ?? null, versions }, () => {
          out.line(
            table([
              ['', 'version', 'size', 'sha256', 'stored'],
              ...versions.map((info) => [
                info.version === teacher?.pointer.version ? '*' : '',
                info.version,
                `${count(info.size / 1024)} KiB`,
                info.sha256.slice(0, 12),
                info.storedAt.toISOString(),
              ]),
            ]),
          );
          out.line(teacher === undefined ? 'no teacher yet' : `teacher: ${describePointer(teacher)}`);
        });
      }),
    );

  models
    .command('show')
    .description("a version's metadata: parent, architecture, classes, training settings, eval and test accuracy")
    .argument('<version>')
    .action(
      action(async (global, version: string) => {
        const out = makeOutput(global.json);
        const { bytes, info } = await withRegistry(global, (registry) => registry.getArtifact(version));
        const metadata = decodeArtifact(bytes, version);
        out.result({ info, metadata }, () => {
          for (const line of describeMetadata(metadata)) out.line(line);
          out.line(`stored        ${info.storedAt.toISOString()}, ${count(info.size)} bytes, sha256 ${info.sha256}`);
        });
      }),
    );

  models
    .command('push')
    .description('store an artifact file under the version its metadata names; --promote makes it the teacher')
    .argument(
      '<file>',
      'an encoded ModelArtifact (.nsmodel), e.g. from `nsctl models export` or `npm run experiment -- --save-teacher`',
    )
    .option('--promote', 'make it the teacher (compare-and-set on the current pointer)', false)
    .option('--reason <text>', 'why it is promoted', 'pushed with nsctl')
    .action(
      action(async (global, file: string, flags: { promote: boolean; reason: string }) => {
        const out = makeOutput(global.json);
        const real = await allowedPath(await allowedRootsOf(global), 'file', file, 'read');
        const bytes = new Uint8Array(
          await readFile(real).catch((error: unknown) => {
            throw new CliError(`${file}: ${error instanceof Error ? error.message : String(error)}`, EXIT.usage);
          }),
        );
        const metadata = decodeArtifact(bytes, file);
        const { info, teacher } = await withRegistry(global, async (registry) => {
          const stored = await registry.putArtifact(bytes, metadata.version);
          if (!flags.promote) return { info: stored, teacher: undefined };
          const current = await registry.readTeacher();
          const promoted = await registry.promote(
            {
              version: metadata.version,
              promotedBy: 'nsctl',
              reason: flags.reason,
              ...(metadata.metrics ? { metrics: metadata.metrics } : {}),
            },
            current?.revision ?? 0,
          );
          return { info: stored, teacher: promoted };
        });
        out.result({ stored: info, teacher: teacher === undefined ? null : pointerJson(teacher) }, () => {
          out.line(`stored ${info.version} (${count(info.size)} bytes, sha256 ${info.sha256.slice(0, 12)})`);
          if (teacher !== undefined) out.line(`teacher: ${describePointer(teacher)}`);
        });
      }),
    );

  models
    .command('promote')
    .description(
      'make a stored version the teacher (compare-and-set on the current pointer); the teacher service swaps to it',
    )
    .argument('<version>')
    .option('--reason <text>', 'why it is promoted', 'promoted with nsctl')
    .action(
      action(async (global, version: string, flags: { reason: string }) => {
        const out = makeOutput(global.json);
        const teacher = await withRegistry(global, async (registry) => {
          const current = await registry.readTeacher();
          return registry.promote({ version, promotedBy: 'nsctl', reason: flags.reason }, current?.revision ?? 0);
        });
        out.result(pointerJson(teacher), () => out.line(`teacher: ${describePointer(teacher)}`));
      }),
    );

  models
    .command('rollback')
    .description('make a version that was teacher before the teacher again')
    .argument('<version>')
    .action(
      action(async (global, version: string) => {
        const out = makeOutput(global.json);
        const teacher = await withRegistry(global, async (registry) => {
          const current = await registry.readTeacher();
          return registry.rollback(version, current?.revision ?? 0, 'nsctl');
        });
        out.result(pointerJson(teacher), () => out.line(`teacher: ${describePointer(teacher)}`));
      }),
    );

  models
    .command('export')
    .description(
      'write a stored version to a file (checked against its sha256), to serve (ns-teacher --model-file) or push elsewhere',
    )
    .argument('<version>')
    .argument('<file>')
    .action(
      action(async (global, version: string, file: string) => {
        const out = makeOutput(global.json);
        const target = await allowedPath(await allowedRootsOf(global), 'file', file, 'write');
        const { bytes, info } = await withRegistry(global, (registry) => registry.getArtifact(version));
        await writeFile(target, bytes);
        out.result({ version, file, size: info.size, sha256: info.sha256 }, () =>
          out.line(`wrote ${version} to ${file} (${count(info.size)} bytes, sha256 ${info.sha256.slice(0, 12)})`),
        );
      }),
    );

  models
    .command('history')
    .description('every kept teacher pointer, oldest first: who promoted it and why')
    .action(
      action(async (global) => {
        const out = makeOutput(global.json);
        const history = await withRegistry(global, (registry) => registry.history());
        out.result(history.map(pointerJson), () => {
          out.line(
            table([
              ['version', 'promoted', 'by', 'eval', 'reason'],
              ...history.map(({ pointer }) => [
                pointer.version,
                pointer.promotedAt?.toISOString() ?? '',
                pointer.promotedBy,
                pointer.metrics === undefined ? '' : percent(pointer.metrics.top1Accuracy),
                pointer.reason,
              ]),
            ]),
          );
        });
      }),
    );
}
