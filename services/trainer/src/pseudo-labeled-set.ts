import { readFile } from 'node:fs/promises';

import { balanceClasses, decodeImage, type TrainingSet } from '@noisystudent/ml';
import { Dtype, Shard, type Image } from '@noisystudent/proto';

/** A round's pseudo-labeled examples, read from its shard files. */
export interface RoundExamples {
  set: TrainingSet;
  shards: number;
  /** Examples counting copies, and per class (by the teacher's top class). */
  examples: number;
  perClass: number[];
  /** Examples left out because their image or label did not fit the data set, with the first reasons. */
  skipped: number;
  skippedReasons: string[];
}

export interface RoundExampleOptions {
  height: number;
  width: number;
  channels: 1 | 3;
  classes: number;
  /**
   * Balance across the whole round (the paper's way: every class to the mean kept count, the most
   * confident kept, the rest duplicated), replacing the labeler's per-window copy counts.
   */
  rebalance?: { seed: number };
}

/**
 * The shards' examples as a training set: pixels on the 0–255 scale at the data set's size
 * (encoded images decoded and resized like the training images), the soft label as the target
 * (one-hot of the hard label for hard shards), and each example's copy count.
 */
export async function readRoundExamples(
  files: readonly string[],
  options: RoundExampleOptions,
): Promise<RoundExamples> {
  const { height, width, channels, classes } = options;
  const pixels = height * width * channels;
  const images: Uint8Array[] = [];
  const targets: number[][] = [];
  const copies: number[] = [];
  const labels: number[] = [];
  const confidences: number[] = [];
  let skipped = 0;
  const skippedReasons: string[] = [];
  const skip = (reason: string): void => {
    skipped++;
    if (skippedReasons.length < 5) skippedReasons.push(reason);
  };
  for (const file of files) {
    const shard = Shard.decode(await readFile(file));
    for (const [index, example] of shard.examples.entries()) {
      const where = `${shard.shardId} examples[${index}]`;
      if (example.copyCount === 0) continue;
      if (example.hardLabel >= classes) {
        skip(`${where}.hard_label: expected a class below ${classes}, got ${example.hardLabel}`);
        continue;
      }
      if (example.softLabel.length !== 0 && example.softLabel.length !== classes) {
        skip(`${where}.soft_label: expected ${classes} probabilities, got ${example.softLabel.length}`);
        continue;
      }
      let image: Uint8Array;
      try {
        image = await imagePixels(example.image, options);
      } catch (error) {
        skip(`${where}.image: ${error instanceof Error ? error.message : String(error)}`);
        continue;
      }
      images.push(image);
      targets.push(
        example.softLabel.length === classes
          ? example.softLabel
          : Array.from({ length: classes }, (_, c) => (c === example.hardLabel ? 1 : 0)),
      );
      copies.push(example.copyCount);
      labels.push(example.hardLabel);
      confidences.push(example.confidence);
    }
  }
  let order = images.map((_, index) => index);
  let counts = copies;
  if (options.rebalance !== undefined && images.length > 0) {
    const balance = balanceClasses(
      order.map((index) => ({ index, label: labels[index] ?? 0, confidence: confidences[index] ?? 0 })),
      classes,
      { targetPerClass: 'mean', seed: options.rebalance.seed },
    );
    order = balance.kept;
    counts = balance.copies;
  }
  if (order.length === 0) throw new Error(`no pseudo-labeled example in ${files.length} shards`);
  const set: TrainingSet = {
    images: new Uint8Array(order.length * pixels),
    count: order.length,
    height,
    width,
    channels,
    targets: new Float32Array(order.length * classes),
    classes,
    copies: counts,
  };
  const perClass = new Array<number>(classes).fill(0);
  order.forEach((source, row) => {
    set.images.set(images[source] ?? new Uint8Array(pixels), row * pixels);
    set.targets.set(targets[source] ?? [], row * classes);
    const label = labels[source] ?? 0;
    perClass[label] = (perClass[label] ?? 0) + (counts[row] ?? 0);
  });
  return {
    set,
    shards: files.length,
    examples: perClass.reduce((total, count) => total + count, 0),
    perClass,
    skipped,
    skippedReasons,
  };
}

/** An example's image as `height × width × channels` bytes, 0–255. */
async function imagePixels(image: Image | undefined, size: RoundExampleOptions): Promise<Uint8Array> {
  const content = image?.content;
  if (content === undefined) throw new Error('expected encoded bytes or a tensor, got neither');
  if (content.$case === 'encoded') {
    return decodeImage(content.value, {
      height: size.height,
      width: size.width,
      channels: size.channels,
      kernel: 'linear',
    });
  }
  const tensor = content.value;
  const shape = [size.height, size.width, size.channels];
  if (tensor.shape.length !== 3 || tensor.shape.some((dimension, axis) => dimension !== shape[axis])) {
    throw new Error(`tensor.shape: expected [${shape.join(', ')}], got [${tensor.shape.join(', ')}]`);
  }
  const elements = size.height * size.width * size.channels;
  if (tensor.dtype === Dtype.UINT8 && tensor.data.byteLength === elements) return tensor.data;
  if (tensor.dtype === Dtype.FLOAT32 && tensor.data.byteLength === elements * 4) {
    const view = new DataView(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
    return Uint8Array.from({ length: elements }, (_, i) =>
      Math.min(255, Math.max(0, Math.round(view.getFloat32(i * 4, true)))),
    );
  }
  throw new Error(
    `tensor: expected ${elements} UINT8 or FLOAT32 values, got dtype ${tensor.dtype} with ${tensor.data.byteLength} bytes`,
  );
}
