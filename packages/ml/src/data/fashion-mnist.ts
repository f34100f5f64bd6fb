import { access } from 'node:fs/promises';
import { join } from 'node:path';

import type { AllowedRoots } from '@noisystudent/core';

import { readIdxFile } from './idx.js';

/** Where Debian's `dataset-fashion-mnist` installs the files. */
export const DEFAULT_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;

/** Images as bytes, row-major `count × height × width × channels` (channels last), one label byte each. */
export interface LabeledImages {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
  channels: number;
  classNames: readonly string[];
}

export type FashionMnistSplit = 'train' | 'test';

const FILE_PREFIX: Record<FashionMnistSplit, string> = { train: 'train', test: 't10k' };

/**
 * Loads one split of Fashion-MNIST from idx files, gzipped or not.
 * @param dir @default process.env.NS_FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist'
 */
export async function loadFashionMnist(
  split: FashionMnistSplit,
  dir = process.env['NS_FASHION_MNIST_DIR'] ?? DEFAULT_FASHION_MNIST_DIR,
  /** When given, files whose real path lies outside these are refused. */
  roots?: AllowedRoots,
): Promise<LabeledImages> {
  const imagesPath = await findFile(dir, `${FILE_PREFIX[split]}-images-idx3-ubyte`, roots);
  const labelsPath = await findFile(dir, `${FILE_PREFIX[split]}-labels-idx1-ubyte`, roots);
  const images = await readIdxFile(imagesPath, 3);
  const labels = await readIdxFile(labelsPath, 1);
  const [count = 0, height = 0, width = 0] = images.dims;
  const [labelCount = 0] = labels.dims;
  if (labelCount !== count) {
    throw new Error(`${labelsPath}: ${labelCount} labels for the ${count} images of ${imagesPath}`);
  }
  const badLabel = labels.data.findIndex((label) => label >= FASHION_MNIST_CLASSES.length);
  if (badLabel >= 0) {
    throw new Error(
      `${labelsPath}: label ${labels.data[badLabel]} at index ${badLabel}: expected 0–${FASHION_MNIST_CLASSES.length - 1}`,
    );
  }
  return {
    images: images.data,
    labels: labels.data,
    count,
    height,
    width,
    channels: 1,
    classNames: FASHION_MNIST_CLASSES,
  };
}

async function findFile(dir: string, baseName: string, roots: AllowedRoots | undefined): Promise<string> {
  for (const candidate of [`${baseName}.gz`, baseName]) {
    const path = join(dir, candidate);
    try {
      await access(path);
    } catch {
      continue; // try the next spelling
    }
    return roots === undefined ? path : roots.readable('Fashion-MNIST file', path);
  }
  throw new Error(
    `${join(dir, baseName)}(.gz): not found; install Debian's dataset-fashion-mnist (npm run bootstrap) or set NS_FASHION_MNIST_DIR`,
  );
}
