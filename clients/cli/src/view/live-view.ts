// One block of status lines redrawn in place on a terminal (instead of a wall of logs); on a pipe
// or a file, the block is printed again only every `pipeEverySeconds` and when it changed.

export interface LiveViewOptions {
  stream?: NodeJS.WriteStream;
  /** On a non-terminal stream, print at most this often. @default 15 */
  pipeEverySeconds?: number;
}

export class LiveView {
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly pipeEveryMs: number;
  private shownLines = 0;
  private lastText = '';
  private lastPrinted = 0;

  constructor(options: LiveViewOptions = {}) {
    this.stream = options.stream ?? process.stderr;
    this.tty = this.stream.isTTY === true && process.env['TERM'] !== 'dumb';
    this.pipeEveryMs = (options.pipeEverySeconds ?? 15) * 1000;
  }

  /** Shows `lines` in place of the previous block. */
  render(lines: string[], force = false): void {
    const text = lines.join('\n');
    if (this.tty) {
      const columns = this.stream.columns ?? 120;
      const clipped = lines.map((line) =>
        [...line].length > columns ? [...line].slice(0, columns - 1).join('') + '…' : line,
      );
      const up = this.shownLines > 0 ? `\x1b[${this.shownLines}F` : '';
      this.stream.write(`${up}${clipped.map((line) => `${line}\x1b[K`).join('\n')}\n\x1b[J`);
      this.shownLines = clipped.length;
      this.lastText = text;
      return;
    }
    const now = Date.now();
    if (text === this.lastText && !force) return;
    if (!force && now - this.lastPrinted < this.pipeEveryMs) return;
    this.stream.write(`${text}\n`);
    this.lastText = text;
    this.lastPrinted = now;
  }

  /** A line printed above the block, which stays (an event: "v2 promoted"). */
  log(line: string): void {
    if (this.tty && this.shownLines > 0) {
      this.stream.write(`\x1b[${this.shownLines}F\x1b[J`);
      this.shownLines = 0;
      this.stream.write(`${line}\n`);
      if (this.lastText !== '') this.render(this.lastText.split('\n'));
      return;
    }
    this.stream.write(`${line}\n`);
  }

  /** Leaves the last block on screen and moves on. */
  done(): void {
    this.shownLines = 0;
  }
}
