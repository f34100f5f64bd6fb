import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import { noiseSeedFor } from '../train/noise-seed.js';

export interface NoiseDropoutArgs {
  /** Fraction of values dropped in training. */
  rate: number;
  /** Identifies this layer's masks among the step's noise (see train/noise-seed.ts). @default 0 */
  seed?: number;
  name?: string;
}

/**
 * Dropout whose mask changes every step yet replays exactly after a resume: the mask's seed
 * comes from (run seed, step, layer seed). tfjs' own Dropout either repeats one mask forever
 * (seeded) or cannot be replayed (unseeded). Inverted dropout: kept values are scaled by
 * 1 / (1 − rate) in training; inference is the identity.
 */
export class NoiseDropout extends tfl.layers.Layer {
  static className = 'NoiseDropout';
  readonly rate: number;
  readonly seed: number;

  constructor(args: NoiseDropoutArgs) {
    super(args.name === undefined ? {} : { name: args.name });
    if (!(args.rate >= 0 && args.rate < 1))
      throw new Error(`NoiseDropout.rate: expected a number in [0, 1), got ${args.rate}`);
    this.rate = args.rate;
    this.seed = args.seed ?? 0;
    this.supportsMasking = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    return tf.tidy(() => {
      const input = Array.isArray(inputs) ? inputs[0] : inputs;
      if (input === undefined) throw new Error('NoiseDropout: expected one input');
      if (kwargs['training'] !== true || this.rate === 0) return input.clone();
      const keep = tf.cast(
        tf.greaterEqual(tf.randomUniform(input.shape, 0, 1, 'float32', noiseSeedFor(this.seed)), this.rate),
        'float32',
      );
      return tf.mul(input, tf.div(keep, 1 - this.rate));
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate, seed: this.seed };
  }
}

tf.serialization.registerClass(NoiseDropout);
