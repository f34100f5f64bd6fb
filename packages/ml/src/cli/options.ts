import { InvalidArgumentError } from 'commander';

/** A commander parser for an integer flag in [min, max]; the error names the flag and the range. */
export function integerOption(flag: string, min = 1, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`${flag}: expected an integer from ${min} to ${max}, got "${value}"`);
    }
    return parsed;
  };
}

/** A commander parser for a finite number > 0. */
export function positiveNumberOption(flag: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed <= 0) {
      throw new InvalidArgumentError(`${flag}: expected a positive number, got "${value}"`);
    }
    return parsed;
  };
}

/** Runs a command's main: a failure prints one line naming the command and exits with status 1. */
export function runMain(command: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    process.stderr.write(`${command} failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
