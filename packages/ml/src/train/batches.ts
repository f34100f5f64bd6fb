import { createRandom, shuffledIndices } from '../random.js';

/** Labeled or pseudo-labeled training examples, as the trainer reads them. */
export interface TrainingSet {
  /** Pixels on the 0–255 scale, row-major `count × height × width × channels`. */
  images: Uint8Array;
  count: number;
  height: number;
  width: number;
  channels: number;
  /** `count × classes` target probabilities: one-hot for true labels, soft or hard for pseudo-labels. */
  targets: Float32Array;
  classes: number;
  /** How many times each example counts per epoch (class balancing's duplicates). @default 1 each */
  copies?: ArrayLike<number>;
}

/** Checks shapes once, so a bad set fails before training with the field named. */
export function validateTrainingSet(set: TrainingSet, name: string): void {
  const pixels = set.count * set.height * set.width * set.channels;
  if (!Number.isInteger(set.count) || set.count <= 0)
    throw new Error(`${name}.count: expected a positive integer, got ${set.count}`);
  if (set.images.length !== pixels) {
    throw new Error(
      `${name}.images: expected ${set.count}×${set.height}×${set.width}×${set.channels} = ${pixels} bytes, got ${set.images.length}`,
    );
  }
  if (set.targets.length !== set.count * set.classes) {
    throw new Error(
      `${name}.targets: expected ${set.count}×${set.classes} = ${set.count * set.classes} values, got ${set.targets.length}`,
    );
  }
  if (set.copies !== undefined) {
    if (set.copies.length !== set.count)
      throw new Error(`${name}.copies: expected ${set.count} counts, got ${set.copies.length}`);
    for (let i = 0; i < set.count; i++) {
      const copies = set.copies[i] ?? -1;
      if (!Number.isInteger(copies) || copies < 0)
        throw new Error(`${name}.copies[${i}]: expected a non-negative integer, got ${copies}`);
    }
  }
}

/**
 * The example indices of batch `step`: an endless sequence of seeded epochs, each a shuffle of
 * every example repeated by its copy count. A pure function of (seed, step), so a resumed run
 * sees exactly the batches an uninterrupted one would.
 */
export class BatchSampler {
  private readonly pool: Int32Array;
  private epoch = -1;
  private order: Int32Array = new Int32Array(0);

  constructor(
    set: TrainingSet,
    private readonly batchSize: number,
    private readonly seed: number,
  ) {
    const expanded: number[] = [];
    for (let i = 0; i < set.count; i++) {
      const copies = set.copies?.[i] ?? 1;
      for (let c = 0; c < copies; c++) expanded.push(i);
    }
    if (expanded.length === 0) throw new Error('training set: every example has 0 copies');
    this.pool = Int32Array.from(expanded);
  }

  /** Examples per epoch, duplicates included. */
  get epochSize(): number {
    return this.pool.length;
  }

  indices(step: number): Int32Array {
    const batch = new Int32Array(this.batchSize);
    for (let i = 0; i < this.batchSize; i++) {
      const position = step * this.batchSize + i;
      const epoch = Math.floor(position / this.pool.length);
      if (epoch !== this.epoch) {
        this.order = shuffledIndices(this.pool.length, createRandom(this.seed * 7919 + epoch));
        this.epoch = epoch;
      }
      batch[i] = this.pool[this.order[position % this.pool.length] ?? 0] ?? 0;
    }
    return batch;
  }
}
