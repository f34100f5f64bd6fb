import { Unavailable } from '@noisystudent/core';
import { followTeacher, type TeacherFollowing, type TeacherSource } from '@noisystudent/registry';
import type { Logger } from '@noisystudent/runtime';
import type { TeacherPointer } from '@noisystudent/proto';

import type { ModelHost } from './model-host.js';
import type { ModelSlot, ServingModel } from './model-slot.js';

export interface HotSwapEvents {
  /** A version now serves. */
  swapped(model: ServingModel, previousVersion: string | undefined): void;
  /** A version was refused; the previous model (if any) keeps serving. */
  refused(version: string, error: unknown): void;
}

/**
 * Follows the registry's teacher pointer (docs/architecture.md §5): on each new version, download, verify
 * the sha256, load and warm up in the worker, then switch atomically. A version that fails any
 * step is refused and logged; the model serving before keeps serving.
 */
export class HotSwap {
  private following: TeacherFollowing | undefined;

  constructor(
    private readonly source: TeacherSource,
    private readonly host: ModelHost,
    private readonly slot: ModelSlot,
    private readonly warmupBatchSize: number,
    private readonly log: Logger,
    private readonly events: HotSwapEvents,
    private readonly options: { retryFailedAfterMs?: number } = {},
  ) {}

  /** Follows the pointer until `stop()` (a watch that ends or fails is started again). */
  start(): void {
    this.following ??= followTeacher(
      this.source,
      async ({ pointer, revision }) => {
        const serving = this.slot.model;
        if (pointer.version === serving?.version && pointer.sha256 === serving.sha256) return true;
        // A version the registry could not hand over (NATS busy or down) is tried again; one
        // that was refused (corrupt, unloadable) stays refused until the next promotion.
        return (await this.swapTo(pointer, revision)) !== 'unavailable';
      },
      {
        ...this.options,
        onWatchError: (error) => this.log.warn({ err: error }, 'registry watch failed; watching again'),
        onRecordError: (error) => this.log.error({ err: error }, 'following the teacher failed; trying again'),
      },
    );
  }

  async stop(): Promise<void> {
    await this.following?.stop();
  }

  /**
   * Loads the artifact `pointer` names and serves it: 'swapped', or (logged, reported) 'refused'
   * for an artifact that cannot serve, 'unavailable' when the registry could not be read.
   */
  async swapTo(pointer: TeacherPointer, revision = 0): Promise<'swapped' | 'refused' | 'unavailable'> {
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
        {
          version: model.version,
          previous,
          loadMs: Math.round(loaded.loadMs),
          foldedBatchNorms: loaded.foldedBatchNorms,
          engine: loaded.engine,
        },
        'serving new teacher version',
      );
      this.events.swapped(model, previous);
      return 'swapped';
    } catch (error) {
      if (error instanceof Unavailable) {
        this.log.warn({ err: error, version: pointer.version, serving: previous ?? null }, 'registry unavailable');
        return 'unavailable';
      }
      this.log.error({ err: error, version: pointer.version, serving: previous ?? null }, 'refused teacher version');
      this.events.refused(pointer.version, error);
      return 'refused';
    }
  }
}
