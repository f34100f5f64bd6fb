import { modelInputSpec, type ModelInputSpec } from '@noisystudent/ml';
import { ModelArtifact, type ModelMetadata, type TeacherPointer } from '@noisystudent/proto';
import { followTeacher, type TeacherFollowing, type TeacherSource } from '@noisystudent/registry';
import type { Logger } from '@noisystudent/runtime';

import type { LabelingWorker } from './labeling-worker.js';

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
  private following: TeacherFollowing | undefined;
  private readonly listeners: Array<(version: string) => void> = [];

  constructor(
    private readonly source: TeacherSource,
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
    this.following ??= followTeacher(
      this.source,
      async ({ pointer }) => {
        if (pointer.version !== this.teacherVersion) await this.switchTo(pointer);
      },
      { onWatchError: (error) => this.log.warn({ err: error }, 'registry watch failed; watching again') },
    );
  }

  async stop(): Promise<void> {
    await this.following?.stop();
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
