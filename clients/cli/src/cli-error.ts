/**
 * nsctl's exit codes, for scripts:
 * 0 done; 1 failed (anything unexpected); 2 bad usage or input (a flag, a file, a version);
 * 3 a service or NATS is not reachable; 4 refused by the system (not found, conflict, a
 * precondition such as "no teacher yet"); 130 interrupted.
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, unavailable: 3, refused: 4, interrupted: 130 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error nsctl reports as one line (its message says what to do) and exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = EXIT.failed,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'CliError';
  }
}
