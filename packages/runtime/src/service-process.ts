import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

/**
 * The message a service started by `spawnService` sends its parent once its ports are open:
 * the readiness signal of a process (its health service then says whether it serves).
 */
export interface ListeningMessage {
  type: 'listening';
  service: string;
  port: number;
  metricsPort: number;
}

function isListeningMessage(message: unknown): message is ListeningMessage {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'listening';
}

/** Tells the parent process, when there is one listening (spawnService), that the service listens. */
export function announceListening(message: Omit<ListeningMessage, 'type'>): void {
  process.send?.({ type: 'listening', ...message } satisfies ListeningMessage);
}

export interface SpawnServiceOptions {
  /** The service's flags, e.g. `['--port', '0']`. */
  args?: string[];
  /** @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Node's own flags. @default [] */
  execArgv?: string[];
  /**
   * Where the service's logs go: 'stderr' sends its stdout and stderr to this process's stderr,
   * leaving this process's stdout to its own output (a benchmark's result line). @default 'ignore'
   */
  output?: 'inherit' | 'ignore' | 'stderr';
  /** @default 60000 */
  timeoutMs?: number;
}

/** A service process that is listening. */
export interface SpawnedService {
  child: ChildProcess;
  port: number;
  metricsPort: number;
  /** `127.0.0.1:<port>`. */
  address: string;
  /** SIGTERM (graceful stop), then the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts a service's main (`node <entry> …args`) and resolves once it is listening, with the
 * ports it bound (port 0 picks free ones): benches and tests wait on this message instead of
 * reading logs. Rejects if the process exits first or `timeoutMs` passes.
 */
export async function spawnService(entry: string, options: SpawnServiceOptions = {}): Promise<SpawnedService> {
  const requested = options.output ?? 'ignore';
  const output = requested === 'stderr' ? 2 : requested;
  const child = fork(entry, options.args ?? [], {
    env: options.env ?? process.env,
    execArgv: options.execArgv ?? [],
    stdio: ['ignore', output, output, 'ipc'],
  });
  const timeoutMs = options.timeoutMs ?? 60_000;
  try {
    const listening = await new Promise<ListeningMessage>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${entry}: not listening after ${timeoutMs} ms`)), timeoutMs);
      child.on('message', (message) => {
        if (!isListeningMessage(message)) return;
        clearTimeout(timer);
        resolve(message);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${entry} exited (${signal ?? `code ${code}`}) before it was listening`));
      });
      child.once('error', reject);
    });
    return {
      child,
      port: listening.port,
      metricsPort: listening.metricsPort,
      address: `127.0.0.1:${listening.port}`,
      stop: async () => {
        if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        // A service that does not stop gracefully within the timeout is killed.
        const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        const [code] = (await exited) as [number | null];
        clearTimeout(killer);
        return code;
      },
    };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}
