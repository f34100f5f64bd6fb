import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { LabeledImages } from './fashion-mnist.js';

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

const RECORD_BYTES = 1 + 32 * 32 * 3;
const PLANE = 32 * 32;

export type Cifar10Split = 'train' | 'test';

/**
 * Loads CIFAR-10 from its binary batches (`data_batch_1..5.bin` for train, `test_batch.bin` for
 * test; each record is a label byte then 3,072 bytes of R, G and B planes). Images come back
 * channels-last (HWC interleaved) like every other loader. Class names are read from
 * `batches.meta.txt` when present.
 */
export async function loadCifar10(split: Cifar10Split, dir: string): Promise<LabeledImages> {
  const files = split === 'train' ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`) : ['test_batch.bin'];
  const batches = await Promise.all(files.map((file) => readBatch(join(dir, file))));
  const count = batches.reduce((sum, batch) => sum + batch.labels.length, 0);
  const images = new Uint8Array(count * PLANE * 3);
  const labels = new Uint8Array(count);
  let offset = 0;
  for (const batch of batches) {
    images.set(batch.images, offset * PLANE * 3);
    labels.set(batch.labels, offset);
    offset += batch.labels.length;
  }
  return { images, labels, count, height: 32, width: 32, channels: 3, classNames: await classNames(dir) };
}

async function readBatch(path: string): Promise<{ images: Uint8Array; labels: Uint8Array }> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new Error(`${path}: cannot read CIFAR-10 batch: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (bytes.length === 0 || bytes.length % RECORD_BYTES !== 0) {
    throw new Error(
      `${path}: ${bytes.length} bytes is not a whole number of ${RECORD_BYTES}-byte records (truncated?)`,
    );
  }
  const count = bytes.length / RECORD_BYTES;
  const images = new Uint8Array(count * PLANE * 3);
  const labels = new Uint8Array(count);
  for (let record = 0; record < count; record++) {
    const base = record * RECORD_BYTES;
    const label = bytes[base] ?? 255;
    if (label >= CIFAR10_CLASSES.length) throw new Error(`${path}: record ${record} has label ${label}, expected 0–9`);
    labels[record] = label;
    const out = record * PLANE * 3;
    for (let pixel = 0; pixel < PLANE; pixel++) {
      for (let channel = 0; channel < 3; channel++) {
        images[out + pixel * 3 + channel] = bytes[base + 1 + channel * PLANE + pixel] ?? 0;
      }
    }
  }
  return { images, labels };
}

async function classNames(dir: string): Promise<readonly string[]> {
  try {
    const names = (await readFile(join(dir, 'batches.meta.txt'), 'utf8'))
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.length > 0);
    return names.length === CIFAR10_CLASSES.length ? names : CIFAR10_CLASSES;
  } catch {
    return CIFAR10_CLASSES;
  }
}
