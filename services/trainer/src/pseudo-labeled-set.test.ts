import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Dtype, Shard, type Image, type PseudoLabeledExample } from '@noisystudent/proto';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readRoundExamples, type RoundExampleOptions } from './pseudo-labeled-set.js';

const SIZE = { height: 4, width: 3, channels: 1 } as const;
const PIXELS = SIZE.height * SIZE.width * SIZE.channels;
const CLASSES = 3;
const OPTIONS: RoundExampleOptions = { ...SIZE, classes: CLASSES };

let directory: string;
let written = 0;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'ns-round-examples-'));
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** Writes a shard file the way the collector keeps it; returns its path. */
async function shardFile(shardId: string, examples: Array<Partial<PseudoLabeledExample>>): Promise<string> {
  const file = join(directory, `${written++}-${shardId}.shard`);
  const shard = Shard.fromPartial({ shardId, teacherVersion: 'v1', windowId: shardId, partCount: 1, examples });
  await writeFile(file, Shard.encode(shard).finish());
  return file;
}

/** Distinct pixels per example: `base + 7i` (mod 256). */
function pixels(base: number): Uint8Array {
  return Uint8Array.from({ length: PIXELS }, (_, i) => (base + i * 7) % 256);
}

function uint8Image(values: Uint8Array, shape: number[] = [SIZE.height, SIZE.width, SIZE.channels]): Image {
  return { content: { $case: 'tensor', value: { shape, dtype: Dtype.UINT8, data: Buffer.from(values) } } };
}

function float32Image(values: readonly number[]): Image {
  const data = new Uint8Array(values.length * 4);
  const view = new DataView(data.buffer);
  values.forEach((value, i) => view.setFloat32(i * 4, value, true));
  return {
    content: {
      $case: 'tensor',
      value: { shape: [SIZE.height, SIZE.width, SIZE.channels], dtype: Dtype.FLOAT32, data: Buffer.from(data.buffer) },
    },
  };
}

async function pngImage(values: Uint8Array): Promise<Image> {
  const png = await sharp(Buffer.from(values), { raw: { ...SIZE } })
    .png()
    .toBuffer();
  return { content: { $case: 'encoded', value: png } };
}

/** Row `index` of the set's images and targets. */
function row(set: { images: Uint8Array; targets: Float32Array }, index: number): { image: number[]; target: number[] } {
  return {
    image: Array.from(set.images.subarray(index * PIXELS, (index + 1) * PIXELS)),
    target: Array.from(set.targets.subarray(index * CLASSES, (index + 1) * CLASSES)),
  };
}

