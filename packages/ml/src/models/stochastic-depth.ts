import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import { noiseSeedFor } from '../train/noise-seed.js';

export interface StochasticDepthArgs {
  /** Probability that an example's residual branch survives in training. */
  survivalProbability: number;
  /** Identifies this layer's masks among a step's noise (train/noise-seed.ts). @default 0 */
  seed?: number;
  name?: string;
}

/**
 * Stochastic depth (Huang et al. 2016) on a residual block's output: inputs [shortcut, residual].
 * Training: shortcut + b·residual with b ~ Bernoulli(p) drawn per example; inference:
 * shortcut + p·residual. Masks replay exactly after a resume (their seed is (run, step, layer)).
 */
export class StochasticDepth extends tfl.layers.Layer {
  static className = 'StochasticDepth';
  readonly survivalProbability: number;
  readonly seed: number;

  constructor(args: StochasticDepthArgs) {
    super(args.name === undefined ? {} : { name: args.name });
    if (!(args.survivalProbability > 0 && args.survivalProbability <= 1)) {
      throw new Error(
        `StochasticDepth.survivalProbability: expected a number in (0, 1], got ${args.survivalProbability}`,
      );
    }
    this.survivalProbability = args.survivalProbability;
    this.seed = args.seed ?? 0;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const first = Array.isArray(inputShape[0]) ? (inputShape[0] as tfl.Shape) : (inputShape as tfl.Shape);
    return first;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    return tf.tidy(() => {
      if (!Array.isArray(inputs) || inputs.length !== 2)
        throw new Error('StochasticDepth: expected inputs [shortcut, residual]');
      const [shortcut, residual] = inputs as [tf.Tensor, tf.Tensor];
      const p = this.survivalProbability;
      if (p === 1) return tf.add(shortcut, residual);
      if (kwargs['training'] !== true) return tf.add(shortcut, tf.mul(residual, p));
      const batch = residual.shape[0] ?? 1;
      const maskShape = [batch, ...residual.shape.slice(1).map(() => 1)];
      const survives = tf.cast(
        tf.less(tf.randomUniform(maskShape, 0, 1, 'float32', noiseSeedFor(this.seed)), p),
        'float32',
      );
      return tf.add(shortcut, tf.mul(residual, survives));
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), survivalProbability: this.survivalProbability, seed: this.seed };
  }
}

tf.serialization.registerClass(StochasticDepth);

/** Survival probability of block l of L (1-based): p_l = 1 − (l/L)(1 − p_L), the paper's linear decay. */
export function survivalProbabilityOf(block: number, blocks: number, finalSurvivalProbability: number): number {
  return 1 - (block / blocks) * (1 - finalSurvivalProbability);
}
