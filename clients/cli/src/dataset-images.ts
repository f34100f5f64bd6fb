// Fashion-MNIST images as nsctl sends them: raw uint8 tensors with stable source ids, the split
// the trainer leaves unlabeled included (the same seeded split, so the labels it trains on never
// come back as unlabeled images).
import type { AllowedRoots } from '@noisystudent/core';

import { CliError, EXIT } from './cli-error.js';

export type DatasetSplitName = 'unlabeled' | 'train' | 'test';

export interface DatasetImage {
  sourceId: string;
  image: { shape: number[]; dtype: 'uint8'; data: Uint8Array };
  /** The true class (for the report's checks; never sent). */
  label: number;
}

export interface DatasetSelection {
  split: DatasetSplitName;
  limit?: number;
  /** The trainer's preset and seed, which decide the unlabeled split. */
  preset: string;
  seed?: number;
  dataDir?: string;
  /** When given, the data set's files must lie in these. */
  roots?: AllowedRoots;
}

export async function datasetImages(
  selection: DatasetSelection,
): Promise<{ images: DatasetImage[]; classNames: string[] }> {
  // Loaded here, not at start: the data module reads files only (no TensorFlow.js), and only
  // this command needs it.
  const { loadFashionMnist, experimentSplits, PRESETS } = await import('@noisystudent/ml/data');
  const preset = PRESETS[selection.preset];
  if (preset === undefined) {
    throw new CliError(
      `--preset: expected one of ${Object.keys(PRESETS).join(', ')}, got "${selection.preset}"`,
      EXIT.usage,
    );
  }
  const source = selection.split === 'test' ? 'test' : 'train';
  let data;
  try {
    data = await loadFashionMnist(source, selection.dataDir, selection.roots);
  } catch (error) {
    throw new CliError(
      `Fashion-MNIST not found (${error instanceof Error ? error.message : String(error)}): install it with \`apt-get install dataset-fashion-mnist\`, or give --dataset-dir`,
      EXIT.usage,
      { cause: error },
    );
  }
  let indices: number[];
  if (selection.split === 'unlabeled') {
    const config = {
      ...preset,
      ...(selection.seed === undefined ? {} : { seed: selection.seed }),
      unlabeled: Number.MAX_SAFE_INTEGER,
    };
    indices = experimentSplits(data.labels, data.classNames.length, 0, config).unlabeled;
  } else indices = Array.from({ length: data.count }, (_, i) => i);
  if (selection.limit !== undefined) indices = indices.slice(0, selection.limit);
  const pixels = data.height * data.width * data.channels;
  const images = indices.map((index) => ({
    sourceId: `fashion-mnist-${source}-${index}`,
    image: {
      shape: [data.height, data.width, data.channels],
      dtype: 'uint8' as const,
      data: data.images.subarray(index * pixels, (index + 1) * pixels),
    },
    label: data.labels[index] ?? 0,
  }));
  return { images, classNames: [...data.classNames] };
}
