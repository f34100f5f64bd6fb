// A logger whose lines a test can read and wait for: what a service reports (a failure it
// recovers from, a retry) is part of its behaviour.
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';

import { createLogger, type Logger } from '@noisystudent/runtime';

/** One pino line, parsed: `level` (40 warn, 50 error), `msg`, `err` and the logged fields. */
export interface LogLine {
  level: number;
  msg: string;
  err?: { type?: string; message?: string; [field: string]: unknown };
  [field: string]: unknown;
}

export class LogLines {
  readonly lines: LogLine[] = [];
  readonly log: Logger;
  private readonly added = new EventEmitter<{ line: [LogLine] }>();

  constructor(service: string) {
    const destination = new Writable({
      write: (chunk: Buffer | string, _encoding, done) => {
        for (const text of String(chunk).split('\n')) {
          if (text === '') continue;
          const line = JSON.parse(text) as LogLine;
          this.lines.push(line);
          this.added.emit('line', line);
        }
        done();
      },
    });
    this.log = createLogger({ service, level: 'debug', destination });
  }

  /** The lines logged so far with message `msg`. */
  withMessage(msg: string): LogLine[] {
    return this.lines.filter((line) => line.msg === msg);
  }

  /** The first line, logged already or to come, that `matches`; fails naming `what` after `timeoutMs`. */
  waitFor(matches: (line: LogLine) => boolean, what: string, timeoutMs = 30_000): Promise<LogLine> {
    const logged = this.lines.find(matches);
    if (logged !== undefined) return Promise.resolve(logged);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.added.off('line', listener);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for a log line: ${what}`));
      }, timeoutMs);
      const listener = (line: LogLine): void => {
        if (!matches(line)) return;
        clearTimeout(timer);
        this.added.off('line', listener);
        resolve(line);
      };
      this.added.on('line', listener);
    });
  }
}
