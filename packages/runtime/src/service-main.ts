import { Command } from 'commander';
import type { LevelWithSilent } from 'pino';
import type { z } from 'zod';

import { ConfigError, configOptions } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { onShutdownSignal } from './shutdown.js';

export interface ServiceMainSpec<Config extends { logLevel: LevelWithSilent }> {
  /** The command's name, also the logs' `service`. */
  name: string;
  description: string;
  /** The settings: one `--flag` each (and `--help`), from the same schema the config is parsed with. */
  schema: z.ZodObject;
  envPrefix: string;
  /** Flags (as commander parsed them) to the checked config; throws ConfigError naming bad settings. */
  config(flags: Record<string, unknown>): Config;
  start(config: Config, log: Logger): Promise<{ stop(): Promise<void> }>;
}

/**
 * A service's whole `main.ts`: flags from the config schema, config parsed once (a bad setting
 * prints what is wrong and exits with 2), logger, start, graceful stop on SIGTERM/SIGINT.
 */
export async function runServiceMain<Config extends { logLevel: LevelWithSilent }>(
  spec: ServiceMainSpec<Config>,
): Promise<void> {
  const command = new Command(spec.name).description(spec.description);
  for (const option of configOptions(spec.schema, spec.envPrefix)) command.option(option.flags, option.description);
  command.parse();
  let config: Config;
  try {
    config = spec.config(command.opts());
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${spec.name}: ${error.message}\n`);
    process.exit(2);
  }
  const log = createLogger({ service: spec.name, level: config.logLevel });
  const service = await spec.start(config, log);
  onShutdownSignal(() => service.stop(), log);
}
