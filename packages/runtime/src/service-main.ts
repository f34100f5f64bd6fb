import { Command } from 'commander';
import type { LevelWithSilent } from 'pino';
import type { z } from 'zod';

import { ConfigError, configOptions } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { announceListening } from './service-process.js';
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
  start(config: Config, log: Logger): Promise<{ port: number; metricsPort: number; stop(): Promise<void> }>;
}

/**
 * A service's whole `main.ts`: flags from the config schema, config parsed once (a bad setting
 * prints what is wrong and exits with 2), logger, start, then the readiness message to a parent
 * that spawned it (`spawnService`), graceful stop on SIGTERM/SIGINT. A start that fails is logged
 * and exits with 1.
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
  let service: Awaited<ReturnType<typeof spec.start>>;
  try {
    service = await spec.start(config, log);
  } catch (error) {
    log.fatal(
      { err: error },
      `${spec.name} could not start: ${error instanceof Error ? error.message : String(error)}`,
    );
    process.exit(1);
  }
  onShutdownSignal(() => service.stop(), log);
  announceListening({ service: spec.name, port: service.port, metricsPort: service.metricsPort });
}
