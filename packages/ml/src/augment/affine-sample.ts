import * as tf from '@tensorflow/tfjs-core';

/**
 * Where an output pixel reads from, as PIL's `Image.transform(size, AFFINE, data)` has it:
 * (u, v) ↦ (a·u + b·v + c, d·u + e·v + f), in pixels from the image's top-left corner, evaluated at
 * the output pixel's centre (u = column + 0.5, v = row + 0.5). The source pixel is the one containing
 * that point (floor), i.e. nearest-neighbour sampling; points outside the image read `fillValue`.
 */
export type AffineMap = readonly [a: number, b: number, c: number, d: number, e: number, f: number];

/**
 * Resamples each image through its own affine map (nearest neighbour, constant fill): one gather.
 *
 * The source index of every output pixel is computed here in double precision (index bookkeeping, not
 * tensor maths: a few operations per pixel), so ties round the same on every backend. Not
 * tf.image.transform: tfjs-backend-cpu 4.22's Transform kernel returns after the first image of a batch
 * (the rest stay at the fill value), and the cpu and wasm kernels round ties differently (Math.round vs
 * std::round).
 *
 * @param images float32 [N, H, W, C]
 * @param maps one per image
 * @param fillValue what pixels mapped from outside the image get, on the images' scale
 */
export function sampleAffine(images: tf.Tensor4D, maps: readonly AffineMap[], fillValue: number): tf.Tensor4D {
  const [count, height, width, channels] = images.shape;
  if (maps.length !== count) {
    throw new RangeError(`maps: expected one per image (${count}), got ${maps.length}`);
  }
  const pixels = height * width;
  // Row `count · pixels` of the lookup table is the fill value: outside points read it.
  const fillRow = count * pixels;
  const sourceRows = new Int32Array(count * pixels);
  maps.forEach(([a, b, c, d, e, f], image) => {
    for (let row = 0; row < height; row++) {
      const v = row + 0.5;
      for (let column = 0; column < width; column++) {
        const u = column + 0.5;
        const sourceColumn = Math.floor(a * u + b * v + c);
        const sourceRow = Math.floor(d * u + e * v + f);
        const inside = sourceColumn >= 0 && sourceColumn < width && sourceRow >= 0 && sourceRow < height;
        sourceRows[image * pixels + row * width + column] = inside
          ? image * pixels + sourceRow * width + sourceColumn
          : fillRow;
      }
    }
  });
  return tf.tidy(() => {
    const table = tf.concat([tf.reshape(images, [count * pixels, channels]), tf.fill([1, channels], fillValue)], 0);
    const sampled = tf.gatherND(table, tf.tensor2d(sourceRows, [count * pixels, 1], 'int32'));
    return tf.reshape(sampled, [count, height, width, channels]);
  });
}
