#!/usr/bin/env node
// nsctl: the noisystudent system from the command line.
import { readFileSync } from 'node:fs';

import { ClientError } from '@noisystudent/client';
import { isNsError } from '@noisystudent/core';
import { Command, CommanderError, Option } from 'commander';

import { CliError, EXIT } from './cli-error.js';
import { registerDemo } from './commands/demo.js';
import { registerIngest } from './commands/ingest.js';
import { registerModels } from './commands/models.js';
import { registerPredict } from './commands/predict.js';
import { registerReport } from './commands/report.js';
import { registerRounds } from './commands/rounds.js';
import { registerStackCommands } from './commands/stack-commands.js';
import { registerToken } from './commands/token.js';
import { DEFAULT_DATA_DIR } from './context.js';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

const program = new Command('nsctl')
  .version(version)
  .description(
    'The noisystudent system from the command line: the local stack, predictions, ingestion, models, rounds, the report.',
  )
  .addOption(
    new Option('--data <dir>', "the local stack's folder (NATS data, trainer state, logs, stack.json)")
      .env('NS_DATA_DIR')
      .default(DEFAULT_DATA_DIR),
  )
  .option('--json', 'print the result as one JSON value on stdout (progress stays on stderr)', false)
  .option('--teacher <address>', 'the teacher service (default: the stack from --data, else 127.0.0.1:50051)')
  .option('--labeler <address>', 'the labeler service (default: the stack from --data, else 127.0.0.1:50052)')
  .option('--trainer <address>', 'the trainer service (default: the stack from --data, else 127.0.0.1:50053)')
  .option(
    '--nats-url <urls>',
    'NATS (registry), comma-separated (default: the stack from --data, else nats://127.0.0.1:4222)',
  )
  .option('--prefix <prefix>', "prefix of the NATS names (default: the stack's, else ns)")
  .option('--nats-user <user>', "NATS user for the registry (default: the stack's admin user)")
  .option('--nats-password-file <file>', 'a file whose first line is the password of --nats-user')
  .option('--nats-tls-ca <file>', 'PEM CA to verify NATS servers that require TLS')
  .addOption(
    new Option(
      '--allowed-roots <dirs>',
      'folders, comma-separated, the files nsctl reads and writes must lie in, links resolved (default: the working directory, the temp folder, /usr/share/datasets)',
    ).env('NS_ALLOWED_ROOTS'),
  )
  .option(
    '--token-file <file>',
    'a file whose first line is the token for services started with tokens (else the NS_TOKEN variable)',
  )
  .showHelpAfterError()
  .addHelpText(
    'after',
    `
Exit codes: 0 done, 1 failed, 2 bad usage or input, 3 a service or NATS not reachable,
4 refused (not found, conflict, precondition), 130 interrupted.

Start here:  nsctl up; nsctl status; nsctl ingest --dataset fashion-mnist --limit 10000;
             nsctl rounds; nsctl predict image.png; nsctl report report; nsctl down`,
  );
program.exitOverride();

registerStackCommands(program);
registerPredict(program);
registerIngest(program);
registerModels(program);
registerRounds(program);
registerReport(program);
registerDemo(program);
registerToken(program);

function exitCodeOf(error: unknown): number {
  if (error instanceof CliError) return error.exitCode;
  if (error instanceof ClientError) {
    if (error.codeName === 'UNAVAILABLE' || error.codeName === 'DEADLINE_EXCEEDED') return EXIT.unavailable;
    if (['INVALID_ARGUMENT', 'OUT_OF_RANGE'].includes(error.codeName)) return EXIT.usage;
    if (
      ['NOT_FOUND', 'ALREADY_EXISTS', 'FAILED_PRECONDITION', 'ABORTED', 'RESOURCE_EXHAUSTED'].includes(error.codeName)
    )
      return EXIT.refused;
    return EXIT.failed;
  }
  if (isNsError(error)) {
    if (error.code === 'INVALID_ARGUMENT') return EXIT.usage;
    if (error.code === 'UNAVAILABLE') return EXIT.unavailable;
    return EXIT.refused;
  }
  return EXIT.failed;
}

process.on('SIGINT', () => {
  // A command with its own clean-up (the demo stops its stack) listens too and exits itself.
  if (process.listenerCount('SIGINT') > 1) return;
  process.stderr.write('\nnsctl: interrupted\n');
  process.exit(EXIT.interrupted);
});

try {
  await program.parseAsync();
} catch (error) {
  if (error instanceof CommanderError) {
    // Commander printed the message (or the help) already.
    process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    process.stderr.write(`nsctl: ${error instanceof Error ? error.message : String(error)}\n`);
    if (process.env['NS_DEBUG'] === '1' && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    process.exitCode = exitCodeOf(error);
  }
}
