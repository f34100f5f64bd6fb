// nsctl token create: a bearer token for services started with tokens, and its line for their
// tokens file (which keeps only the token's sha256).
import { appendFile, chmod } from 'node:fs/promises';

import { InvalidArgument, newToken, ROLES, type Role } from '@noisystudent/core';
import type { Command } from 'commander';

import { CliError, EXIT } from '../cli-error.js';
import { makeOutput, type GlobalOptions } from '../context.js';

function parseRoles(text: string): Role[] {
  const roles = text.split(',').map((role) => role.trim());
  for (const role of roles) {
    if (!(ROLES as readonly string[]).includes(role)) {
      throw new CliError(`--roles: expected roles from ${ROLES.join(', ')}, got "${role}"`, EXIT.usage);
    }
  }
  return roles as Role[];
}

const UNIT_MS: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000 };

function durationMs(text: string): number {
  const match = /^([1-9][0-9]*)([dhm])$/.exec(text.trim());
  if (match === null)
    throw new CliError(`--expires-in: expected a count and d, h or m (e.g. 90d), got "${text}"`, EXIT.usage);
  return Number(match[1]) * (UNIT_MS[match[2] ?? 'd'] ?? 0);
}

export function registerToken(program: Command): void {
  const token = program.command('token').description('bearer tokens for services started with --tokens-file');
  token
    .command('create')
    .description(
      "a new random token with its roles: the token goes to the caller, the line (its sha256, never the token) to the services' tokens file",
    )
    .requiredOption('--name <name>', 'who uses it (metrics and refusals name it): letters, digits, . _ -')
    .requiredOption('--roles <roles>', `comma-separated, from ${ROLES.join(', ')} (admin may call anything)`)
    .option('--expires-in <duration>', 'refused after this long: e.g. 90d, 12h, 30m (default: never)')
    .option('--append <tokens-file>', 'append the line to this tokens file (created with mode 0600)')
    .addHelpText(
      'after',
      `
Roles: predict (Predict, PredictStream, GetModelInfo), ingest (Ingest), read (GetStats, GetStatus,
ListRounds, GetModelInfo), admin (everything). Give the services --tokens-file FILE; give callers
the token (nsctl --token-file FILE, or NS_TOKEN; the client's \`token\` option).`,
    )
    .action(async (flags: { name: string; roles: string; expiresIn?: string; append?: string }, command: Command) => {
      const out = makeOutput(command.optsWithGlobals<GlobalOptions>().json);
      const roles = parseRoles(flags.roles);
      const expires = flags.expiresIn === undefined ? undefined : new Date(Date.now() + durationMs(flags.expiresIn));
      let created: { token: string; line: string };
      try {
        created = newToken(flags.name, roles, expires);
      } catch (error) {
        if (error instanceof InvalidArgument) throw new CliError(`--${error.message}`, EXIT.usage);
        throw error;
      }
      if (flags.append !== undefined) {
        await appendFile(flags.append, `${created.line}\n`, { mode: 0o600 });
        await chmod(flags.append, 0o600);
      }
      out.result(
        {
          name: flags.name,
          roles,
          ...created,
          ...(expires ? { expires: expires.toISOString() } : {}),
          ...(flags.append ? { appendedTo: flags.append } : {}),
        },
        () => {
          out.line(created.token);
          out.note(
            flags.append === undefined
              ? `the line for the services' tokens file:\n${created.line}`
              : `appended "${flags.name}" to ${flags.append}; the token above is shown only now`,
          );
        },
      );
    });
}
