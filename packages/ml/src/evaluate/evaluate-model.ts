import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import { PIXEL_SCALE } from '../preprocess/training-input.js';
import { EvaluationAccumulator } from './evaluation-accumulator.js';
import type { Evaluation, EvaluationOptions } from './metrics.js';

/** Images per forward pass. */
export const DEFAULT_EVALUATION_BATCH_SIZE = 256;

/**
 * How 0–255 pixels become the model's input, per channel: pixel × scale[c] + offset[c] (one value
 * applies to every channel). A `ModelInputSpec` is one; the default is training's PIXEL_SCALE.
 */
export interface PixelTransform {
  scale: readonly number[];
  offset: readonly number[];
}

/** Images as the models take them: uint8 0–255, `count × height × width × channels`, scaled by PIXEL_SCALE. */
export interface ImageBatchSource {
  images: Uint8Array;
  height: number;
  width: number;
  channels: number;
}

/**
 * Batches of images in the model's input layout, in label order. `evaluateModel` is their last
 * user: it disposes each batch once predicted (as tf.data consumers do).
 */
export type ImageBatches = Iterable<tf.Tensor4D> | AsyncIterable<tf.Tensor4D>;

export interface EvaluateModelOptions extends EvaluationOptions {
  /** Images per forward pass when `images` is one tensor; an iterator's batches are used as they come. @default 256 */
  batchSize?: number;
}

/**
 * The model's `Evaluation` on `images` against `labels` (one per image, in order). Predicts one
 * batch at a time inside `tf.tidy` and folds it into the metrics before the next, so at most one
 * batch of inputs and outputs is alive. A tensor passed as `images` stays the caller's; batches
 * from an iterator are disposed here.
 */
export async function evaluateModel(
  model: tfl.LayersModel,
  images: tf.Tensor4D | ImageBatches,
  labels: ArrayLike<number>,
  options: EvaluateModelOptions = {},
): Promise<Evaluation> {
  const batchSize = options.batchSize ?? DEFAULT_EVALUATION_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`batchSize: expected a positive integer, got ${batchSize}`);
  }
  const accumulator = new EvaluationAccumulator(outputClasses(model), options);
  const addBatch = async (count: number, input: () => tf.Tensor): Promise<void> => {
    const start = accumulator.count;
    if (start + count > labels.length) {
      throw new Error(`labels: expected one label per image, got ${labels.length} labels for more images`);
    }
    const probabilities = await predictBatch(model, input);
    accumulator.add(
      probabilities,
      Float64Array.from({ length: count }, (_, i) => labels[start + i] ?? Number.NaN),
    );
  };
  if (images instanceof tf.Tensor) {
    const total = images.shape[0];
    if (images.rank !== 4)
      throw new Error(`images: expected a [batch, height, width, channels] tensor, got rank ${images.rank}`);
    if (total === 0) throw new Error('images: expected at least one image, got none');
    if (total !== labels.length) {
      throw new Error(`labels: expected ${total} (one per image), got ${labels.length}`);
    }
    for (let start = 0; start < total; start += batchSize) {
      const count = Math.min(batchSize, total - start);
      await addBatch(count, () => tf.slice(images, [start, 0, 0, 0], [count, -1, -1, -1]));
    }
  } else {
    for await (const batch of images) {
      try {
        await addBatch(batch.shape[0], () => batch);
      } finally {
        batch.dispose();
      }
    }
    if (accumulator.count === 0) throw new Error('images: expected at least one batch of images, got none');
  }
  if (accumulator.count !== labels.length) {
    throw new Error(`labels: expected ${accumulator.count} (one per image), got ${labels.length}`);
  }
  return accumulator.result();
}

/**
 * The model's probabilities for the examples at `indices`, predicted `batchSize` at a time so
 * no more than one batch of activations is alive (the caller keeps all outputs, e.g. to
 * pseudo-label them). @param batchSize @default 256
 */
export async function predictProbabilities(
  model: tfl.LayersModel,
  source: ImageBatchSource,
  indices: ArrayLike<number>,
  batchSize = DEFAULT_EVALUATION_BATCH_SIZE,
  input: PixelTransform = { scale: [PIXEL_SCALE], offset: [0] },
): Promise<Float32Array> {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`batchSize: expected a positive integer, got ${batchSize}`);
  }
  const pixels = source.height * source.width * source.channels;
  const available = Math.floor(source.images.length / pixels);
  const classes = outputClasses(model);
  const out = new Float32Array(indices.length * classes);
  for (let start = 0; start < indices.length; start += batchSize) {
    const count = Math.min(batchSize, indices.length - start);
    const batch = new Float32Array(count * pixels);
    for (let i = 0; i < count; i++) {
      const index = indices[start + i];
      if (index === undefined || !Number.isInteger(index) || index < 0 || index >= available) {
        throw new Error(`indices[${start + i}]: expected an image index in 0–${available - 1}, got ${index}`);
      }
      const image = source.images.subarray(index * pixels, (index + 1) * pixels);
      for (let p = 0; p < pixels; p++) {
        const channel = p % source.channels;
        batch[i * pixels + p] =
          (image[p] ?? 0) * (input.scale[channel] ?? input.scale[0] ?? 1) +
          (input.offset[channel] ?? input.offset[0] ?? 0);
      }
    }
    const shape: [number, number, number, number] = [count, source.height, source.width, source.channels];
    out.set(await predictBatch(model, () => tf.tensor4d(batch, shape)), start * classes);
  }
  return out;
}

/** Units of the model's one `[batch, classes]` output. */
function outputClasses(model: tfl.LayersModel): number {
  const [output] = model.outputs;
  const classes = output?.shape[1];
  if (model.outputs.length !== 1 || output?.shape.length !== 2 || typeof classes !== 'number' || classes < 1) {
    throw new Error(
      `model.outputs: expected one [batch, classes] output, got ${model.outputs.map((tensor) => `[${tensor.shape.join(', ')}]`).join(', ')}`,
    );
  }
  return classes;
}

/** One forward pass in inference mode; every tensor but the copied-out values is freed. */
async function predictBatch(model: tfl.LayersModel, input: () => tf.Tensor): Promise<Float32Array> {
  const output = tf.tidy(() => {
    const images = input();
    // One pass over the whole batch: predict() would otherwise split it into 32s and concatenate.
    const result = model.predict(images, { batchSize: Math.max(1, images.shape[0] ?? 1) });
    if (Array.isArray(result)) throw new Error('model: expected one output tensor, got several');
    return result;
  });
  try {
    const values = await output.data();
    if (!(values instanceof Float32Array))
      throw new Error(`model: expected float32 probabilities, got ${output.dtype}`);
    return values;
  } finally {
    output.dispose();
  }
}
