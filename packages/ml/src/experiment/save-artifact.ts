import { rename, writeFile } from 'node:fs/promises';

import type * as tfl from '@tensorflow/tfjs-layers';

import { encodeModelArtifact } from '../artifact/model-artifact.js';
import type { ImageDataDescription } from '../preprocess/training-input.js';

/** How the saved model was built and how it did on the eval split. */
export interface SavedModelFacts {
  widthMultiplier: number;
  evalImages: number;
  /** Top-1 on the eval split, 0–1. */
  evalAccuracy: number;
}

/** Writes `model` as an artifact file (atomically: a temporary file renamed into place). */
export async function saveArtifact(
  model: tfl.LayersModel,
  target: { path: string; version: string },
  data: { name: string; train: ImageDataDescription },
  facts: SavedModelFacts,
): Promise<void> {
  const { bytes } = await encodeModelArtifact(
    model,
    {
      version: target.version,
      architecture: 'reference-resnet',
      architectureConfigJson: JSON.stringify({ widthMultiplier: facts.widthMultiplier }),
      metrics: {
        dataset: `${data.name}/eval`,
        exampleCount: facts.evalImages,
        top1Accuracy: facts.evalAccuracy,
      },
    },
    data.train,
  );
  await writeFile(`${target.path}.tmp`, bytes);
  await rename(`${target.path}.tmp`, target.path);
}
