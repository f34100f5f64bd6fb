import * as tf from '@tensorflow/tfjs-core';
import { FusedBatchNorm, type FusedBatchNormAttrs, type GradConfig, type NamedAttrMap } from '@tensorflow/tfjs-core';

/**
 * Gradient of y = (x − mean) · scale / √(variance + ε) + offset, written with broadcasting.
 * tfjs-core's own version tiles 1/√(variance + ε) to the full input shape and reduces
 * three full-size products; here the reductions are two (Σdy and Σdy·(x − mean)), shared by
 * every input's gradient, and dx is a single broadcast multiply:
 *   dOffset = Σdy                dScale = Σdy·(x − mean) / √(variance + ε)
 *   dMean   = −dOffset · scale / √(variance + ε)
 *   dVar    = −½ · scale · Σdy·(x − mean) / (variance + ε)^{3/2}
 *   dx      = dy · scale / √(variance + ε)
 */
export const batchNormGradientConfig: GradConfig = {
  kernelName: FusedBatchNorm,
  inputsToSave: ['x', 'mean', 'variance', 'scale'],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: NamedAttrMap) => {
    const { varianceEpsilon } = attrs as unknown as FusedBatchNormAttrs;
    const [x, mean, variance, scale] = saved;
    if (Array.isArray(dy) || x === undefined || mean === undefined || variance === undefined) {
      throw new Error('FusedBatchNorm gradient: expected one dy and saved x, mean, variance');
    }
    const statShape = mean.shape;
    const reductionAxes = tf.backend_util.getReductionAxes(mean.shape, x.shape);
    // Computed once for all five gradients; the full-size temporaries die inside this tidy.
    const { inverseStd, gain, sumDy, sumDyCentered } = tf.tidy(() => {
      const inverseStd = tf.rsqrt(tf.add(variance, tf.scalar(varianceEpsilon)));
      const gain = scale === undefined ? inverseStd : tf.mul(scale, inverseStd);
      const sumDy = tf.reshape(tf.sum(dy, reductionAxes), statShape);
      const sumDyCentered = tf.reshape(tf.sum(tf.mul(dy, tf.sub(x, mean)), reductionAxes), statShape);
      return { inverseStd, gain, sumDy, sumDyCentered };
    });
    return {
      x: () => tf.mul(dy, gain),
      mean: () => tf.neg(tf.mul(sumDy, gain)),
      variance: () => tf.mul(tf.mul(sumDyCentered, tf.mul(gain, tf.square(inverseStd))), tf.scalar(-0.5)),
      scale: () => tf.mul(sumDyCentered, inverseStd),
      offset: () => sumDy,
    };
  },
};
