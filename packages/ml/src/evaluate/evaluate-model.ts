import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/** Images as the models take them: uint8 0–255, `count × height × width × channels`, scaled by 1/255. */
export interface ImageBatchSource {
  images: Uint8Array;
  height: number;
  width: number;
  channels: number;
}

/**
 * The model's probabilities for the examples at `indices`, predicted `batchSize` at a time so
 * no more than one batch of activations is alive. @param batchSize @default 256
 */
export async function predictProbabilities(
  model: tfl.LayersModel,
  source: ImageBatchSource,
  indices: ArrayLike<number>,
  batchSize = 256,
): Promise<Float32Array> {
  const pixels = source.height * source.width * source.channels;
  const classes = (model.outputs[0]?.shape[1] ?? 0) as number;
  if (!(classes > 0)) throw new Error('model: expected a [batch, classes] output');
  const out = new Float32Array(indices.length * classes);
  for (let start = 0; start < indices.length; start += batchSize) {
    const count = Math.min(batchSize, indices.length - start);
    const batch = new Float32Array(count * pixels);
    for (let i = 0; i < count; i++) {
      const index = indices[start + i] ?? 0;
      const image = source.images.subarray(index * pixels, (index + 1) * pixels);
      for (let p = 0; p < pixels; p++) batch[i * pixels + p] = (image[p] ?? 0) / 255;
    }
    const probabilities = tf.tidy(
      () => model.predict(tf.tensor4d(batch, [count, source.height, source.width, source.channels])) as tf.Tensor,
    );
    out.set(await probabilities.data(), start * classes);
    probabilities.dispose();
  }
  return out;
}
