import { modelInputSpec, type ModelInputSpec } from '@noisystudent/ml';
import { ModelArtifact, type ModelMetadata, type TeacherPointer } from '@noisystudent/proto';
import { followTeacher, type TeacherFollowing, type TeacherSource } from '@noisystudent/registry';
import type { Logger } from '@noisystudent/runtime';

import type { LabelingWorker } from './labeling-worker.js';

export interface VersionFollowerOptions {
  /** Pause before loading a version again after loading it failed (while it is still the teacher). @default 5000 */
  retryDelayMs?: number;
}

/**
 * Labels with the registry's current teacher (docs/architecture.md §5): on each new version it reads the
 * model's metadata (classes, input) from the registry, starts a worker for the version (its own
 * durable consumer from the start of the retained log: the relabeling), then stops the previous
 * version's worker and deletes its consumer. A version that cannot be loaded (registry unreachable,
 * artifact unusable) is reported and tried again until it loads or another version is promoted;
 * the previous version's worker labels meanwhile.
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
    private readonly options: VersionFollowerOptions = {},
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
      ({ pointer }) => (pointer.version === this.teacherVersion ? Promise.resolve(true) : this.switchTo(pointer)),
      {
        retryFailedAfterMs: this.options.retryDelayMs ?? 5_000,
        onWatchError: (error) => this.log.warn({ err: error }, 'registry watch failed; watching again'),
        onRecordError: (error) => this.log.error({ err: error }, 'following the teacher failed; trying again'),
      },
    );
  }

  async stop(): Promise<void> {
    await this.following?.stop();
    await this.worker?.stop();
  }

  /** True once labeling with `pointer`'s version has started; false (reported) when it cannot. */
  private async switchTo(pointer: TeacherPointer): Promise<boolean> {
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
      return true;
    } catch (error) {
      this.log.error(
        { err: error, version: pointer.version, retryInMs: this.options.retryDelayMs ?? 5_000 },
        'cannot label with this teacher version; keeping the previous one',
      );
      return false;
    }
  }

  /** Class names of the current teacher. */
  get classNames(): string[] {
    return this.metadata?.classNames ?? [];
  }
}
