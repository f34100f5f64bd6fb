import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import { createRandom } from '../random.js';

/** Gives every batch normalisation statistics far from the identity, as training would. */
export function randomizeBatchNorms(model: tfl.LayersModel, seed: number): void {
  const random = createRandom(seed);
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const weights = layer.getWeights();
    // gamma, beta, moving mean, moving variance (variance > 0).
    const values = weights.map((weight, index) =>
      tf.tensor(
        Array.from({ length: weight.size }, () =>
          index === 3 ? 0.2 + 2 * random() : index === 0 ? 0.5 + random() : random() - 0.5,
        ),
        weight.shape,
      ),
    );
    layer.setWeights(values);
    tf.dispose(values);
  }
}
