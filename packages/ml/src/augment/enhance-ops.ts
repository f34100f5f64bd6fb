import * as tf from '@tensorflow/tfjs-core';

/*
 * PIL's ImageEnhance ops: each blends the image with a "degenerate" version of itself,
 * out = clip(factor·x + (1 − factor)·degenerate, 0, 255), with one factor per image.
 * Factor 1 returns the image exactly, 0 the degenerate image, above 1 extrapolates away from it.
 * Images: float32 [N, H, W, C] on the 0–255 scale, C = 1 or 3; `factors` has one entry per image.
 */

/** ITU-R 601-2 luma, the weights of PIL's `convert('L')`. */
const LUMA_WEIGHTS = [0.299, 0.587, 0.114];

/** PIL's ImageFilter.SMOOTH, row by row; its scale is 13 (the sum of the taps). */
const SMOOTH_TAPS = [1, 1, 1, 1, 5, 1, 1, 1, 1];

/** Saturation: blends with the image's luma (gray) copy. Grayscale images come back unchanged. */
export function color(images: tf.Tensor4D, factors: readonly number[]): tf.Tensor4D {
  checkFactors(images, factors);
  if (images.shape[3] === 1) return tf.clone(images);
  return tf.tidy(() => {
    // A 1×1 convolution whose three output channels are all the luma: the gray copy, already in RGB.
    const toGray = tf.tensor4d(
      LUMA_WEIGHTS.flatMap((weight) => [weight, weight, weight]),
      [1, 1, 3, 3],
    );
    return blend(images, tf.conv2d(images, toGray, 1, 'valid'), factors);
  });
}

/** Contrast: blends with a flat image at the mean luma of the whole image (not rounded, unlike PIL). */
export function contrast(images: tf.Tensor4D, factors: readonly number[]): tf.Tensor4D {
  checkFactors(images, factors);
  const [count, , , channels] = images.shape;
  return tf.tidy(() => {
    // Mean luma = luma of the channel means.
    const channelMeans = tf.reshape(tf.mean(images, [1, 2]), [count, channels]);
    const meanLuma = channels === 1 ? channelMeans : tf.matMul(channelMeans, tf.tensor2d(LUMA_WEIGHTS, [3, 1]));
    return blend(images, tf.reshape(meanLuma, [count, 1, 1, 1]), factors);
  });
}

/** Brightness: blends with black, i.e. scales every value by the factor. */
export function brightness(images: tf.Tensor4D, factors: readonly number[]): tf.Tensor4D {
  checkFactors(images, factors);
  return tf.tidy(() => blend(images, tf.zeros([images.shape[0], 1, 1, 1]), factors));
}

/**
 * Sharpness: blends with PIL's SMOOTH filter ([[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13, per channel);
 * as in PIL, the one-pixel border of the smoothed image keeps the original values.
 */
export function sharpness(images: tf.Tensor4D, factors: readonly number[]): tf.Tensor4D {
  checkFactors(images, factors);
  const [count, height, width, channels] = images.shape;
  if (height < 3 || width < 3) return tf.clone(images);
  // 1 inside the one-pixel border, at full size: a broadcasting where is several times slower on wasm.
  const interior = Uint8Array.from({ length: count * height * width * channels }, (_, index) => {
    const row = Math.floor(index / (width * channels)) % height;
    const column = Math.floor(index / channels) % width;
    return row > 0 && row < height - 1 && column > 0 && column < width - 1 ? 1 : 0;
  });
  return tf.tidy(() => {
    const kernel = tf.tensor4d(
      SMOOTH_TAPS.flatMap((tap) => new Array<number>(channels).fill(tap / 13)),
      [3, 3, channels, 1],
    );
    const smoothed = tf.depthwiseConv2d(images, kernel, 1, 'same');
    const degenerate = tf.where(tf.tensor4d(interior, images.shape, 'bool'), smoothed, images);
    return blend(images, degenerate, factors);
  });
}

function blend(images: tf.Tensor4D, degenerate: tf.Tensor, factors: readonly number[]): tf.Tensor4D {
  const count = images.shape[0];
  const imageWeights = tf.tensor4d(Float32Array.from(factors), [count, 1, 1, 1]);
  // 1 − factor in double precision, so that factor 1 gives a weight of exactly 0 and the image back exactly.
  const degenerateWeights = tf.tensor4d(
    Float32Array.from(factors, (factor) => 1 - factor),
    [count, 1, 1, 1],
  );
  return tf.clipByValue(
    tf.add(tf.mul(images, imageWeights), tf.mul(degenerate, degenerateWeights)),
    0,
    255,
  ) as tf.Tensor4D;
}

function checkFactors(images: tf.Tensor4D, factors: readonly number[]): void {
  if (factors.length !== images.shape[0]) {
    throw new RangeError(`factors: expected one per image (${images.shape[0]}), got ${factors.length}`);
  }
}
