import { modelInputSpec, type ModelInputSpec } from '@noisystudent/ml';
import { ModelArtifact, type ModelMetadata, type TeacherPointer } from '@noisystudent/proto';
import type { Logger } from '@noisystudent/runtime';

import type { LabelingWorker } from './labeling-worker.js';

/** What the follower needs from the registry (@noisystudent/registry's Registry has it). */
export interface TeacherPointerSource {
  watchTeacher(): { updates: AsyncIterable<{ pointer: TeacherPointer; revision: number }>; stop(): void };
  getArtifact(version: string, expectedSha256?: string): Promise<{ bytes: Uint8Array }>;
}

/** Pause before watching the registry again after a watch ended on its own. */
const RETRY_DELAY_MS = 1_000;

/**
 * Labels with the registry's current teacher (DESIGN.md §5): on each new version it reads the
 * model's metadata (classes, input) from the registry, starts a worker for the version (its own
 * durable consumer from the start of the retained log: the relabeling), then stops the previous
 * version's worker and deletes its consumer.
 */
export class VersionFollower {
  private worker: LabelingWorker | undefined;
  private metadata: ModelMetadata | undefined;
  private spec: ModelInputSpec | undefined;
  private watcher: ReturnType<TeacherPointerSource['watchTeacher']> | undefined;
  private loop: Promise<void> | undefined;
  private stopped = false;
  private readonly listeners: Array<(version: string) => void> = [];

  constructor(
    private readonly source: TeacherPointerSource,
    private readonly makeWorker: (version: string, metadata: ModelMetadata) => LabelingWorker,
    private readonly log: Logger,
  ) {}

  get teacherVersion(): string {
    return this.worker?.teacherVersion ?? '';
  }

  /** The current teacher's input, for checking images at ingest; undefined before any teacher. */
  get inputSpec(): ModelInputSpec | undefined {
    return this.spec;
  }

  get currentWorker(): LabelingWorker | undefined {
    return this.worker;
  }

  onVersion(listener: (version: string) => void): void {
    this.listeners.push(listener);
  }

  start(): void {
    if (this.loop !== undefined) return;
    this.loop = (async () => {
      while (!this.stopped) {
        const watcher = this.source.watchTeacher();
        this.watcher = watcher;
        try {
          for await (const { pointer } of watcher.updates) {
            if (pointer.version !== this.teacherVersion) await this.switchTo(pointer);
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
    await this.worker?.stop();
  }

  private async switchTo(pointer: TeacherPointer): Promise<void> {
    try {
      const { bytes } = await this.source.getArtifact(pointer.version, pointer.sha256);
      const metadata = ModelArtifact.decode(bytes).metadata;
      if (metadata === undefined) throw new Error(`artifact ${pointer.version}: no metadata`);
      const spec = modelInputSpec(metadata);
      const next = this.makeWorker(pointer.version, metadata);
      await next.start();
      const previous = this.worker;
      this.worker = next;
      this.metadata = metadata;
      this.spec = spec;
      this.log.info(
        { version: pointer.version, previous: previous?.teacherVersion ?? null },
        'labeling with new teacher version',
      );
      for (const listener of this.listeners) listener(pointer.version);
      if (previous !== undefined) {
        await previous.stop();
        await previous.deleteConsumer();
      }
    } catch (error) {
      this.log.error(
        { err: error, version: pointer.version },
        'cannot label with this teacher version; keeping the previous one',
      );
    }
  }

  /** Class names of the current teacher. */
  get classNames(): string[] {
    return this.metadata?.classNames ?? [];
  }
}
