import * as tf from '@tensorflow/tfjs-core';

/*
 * Ops that look at each channel's value distribution, per image and per channel
 * (PIL ImageOps.autocontrast with cutoff 0, ImageOps.equalize).
 * Images: float32 [N, H, W, C] on the 0–255 scale; outputs stay on that scale.
 */

/**
 * Stretches each channel of each image linearly so its smallest value becomes 0 and its largest 255;
 * a constant channel is left as it is. Unlike PIL, the result is not truncated to integers.
 */
export function autocontrast(images: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const low = tf.min(images, [1, 2], true);
    const high = tf.max(images, [1, 2], true);
    const range = tf.sub(high, low);
    const stretches = tf.greater(range, 0);
    const scale = tf.where(stretches, tf.div(255, tf.maximum(range, 1e-6)), tf.onesLike(range));
    const offset = tf.where(stretches, low, tf.zerosLike(low));
    return tf.clipByValue(tf.mul(tf.sub(images, offset), scale), 0, 255) as tf.Tensor4D;
  });
}

/**
 * Histogram equalization of each channel of each image, as PIL computes it on the 256 integer levels
 * (values are binned by floor): with h the channel's histogram, n its pixel count and h_last the count
 * of its highest occupied level, step = floor((n − h_last) / 255); level i maps to
 * min(255, floor((Σ_{j<i} h_j + floor(step / 2)) / step)). A channel whose step is 0 (one level, or
 * nearly all pixels on the highest one) is left as it is.
 */
export function equalize(images: tf.Tensor4D): tf.Tensor4D {
  const [count, height, width, channels] = images.shape;
  const rows = count * channels;
  const pixels = height * width;
  const total = rows * pixels;
  if (total === 0) return tf.clone(images);
  // Each (image, channel) gets its own block of 256 histogram bins: bin = (image·C + channel)·256 + level.
  const blockOfValue = new Int32Array(total);
  for (let index = 0; index < total; index++) {
    blockOfValue[index] = (Math.floor(index / (pixels * channels)) * channels + (index % channels)) * 256;
  }
  const blockOfRow = Int32Array.from({ length: rows }, (_, row) => row * 256);
  return tf.tidy(() => {
    const levels = tf.cast(tf.clipByValue(tf.floor(images), 0, 255), 'int32');
    const bins = tf.add(tf.reshape(levels, [total]), tf.tensor1d(blockOfValue, 'int32')) as tf.Tensor1D;
    const histogram = tf.cast(tf.bincount(bins, tf.tensor1d([], 'float32'), rows * 256), 'int32');
    const highestBin = tf.add(tf.reshape(tf.max(levels, [1, 2]), [rows]), tf.tensor1d(blockOfRow, 'int32'));
    const highestCount = tf.gatherND(histogram, tf.reshape(highestBin, [rows, 1]));
    const highestLevel = tf.scalar(255, 'int32');
    const step = tf.floorDiv(tf.sub(tf.scalar(pixels, 'int32'), highestCount), highestLevel);
    const countsBelow = tf.cumsum(tf.reshape(histogram, [rows, 256]), 1, true);
    const safeStep = tf.reshape(tf.maximum(step, tf.scalar(1, 'int32')), [rows, 1]);
    const rounding = tf.floorDiv(safeStep, tf.scalar(2, 'int32'));
    const lookup = tf.minimum(tf.floorDiv(tf.add(countsBelow, rounding), safeStep), highestLevel);
    const equalized = tf.reshape(
      tf.cast(tf.gatherND(tf.reshape(lookup, [rows * 256]), tf.reshape(bins, [total, 1])), 'float32'),
      images.shape,
    );
    // keep is 0 or 1 per (image, channel): 1·x + 0·y is x exactly (a broadcast where is slow on wasm).
    const keep = tf.reshape(tf.cast(tf.equal(step, tf.scalar(0, 'int32')), 'float32'), [count, 1, 1, channels]);
    return tf.add(tf.mul(images, keep), tf.mul(equalized, tf.sub(1, keep))) as tf.Tensor4D;
  });
}
