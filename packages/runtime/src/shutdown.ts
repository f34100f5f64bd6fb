import type { Logger } from 'pino';

/**
 * Runs `stop` once on the first SIGTERM or SIGINT; a second signal exits at once. Returns a
 * function that removes the handlers (for tests and for services stopped another way).
 */
export function onShutdownSignal(stop: (signal: string) => Promise<void>, log: Logger): () => void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    stop(signal).then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}