describe('readRoundExamples', () => {
  it('reads uint8, float32 and PNG images with soft and hard labels, keeping copy counts', async () => {
    const floats = Array.from({ length: PIXELS }, (_, i) => i * 25.2 - 10);
    const first = await shardFile('s1', [
      { sourceId: 'a', image: uint8Image(pixels(3)), softLabel: [0.7, 0.2, 0.1], hardLabel: 0, copyCount: 2 },
      { sourceId: 'b', image: float32Image(floats), softLabel: [0.1, 0.1, 0.8], hardLabel: 2, copyCount: 1 },
      // Cut by balancing in its window: in the shard with no copies, never trained on.
      { sourceId: 'cut', image: uint8Image(pixels(9)), softLabel: [1, 0, 0], hardLabel: 0, copyCount: 0 },
    ]);
    const second = await shardFile('s2', [
      { sourceId: 'c', image: await pngImage(pixels(100)), hardLabel: 1, copyCount: 3 },
      { sourceId: 'd', image: uint8Image(pixels(50)), hardLabel: 2, copyCount: 1 },
    ]);

    const round = await readRoundExamples([first, second], OPTIONS);

    expect(round.shards).toBe(2);
    expect(round.skipped).toBe(0);
    expect(round.skippedReasons).toEqual([]);
    expect(round.set.count).toBe(4);
    expect(round.set.copies).toEqual([2, 1, 3, 1]);
    expect(round.perClass).toEqual([2, 3, 2]);
    expect(round.examples).toBe(7);
    expect(round.set).toMatchObject({ ...SIZE, classes: CLASSES });
    expect(round.set.images).toHaveLength(4 * PIXELS);
    expect(round.set.targets).toHaveLength(4 * CLASSES);

    const a = row(round.set, 0);
    expect(a.image).toEqual(Array.from(pixels(3)));
    expect(a.target.map((p) => Math.round(p * 1e6) / 1e6)).toEqual([0.7, 0.2, 0.1]);
    // Float32 on the 0–255 scale (-10, 15.2, …, 267.2): rounded and clamped to bytes.
    const b = row(round.set, 1);
    expect(b.image).toEqual([0, 15, 40, 66, 91, 116, 141, 166, 192, 217, 242, 255]);
    // A lossless PNG at the data set's size decodes to the same bytes; a hard label is one-hot.
    expect(row(round.set, 2)).toEqual({ image: Array.from(pixels(100)), target: [0, 1, 0] });
    expect(row(round.set, 3)).toEqual({ image: Array.from(pixels(50)), target: [0, 0, 1] });
  });

  it('with rebalance, gives every class present the mean kept count, keeping the most confident', async () => {
    // Class 0: 5 examples, class 1: 1, class 2: 0 → mean over classes present = round(6 / 2) = 3.
    const confidences = [0.6, 0.95, 0.7, 0.99, 0.65];
    const file = await shardFile('balance', [
      ...confidences.map((confidence, i) => ({
        sourceId: `zero-${i}`,
        image: uint8Image(pixels(i)),
        hardLabel: 0,
        confidence,
        copyCount: 1,
      })),
      // The labeler's copy count is replaced by the round's balance.
      { sourceId: 'one', image: uint8Image(pixels(200)), hardLabel: 1, confidence: 0.8, copyCount: 5 },
    ]);

    const round = await readRoundExamples([file], { ...OPTIONS, rebalance: { seed: 7 } });

    expect(round.perClass).toEqual([3, 3, 0]);
    expect(round.examples).toBe(6);
    // Kept in their original order: class 0's three most confident (indices 1, 2, 3), then class 1.
    expect(round.set.count).toBe(4);
    expect(round.set.copies).toEqual([1, 1, 1, 3]);
    expect([0, 1, 2, 3].map((index) => row(round.set, index).image)).toEqual(
      [pixels(1), pixels(2), pixels(3), pixels(200)].map((image) => Array.from(image)),
    );
    const copiesPerClass = [0, 0, 0];
    Array.from(round.set.copies ?? []).forEach((copies, index) => {
      const label = row(round.set, index).target.indexOf(1);
      copiesPerClass[label] = (copiesPerClass[label] ?? 0) + copies;
    });
    expect(copiesPerClass).toEqual([3, 3, 0]);

    // Without rebalance the same shard keeps the labeler's counts.
    const kept = await readRoundExamples([file], OPTIONS);
    expect(kept.set.copies).toEqual([1, 1, 1, 1, 1, 5]);
    expect(kept.perClass).toEqual([5, 5, 0]);
  });

  it('skips examples that do not fit, naming the field, and trains on the rest', async () => {
    const file = await shardFile('bad', [
      { sourceId: 'ok', image: uint8Image(pixels(1)), hardLabel: 1, copyCount: 1 },
      { sourceId: 'class', image: uint8Image(pixels(2)), hardLabel: 3, copyCount: 1 },
      { sourceId: 'soft', image: uint8Image(pixels(3)), softLabel: [0.5, 0.5], hardLabel: 0, copyCount: 1 },
      { sourceId: 'shape', image: uint8Image(new Uint8Array(2 * 2 * 3), [2, 2, 3]), hardLabel: 0, copyCount: 1 },
      { sourceId: 'bytes', image: uint8Image(new Uint8Array(PIXELS - 1)), hardLabel: 0, copyCount: 1 },
      { sourceId: 'none', hardLabel: 0, copyCount: 1 },
      { sourceId: 'ok2', image: uint8Image(pixels(4)), softLabel: [0.2, 0.3, 0.5], hardLabel: 2, copyCount: 2 },
    ]);

    const round = await readRoundExamples([file], OPTIONS);

    expect(round.set.count).toBe(2);
    expect(round.set.copies).toEqual([1, 2]);
    expect(round.perClass).toEqual([0, 1, 2]);
    expect(round.skipped).toBe(5);
    expect(round.skippedReasons).toEqual([
      'bad examples[1].hard_label: expected a class below 3, got 3',
      'bad examples[2].soft_label: expected 3 probabilities, got 2',
      'bad examples[3].image: tensor.shape: expected [4, 3, 1], got [2, 2, 3]',
      `bad examples[4].image: tensor: expected ${PIXELS} UINT8 or FLOAT32 values, got dtype ${Dtype.UINT8} with ${PIXELS - 1} bytes`,
      'bad examples[5].image: expected encoded bytes or a tensor, got neither',
    ]);
  });

  it('throws when no example of the round can be used', async () => {
    const file = await shardFile('useless', [
      { sourceId: 'class', image: uint8Image(pixels(2)), hardLabel: 9, copyCount: 1 },
      { sourceId: 'cut', image: uint8Image(pixels(3)), hardLabel: 0, copyCount: 0 },
    ]);
    await expect(readRoundExamples([file], OPTIONS)).rejects.toThrow('no pseudo-labeled example in 1 shards');
    await expect(readRoundExamples([file], { ...OPTIONS, rebalance: { seed: 1 } })).rejects.toThrow(
      'no pseudo-labeled example in 1 shards',
    );
  });
});
