import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export interface LoggerOptions {
  /** The service name, on every line. */
  service: string;
  /** @default 'info' */
  level?: LevelWithSilent;
  /** Where lines go. @default process.stdout (one JSON object per line) */
  destination?: NodeJS.WritableStream;
}

/** Structured JSON logs (pino): one object per line with `service`, `level`, `time`, `msg`. */
export function createLogger(options: LoggerOptions): Logger {
  const settings = { name: options.service, level: options.level ?? 'info', base: { service: options.service } };
  return options.destination === undefined
    ? pino(settings)
    : pino(settings, options.destination as pino.DestinationStream);
}
