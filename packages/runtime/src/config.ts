import { readFile } from 'node:fs/promises';

import type { z } from 'zod';

/** `maxBatchSize` → `--max-batch-size`. */
export function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
}

/** `maxBatchSize` with prefix `NS_TEACHER_` → `NS_TEACHER_MAX_BATCH_SIZE`. */
export function envName(key: string, prefix: string): string {
  return `${prefix}${key.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase()}`;
}

/** A setting that failed its schema: which one, where it can be set, what is allowed. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Parses a service's settings once, at start (docs/architecture.md §8): each key of `schema` comes from its flag
 * (`flags[key]`, already parsed by commander), else from the environment (`envName(key, prefix)`,
 * unless empty), else the schema's default. Every bad value is reported at once, each naming the
 * setting, its flag and variable, what is allowed and what was given.
 */
export function parseConfig<Schema extends z.ZodObject>(
  schema: Schema,
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  envPrefix: string,
): z.infer<Schema> {
  const input: Record<string, unknown> = {};
  for (const key of Object.keys(schema.shape)) {
    // An empty variable (`NS_X_PORT=` in an env file) is unset: coerced, it would be the number 0.
    const fromEnv = env[envName(key, envPrefix)] || undefined;
    // A bare boolean flag (`--insecure`) comes from commander as `true`.
    const flag = flags[key] === true ? 'true' : flags[key];
    const value = flag ?? fromEnv;
    if (value !== undefined) input[key] = value;
  }
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const key = String(issue.path[0] ?? '');
    const given = key in input ? `, got ${JSON.stringify(input[key])}` : '';
    return `setting ${key} (${flagName(key)} or ${envName(key, envPrefix)}): ${issue.message}${given}`;
  });
  return failWith(problems);
}

function failWith(problems: string[]): never {
  throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
}

/** A command-line option per setting of `schema`: `--max-batch-size <value>`, its `.describe()` text, variable and default. */
export function configOptions(
  schema: z.ZodObject,
  envPrefix: string,
): Array<{ flags: string; description: string; key: string }> {
  return Object.entries(schema.shape).map(([key, field]) => {
    const parsed = (field as z.ZodType).safeParse(undefined);
    const fallback = parsed.success && parsed.data !== undefined ? `; default ${JSON.stringify(parsed.data)}` : '';
    const description = (field as z.ZodType).description ?? '';
    // A setting that is off by default can be turned on by its bare flag (`--insecure`).
    const bare = parsed.success && parsed.data === false;
    return {
      key,
      flags: `${flagName(key)} ${bare ? '[value]' : '<value>'}`,
      description: `${description}${description === '' ? '' : ' '}(${envName(key, envPrefix)}${fallback})`,
    };
  });
}

/** The file a setting names (`key`, e.g. 'tlsCert'), or a ConfigError naming the setting and why it cannot be read. */
export async function readSettingFile(key: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new ConfigError(
      `${flagName(key)} ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
}

/** The first line of the file a setting names (a password or a token), trimmed; '' when empty. */
export async function firstLineOf(key: string, path: string): Promise<string> {
  return (await readSettingFile(key, path)).toString('utf8').split('\n')[0]?.trim() ?? '';
}
