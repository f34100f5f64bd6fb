import * as tf from '@tensorflow/tfjs-core';

/*
 * Ops that map each pixel value on its own (PIL ImageOps.invert / solarize / posterize).
 * Images: float32 [N, H, W, C] on the 0–255 scale; outputs stay on that scale.
 */

/** 255 − x. */
export function invert(images: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.sub(255, images) as tf.Tensor4D);
}

/**
 * Inverts (255 − x) the values at or above `threshold`, keeps the others (PIL's `solarize`).
 * @param threshold on the 0–255 scale: 256 leaves every value, 0 inverts every value
 */
export function solarize(images: tf.Tensor4D, threshold: number): tf.Tensor4D {
  return tf.tidy(() => tf.where(tf.greaterEqual(images, threshold), tf.sub(255, images), images) as tf.Tensor4D);
}

/**
 * Keeps the top `bits` bits of each value: floor(x / 2^(8−bits))·2^(8−bits), which for integer values is
 * PIL's `posterize`; with 8 bits the images come back unchanged (fractions included).
 * @param bits 1–8
 */
export function posterize(images: tf.Tensor4D, bits: number): tf.Tensor4D {
  if (!Number.isInteger(bits) || bits < 1 || bits > 8) {
    throw new RangeError(`bits: expected an integer from 1 to 8, got ${String(bits)}`);
  }
  const step = 2 ** (8 - bits);
  return tf.tidy(() => (step === 1 ? tf.clone(images) : tf.mul(tf.floor(tf.div(images, step)), step)));
}
