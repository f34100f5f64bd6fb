import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { NotFound, type AllowedRoots } from '@noisystudent/core';

import type { LabeledImages } from './fashion-mnist.js';

/** The class names of CIFAR-10, in label order (as in `batches.meta.txt`). */
export const CIFAR10_CLASSES = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
] as const;

export const CIFAR10_SIZE = 32;
/** One record: a label byte, then the 1,024-byte R, G and B planes of a 32×32 image. */
export const CIFAR10_RECORD_BYTES = 1 + CIFAR10_SIZE * CIFAR10_SIZE * 3;
const PLANE = CIFAR10_SIZE * CIFAR10_SIZE;

export type Cifar10Split = 'train' | 'test';

/** The batch files of each split, in the order their records are returned. */
export const CIFAR10_BATCH_FILES: Readonly<Record<Cifar10Split, readonly string[]>> = {
  train: ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'],
  test: ['test_batch.bin'],
};

/**
 * Loads one split of CIFAR-10 from its binary version (the `cifar-10-batches-bin` folder):
 * `data_batch_1..5.bin` for train, `test_batch.bin` for test, 10,000 records each. Images come
 * back 32×32×3 channels-last (HWC: R, G, B interleaved per pixel), like every other loader, not
 * in the files' CHW planes. Class names come from `batches.meta.txt` when the folder has it,
 * else `CIFAR10_CLASSES`. Errors name the file: missing, truncated, or a label above 9.
 */
export async function loadCifar10(
  split: Cifar10Split,
  dir: string,
  /** When given, files whose real path lies outside these are refused. */
  roots?: AllowedRoots,
): Promise<LabeledImages> {
  const files = CIFAR10_BATCH_FILES[split];
  if (files === undefined) throw new Error(`split: expected 'train' or 'test', got ${String(split)}`);
  // One file after the other, so an error always names the first bad file (in parallel, whichever
  // read failed first would be named, differently from run to run).
  const batches: LabeledImages[] = [];
  for (const file of files) {
    const path = join(dir, file);
    batches.push(await readCifar10Batch(roots === undefined ? path : await roots.readable('CIFAR-10 file', path)));
  }
  const count = batches.reduce((sum, batch) => sum + batch.count, 0);
  const images = new Uint8Array(count * PLANE * 3);
  const labels = new Uint8Array(count);
  let offset = 0;
  for (const batch of batches) {
    images.set(batch.images, offset * PLANE * 3);
    labels.set(batch.labels, offset);
    offset += batch.count;
  }
  return {
    images,
    labels,
    count,
    height: CIFAR10_SIZE,
    width: CIFAR10_SIZE,
    channels: 3,
    classNames: await readCifar10ClassNames(dir, roots),
  };
}

/** Reads one batch file; see `parseCifar10Batch`. */
export async function readCifar10Batch(path: string): Promise<LabeledImages> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `${path}: cannot read CIFAR-10 batch (expected the binary version, cifar-10-batches-bin): ${reason}`,
    );
  }
  return parseCifar10Batch(bytes, path);
}

/**
 * Parses the records of one batch (any whole number of them) into channels-last images.
 * `source` names the file in errors.
 */
export function parseCifar10Batch(bytes: Uint8Array, source: string): LabeledImages {
  if (bytes.length === 0) throw new Error(`${source}: empty file, expected ${CIFAR10_RECORD_BYTES}-byte records`);
  if (bytes.length % CIFAR10_RECORD_BYTES !== 0) {
    const whole = Math.floor(bytes.length / CIFAR10_RECORD_BYTES);
    throw new Error(
      `${source}: ${bytes.length} bytes is not a whole number of ${CIFAR10_RECORD_BYTES}-byte records (truncated? ${whole} whole records and ${bytes.length - whole * CIFAR10_RECORD_BYTES} bytes)`,
    );
  }
  const count = bytes.length / CIFAR10_RECORD_BYTES;
  const images = new Uint8Array(count * PLANE * 3);
  const labels = new Uint8Array(count);
  for (let record = 0; record < count; record++) {
    const base = record * CIFAR10_RECORD_BYTES;
    const label = bytes[base] ?? 0;
    if (label >= CIFAR10_CLASSES.length) {
      throw new Error(
        `${source}: record ${record} (byte ${base}) has label ${label}, expected 0–${CIFAR10_CLASSES.length - 1}`,
      );
    }
    labels[record] = label;
    const out = record * PLANE * 3;
    for (let channel = 0; channel < 3; channel++) {
      const plane = base + 1 + channel * PLANE;
      for (let pixel = 0; pixel < PLANE; pixel++) images[out + pixel * 3 + channel] = bytes[plane + pixel] ?? 0;
    }
  }
  return {
    images,
    labels,
    count,
    height: CIFAR10_SIZE,
    width: CIFAR10_SIZE,
    channels: 3,
    classNames: CIFAR10_CLASSES,
  };
}

/** The names in `dir/batches.meta.txt` (one per line, blank lines ignored), or `CIFAR10_CLASSES` without it. */
export async function readCifar10ClassNames(dir: string, roots?: AllowedRoots): Promise<readonly string[]> {
  const path = join(dir, 'batches.meta.txt');
  let text: string;
  try {
    text = await readFile(roots === undefined ? path : await roots.readable('CIFAR-10 file', path), 'utf8');
  } catch (error) {
    if (error instanceof NotFound || (error instanceof Error && 'code' in error && error.code === 'ENOENT')) {
      return CIFAR10_CLASSES;
    }
    throw new Error(`${path}: cannot read class names: ${error instanceof Error ? error.message : String(error)}`);
  }
  const names = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  if (names.length !== CIFAR10_CLASSES.length) {
    throw new Error(`${path}: expected ${CIFAR10_CLASSES.length} class names, one per line, got ${names.length}`);
  }
  return names;
}
