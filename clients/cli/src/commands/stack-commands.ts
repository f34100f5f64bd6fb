// nsctl up | down | status: the local stack.
import { connectLabeler, connectTeacher, connectTrainer } from '@noisystudent/client';
import type { Command } from 'commander';

import { CliError, EXIT } from '../cli-error.js';
import {
  allowedPath,
  allowedRootsOf,
  DEFAULT_DATA_DIR,
  makeOutput,
  resolveAddresses,
  type GlobalOptions,
} from '../context.js';
import { snapshotTable, takeSnapshot, unreachable } from '../snapshot.js';
import { readStack, startStack, stopStack, type ServiceName, type StackFile } from '../stack.js';
import { LiveView } from '../view/live-view.js';

/** Whether a service answers its health check (any status: the teacher is NOT_SERVING until it has a model). */
export async function answersHealth(service: ServiceName, address: string): Promise<boolean> {
  const options = { address, deadlineMs: 1_000, retry: false } as const;
  const client =
    service === 'teacher'
      ? connectTeacher(options)
      : service === 'labeler'
        ? connectLabeler(options)
        : connectTrainer(options);
  try {
    await client.health();
    return true;
  } catch {
    return false;
  } finally {
    client.close();
  }
}

export interface UpFlags {
  freePorts: boolean;
  preset?: string;
  trainerArg: string[];
  labelerArg: string[];
  teacherArg: string[];
  timeoutSeconds: string;
}

export async function upStack(global: GlobalOptions, flags: UpFlags, say: (line: string) => void): Promise<StackFile> {
  const timeout = Number(flags.timeoutSeconds);
  if (!(timeout > 0))
    throw new CliError(`--timeout-seconds: expected a positive number, got "${flags.timeoutSeconds}"`, EXIT.usage);
  const roots = await allowedRootsOf(global);
  await allowedPath(roots, '--data', global.data, 'write');
  return startStack(
    {
      dataDir: global.data,
      allowedRoots: roots.roots,
      freePorts: flags.freePorts,
      prefix: global.prefix ?? 'ns',
      extraArgs: {
        trainer: [...(flags.preset === undefined ? [] : ['--preset', flags.preset]), ...flags.trainerArg],
        labeler: flags.labelerArg,
        teacher: flags.teacherArg,
      },
      readyTimeoutMs: timeout * 1000,
      say,
    },
    answersHealth,
  );
}

/** ` --data DIR` when DIR is not the default, for commands printed to run next. */
const dataFlag = (data: string): string => (data === DEFAULT_DATA_DIR ? '' : ` --data ${data}`);

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerStackCommands(program: Command): void {
  program
    .command('up')
    .description(
      'start the local stack: nats-server with JetStream (data under --data), then the trainer, teacher and labeler; waits until each answers and prints their addresses',
    )
    .option('--free-ports', 'use free ports instead of 4222 and 50051–50053 (e.g. beside another stack)', false)
    .option('--preset <name>', "the trainer's sizes: default, demo, full, smoke (see ns-trainer --help)")
    .option(
      '--trainer-arg <flag>',
      'pass a flag to ns-trainer (repeat; e.g. --trainer-arg=--max-rounds=2)',
      collect,
      [],
    )
    .option('--labeler-arg <flag>', 'pass a flag to ns-labeler (repeat)', collect, [])
    .option('--teacher-arg <flag>', 'pass a flag to ns-teacher (repeat)', collect, [])
    .option('--timeout-seconds <s>', 'how long each part may take to start', '60')
    .addHelpText(
      'after',
      '\nWith an empty registry the trainer first trains teacher v1 (minutes); `nsctl status` shows its progress.',
    )
    .action(async (flags: UpFlags, command: Command) => {
      const global = command.optsWithGlobals<GlobalOptions>();
      const out = makeOutput(global.json);
      const stack = await upStack(global, flags, (line) => out.line(line));
      out.result(stack, () =>
        out.line(
          `up: \`nsctl${dataFlag(global.data)} status\` to follow, \`nsctl${dataFlag(global.data)} down\` to stop`,
        ),
      );
    });

  program
    .command('down')
    .description('stop the local stack gracefully (SIGTERM; the trainer checkpoints a round in progress)')
    .option('--timeout-seconds <s>', 'how long each process may take to stop before it is killed', '60')
    .action(async (flags: { timeoutSeconds: string }, command: Command) => {
      const global = command.optsWithGlobals<GlobalOptions>();
      const out = makeOutput(global.json);
      const stack = await readStack(global.data);
      if (stack === undefined) {
        throw new CliError(`no stack was started from ${global.data} (nothing to stop)`, EXIT.refused);
      }
      await stopStack(stack, { timeoutMs: Number(flags.timeoutSeconds) * 1000, say: (line) => out.line(line) });
      out.result({ stopped: stack.dataDir }, () => out.line(`down: data kept in ${stack.dataDir}`));
    });

  program
    .command('status')
    .description(
      "health of each service, the teacher's version, the labeler's counts, the trainer's phase/round/step/ETA",
    )
    .option('--watch', 'keep showing it, redrawn in place (Ctrl-C to stop)', false)
    .option('--interval-seconds <s>', 'how often --watch looks', '2')
    .action(async (flags: { watch: boolean; intervalSeconds: string }, command: Command) => {
      const global = command.optsWithGlobals<GlobalOptions>();
      const out = makeOutput(global.json);
      const addresses = await resolveAddresses(global);
      if (flags.watch) {
        const view = new LiveView({ stream: process.stdout, pipeEverySeconds: Number(flags.intervalSeconds) });
        for (;;) {
          const snapshot = await takeSnapshot(addresses);
          if (global.json) process.stdout.write(`${JSON.stringify(snapshot)}\n`);
          else view.render([`${new Date().toLocaleTimeString()}`, snapshotTable(snapshot)].join('\n').split('\n'));
          await new Promise((done) => setTimeout(done, Number(flags.intervalSeconds) * 1000));
        }
      }
      const snapshot = await takeSnapshot(addresses);
      out.result(snapshot, () => {
        if (addresses.stack !== undefined) out.line(`stack from ${addresses.stack.dataDir}, NATS ${addresses.natsUrl}`);
        out.line(snapshotTable(snapshot));
      });
      const down = unreachable(snapshot);
      if (down.length > 0) {
        out.note(
          `not reachable: ${down.join(', ')} — \`nsctl up\` starts the local stack (or give --teacher/--labeler/--trainer)`,
        );
        process.exitCode = EXIT.unavailable;
      }
    });
}
