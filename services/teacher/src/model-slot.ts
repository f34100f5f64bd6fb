import { modelInputSpec, type ModelInputSpec } from '@noisystudent/ml';
import { Unavailable } from '@noisystudent/core';

import type { LoadedModel, ModelHost } from './model-host.js';

/** The model being served, with what requests need to know about it. */
export interface ServingModel extends LoadedModel {
  version: string;
  classNames: string[];
  inputSpec: ModelInputSpec;
  /** Equal keys mean identical preprocessing: a request prepared for one is valid for the other. */
  inputKey: string;
}

/**
 * Which model answers (hot swap, docs/architecture.md §5): `switchTo` replaces the current model atomically;
 * batches hold the model they started with (`acquire`/`release`), so in-flight batches finish on
 * the old model, which is disposed in the worker once the last of them releases it.
 */
export class ModelSlot {
  private current: ServingModel | undefined;
  private readonly users = new Map<number, number>();
  private readonly retired = new Set<number>();
  private readonly listeners: Array<(model: ServingModel) => void> = [];

  constructor(private readonly host: ModelHost) {}

  get model(): ServingModel | undefined {
    return this.current;
  }

  /** The model for a request arriving now, or UNAVAILABLE when none has loaded yet. */
  require(): ServingModel {
    if (this.current === undefined) {
      throw new Unavailable('teacher: no model yet (the registry has no teacher, or it is still loading); retry later');
    }
    return this.current;
  }

  /** Marks the current model in use by one batch; pair with `release`. */
  acquire(): ServingModel {
    const model = this.require();
    this.users.set(model.modelId, (this.users.get(model.modelId) ?? 0) + 1);
    return model;
  }

  release(model: ServingModel): void {
    const count = (this.users.get(model.modelId) ?? 1) - 1;
    if (count > 0) {
      this.users.set(model.modelId, count);
      return;
    }
    this.users.delete(model.modelId);
    if (this.retired.delete(model.modelId)) void this.host.dispose(model.modelId).catch(() => undefined);
  }

  /** Serves `loaded` from now on; the previous model is disposed when its batches are done. */
  switchTo(loaded: LoadedModel): ServingModel {
    const model = describe(loaded);
    const previous = this.current;
    this.current = model;
    if (previous !== undefined) {
      if (this.users.has(previous.modelId)) this.retired.add(previous.modelId);
      else void this.host.dispose(previous.modelId).catch(() => undefined);
    }
    for (const listener of this.listeners) listener(model);
    return model;
  }

  onSwitch(listener: (model: ServingModel) => void): void {
    this.listeners.push(listener);
  }
}

function describe(loaded: LoadedModel): ServingModel {
  const inputSpec = modelInputSpec(loaded.metadata);
  return {
    ...loaded,
    version: loaded.metadata.version,
    classNames: loaded.metadata.classNames,
    inputSpec,
    inputKey: JSON.stringify(inputSpec),
  };
}
