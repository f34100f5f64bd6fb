import type { Logger } from '@noisystudent/runtime';
import type { TeacherPointer } from '@noisystudent/proto';

import type { ModelHost } from './model-host.js';
import type { ModelSlot, ServingModel } from './model-slot.js';

/** Pause before watching the registry again after a watch ended on its own. */
const RETRY_DELAY_MS = 1_000;

/** What hot swap needs from the registry (@noisystudent/registry's Registry has it). */
export interface TeacherSource {
  watchTeacher(): { updates: AsyncIterable<{ pointer: TeacherPointer; revision: number }>; stop(): void };
  getArtifact(version: string, expectedSha256?: string): Promise<{ bytes: Uint8Array }>;
}

export interface HotSwapEvents {
  /** A version now serves. */
  swapped(model: ServingModel, previousVersion: string | undefined): void;
  /** A version was refused; the previous model (if any) keeps serving. */
  refused(version: string, error: unknown): void;
}

/**
 * Follows the registry's teacher pointer (DESIGN.md §5): on each new version, download, verify
 * the sha256, load and warm up in the worker, then switch atomically. A version that fails any
 * step is refused and logged; the model serving before keeps serving.
 */
export class HotSwap {
  private watcher: ReturnType<TeacherSource['watchTeacher']> | undefined;
  private loop: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly source: TeacherSource,
    private readonly host: ModelHost,
    private readonly slot: ModelSlot,
    private readonly warmupBatchSize: number,
    private readonly log: Logger,
    private readonly events: HotSwapEvents,
  ) {}

  /** Follows the pointer until `stop()`; a watch that ends or fails (NATS down) is started again after a pause. */
  start(): void {
    if (this.loop !== undefined) return;
    this.loop = (async () => {
      while (!this.stopped) {
        const watcher = this.source.watchTeacher();
        this.watcher = watcher;
        try {
          for await (const { pointer, revision } of watcher.updates) {
            const serving = this.slot.model;
            if (pointer.version === serving?.version && pointer.sha256 === serving.sha256) continue;
            await this.swapTo(pointer, revision);
          }
        } catch (error) {
          this.log.warn({ err: error }, 'registry watch failed; watching again');
        }
        watcher.stop();
        if (!this.stopped) await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS));
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.stop();
    await this.loop;
  }

  /** Loads the artifact `pointer` names and serves it; false (logged, reported) when refused. */
  async swapTo(pointer: TeacherPointer, revision = 0): Promise<boolean> {
    const previous = this.slot.model?.version;
    this.log.info({ version: pointer.version, revision, sha256: pointer.sha256 }, 'loading new teacher version');
    try {
      const { bytes } = await this.source.getArtifact(pointer.version, pointer.sha256);
      const loaded = await this.host.load(bytes, pointer.sha256, this.warmupBatchSize);
      if (loaded.metadata.version !== pointer.version) {
        await this.host.dispose(loaded.modelId);
        throw new Error(
          `artifact: metadata says version ${loaded.metadata.version}, the pointer says ${pointer.version}`,
        );
      }
      const model = this.slot.switchTo(loaded);
      this.log.info(
        { version: model.version, previous, loadMs: Math.round(loaded.loadMs) },
        'serving new teacher version',
      );
      this.events.swapped(model, previous);
      return true;
    } catch (error) {
      this.log.error({ err: error, version: pointer.version, serving: previous ?? null }, 'refused teacher version');
      this.events.refused(pointer.version, error);
      return false;
    }
  }
}
