#!/usr/bin/env node
// ns-registry: the model registry from the command line — list, store, promote, roll back.
import { readFile } from 'node:fs/promises';

import { isNsError } from '@noisystudent/core';
import { ModelArtifact } from '@noisystudent/proto';
import { Command } from 'commander';
import { connect, type NatsConnection } from 'nats';

import { openRegistry } from './registry.js';
import type { Registry, TeacherRecord } from './types.js';

interface GlobalOptions {
  natsUrl: string;
  prefix: string;
  json: boolean;
}

const program = new Command('ns-registry')
  .description('Model versions on NATS JetStream: artifacts in the Object Store, the teacher pointer in KV.')
  .option(
    '--nats-url <urls>',
    'NATS server URLs, comma-separated',
    process.env['NS_NATS_URL'] ?? 'nats://127.0.0.1:4222',
  )
  .option('--prefix <prefix>', 'prefix of the registry buckets (<prefix>_models, <prefix>_registry)', 'ns')
  .option('--json', 'print JSON instead of text', false)
  .showHelpAfterError();

async function withRegistry(use: (registry: Registry, options: GlobalOptions) => Promise<void>): Promise<void> {
  const options = program.opts<GlobalOptions>();
  const servers = options.natsUrl.split(',').map((url) => url.trim());
  let nats: NatsConnection;
  try {
    nats = await connect({ servers, name: 'ns-registry' });
  } catch (error) {
    throw new Error(
      `no NATS at ${servers.join(', ')} (${error instanceof Error ? error.message : String(error)}): start one with \`nats-server -js\``,
      { cause: error },
    );
  }
  try {
    await use(await openRegistry(nats, { prefix: options.prefix }), options);
  } finally {
    await nats.close();
  }
}

function describeTeacher(record: TeacherRecord): string {
  const { pointer, revision } = record;
  const accuracy =
    pointer.metrics === undefined
      ? ''
      : `, ${(pointer.metrics.top1Accuracy * 100).toFixed(2)}% on ${pointer.metrics.dataset}`;
  return `${pointer.version} (revision ${revision}${accuracy}, by ${pointer.promotedBy}: ${pointer.reason})`;
}

program
  .command('ls')
  .description('list stored versions and the current teacher')
  .action(() =>
    withRegistry(async (registry, options) => {
      const [versions, teacher] = await Promise.all([registry.listVersions(), registry.readTeacher()]);
      if (options.json) {
        console.log(JSON.stringify({ teacher: teacher?.pointer.version ?? null, versions }));
        return;
      }
      for (const info of versions) {
        const mark = info.version === teacher?.pointer.version ? '*' : ' ';
        console.log(
          `${mark} ${info.version}\t${info.size} bytes\t${info.sha256.slice(0, 12)}\t${info.storedAt.toISOString()}`,
        );
      }
      console.log(teacher === undefined ? 'no teacher yet' : `teacher: ${describeTeacher(teacher)}`);
    }),
  );

program
  .command('push')
  .description('store an artifact file under the version its metadata names; --promote makes it the teacher')
  .argument('<file>', 'an encoded ModelArtifact (.nsmodel)')
  .option('--promote', 'make it the teacher (compare-and-set on the current pointer)', false)
  .option('--reason <text>', 'why it is promoted', 'pushed by hand')
  .action((file: string, flags: { promote: boolean; reason: string }) =>
    withRegistry(async (registry, options) => {
      const bytes = new Uint8Array(await readFile(file));
      let version: string;
      let metadata: ModelArtifact['metadata'];
      try {
        metadata = ModelArtifact.decode(bytes).metadata;
        version = metadata?.version ?? '';
      } catch (error) {
        throw new Error(`${file}: expected an encoded ModelArtifact, it did not decode`, { cause: error });
      }
      if (version === '') throw new Error(`${file}: the artifact's metadata names no version`);
      const info = await registry.putArtifact(bytes, version);
      let teacher: TeacherRecord | undefined;
      if (flags.promote) {
        const current = await registry.readTeacher();
        teacher = await registry.promote(
          {
            version,
            promotedBy: 'ns-registry',
            reason: flags.reason,
            ...(metadata?.metrics ? { metrics: metadata.metrics } : {}),
          },
          current?.revision ?? 0,
        );
      }
      if (options.json) console.log(JSON.stringify({ stored: info, teacher: teacher?.pointer.version ?? null }));
      else {
        console.log(`stored ${version} (${info.size} bytes, sha256 ${info.sha256})`);
        if (teacher !== undefined) console.log(`teacher: ${describeTeacher(teacher)}`);
      }
    }),
  );

program
  .command('promote')
  .description('make a stored version the teacher (compare-and-set on the current pointer)')
  .argument('<version>')
  .option('--reason <text>', 'why it is promoted', 'promoted by hand')
  .action((version: string, flags: { reason: string }) =>
    withRegistry(async (registry, options) => {
      const current = await registry.readTeacher();
      const teacher = await registry.promote(
        { version, promotedBy: 'ns-registry', reason: flags.reason },
        current?.revision ?? 0,
      );
      console.log(options.json ? JSON.stringify(teacher.pointer) : `teacher: ${describeTeacher(teacher)}`);
    }),
  );

program
  .command('rollback')
  .description('make a version that was teacher before the teacher again')
  .argument('<version>')
  .action((version: string) =>
    withRegistry(async (registry, options) => {
      const current = await registry.readTeacher();
      const teacher = await registry.rollback(version, current?.revision ?? 0, 'ns-registry');
      console.log(options.json ? JSON.stringify(teacher.pointer) : `teacher: ${describeTeacher(teacher)}`);
    }),
  );

program
  .command('history')
  .description('every kept teacher pointer, oldest first')
  .action(() =>
    withRegistry(async (registry, options) => {
      const history = await registry.history();
      if (options.json)
        console.log(JSON.stringify(history.map((record) => ({ ...record.pointer, revision: record.revision }))));
      else for (const record of history) console.log(describeTeacher(record));
    }),
  );

program.parseAsync().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`ns-registry: ${message}\n`);
  // 2: the request was refused (bad argument, conflict, not found); 1: anything else.
  process.exitCode = isNsError(error) ? 2 : 1;
});
