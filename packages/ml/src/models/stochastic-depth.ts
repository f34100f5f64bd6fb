import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import { noiseSeedFor } from '../train/noise-seed.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;

export interface StochasticDepthArgs extends LayerArgs {
  /** Probability, in (0, 1], that an example's residual branch survives a training step. 1 = plain addition. */
  survivalProbability: number;
  /**
   * Identifies this layer's masks among a step's noise: each call's mask seed is derived from
   * (run seed, step, this seed, call number) by train/noise-seed.ts, so every call draws a new
   * mask, a run is reproducible and a resumed run replays its masks. Give every noise layer of a
   * model its own seed, or they draw the same masks. @default 0
   */
  seed?: number;
}

/**
 * Stochastic depth (Huang et al., ECCV 2016) as the sum of a residual block: inputs
 * `[shortcut, residual]` of one shape. In training the output is shortcut + b·residual with one
 * b ~ Bernoulli(survivalProbability) per example (broadcast over H, W, C); at inference it is
 * shortcut + survivalProbability·residual, the paper's expectation scaling — the surviving
 * branch is NOT divided by p in training. Gradients reach both inputs; the mask is a constant.
 */
export class StochasticDepth extends tfl.layers.Layer {
  static className = 'StochasticDepth';
  readonly survivalProbability: number;
  readonly seed: number;

  constructor(args: StochasticDepthArgs) {
    const { survivalProbability, seed, ...layerArgs } = args;
    super(layerArgs);
    if (!(typeof survivalProbability === 'number' && survivalProbability > 0 && survivalProbability <= 1)) {
      throw new Error(`StochasticDepth.survivalProbability: expected a number in (0, 1], got ${survivalProbability}`);
    }
    if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0)) {
      throw new Error(`StochasticDepth.seed: expected a non-negative integer, got ${seed}`);
    }
    this.survivalProbability = survivalProbability;
    this.seed = seed ?? 0;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const [shortcut, residual] = inputShape;
    if (!Array.isArray(shortcut) || !Array.isArray(residual) || inputShape.length !== 2) {
      throw new Error(`${this.describe()}.inputs: expected [shortcut, residual], got ${JSON.stringify(inputShape)}`);
    }
    const sameShape =
      shortcut.length === residual.length &&
      shortcut.every((size, axis) => size === null || residual[axis] === null || size === residual[axis]);
    if (!sameShape) {
      throw new Error(
        `${this.describe()}.inputs: expected shortcut and residual of one shape, got ${JSON.stringify(shortcut)} and ${JSON.stringify(residual)}`,
      );
    }
    return shortcut.map((size, axis) => size ?? residual[axis] ?? null);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    return tf.tidy(() => {
      const [shortcut, residual] = Array.isArray(inputs) ? inputs : [];
      if (shortcut === undefined || residual === undefined || (Array.isArray(inputs) && inputs.length !== 2)) {
        throw new Error(`${this.describe()}.inputs: expected two tensors [shortcut, residual]`);
      }
      if (!tf.util.arraysEqual(shortcut.shape, residual.shape)) {
        throw new Error(
          `${this.describe()}.inputs: expected shortcut and residual of one shape, got [${shortcut.shape.join(', ')}] and [${residual.shape.join(', ')}]`,
        );
      }
      if (this.survivalProbability === 1) return tf.add(shortcut, residual);
      if (kwargs['training'] !== true) return tf.add(shortcut, tf.mul(residual, this.survivalProbability));
      const maskShape = residual.shape.map((size, axis) => (axis === 0 ? size : 1));
      const uniform = tf.randomUniform(maskShape, 0, 1, 'float32', noiseSeedFor(this.seed));
      const survives = tf.cast(tf.less(uniform, this.survivalProbability), residual.dtype);
      return tf.add(shortcut, tf.mul(residual, survives));
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), survivalProbability: this.survivalProbability, seed: this.seed };
  }

  private describe(): string {
    return `StochasticDepth(${this.name})`;
  }
}

tf.serialization.registerClass(StochasticDepth);

/**
 * Survival probability of residual block `block` of `blocks` (1-based) under the paper's linear
 * decay: p_l = 1 − (l/L)(1 − p_L), from nearly 1 at the first block to p_L at the last.
 */
export function survivalProbabilityOf(block: number, blocks: number, finalSurvivalProbability: number): number {
  if (!(Number.isInteger(blocks) && blocks >= 1)) throw new Error(`blocks: expected a positive integer, got ${blocks}`);
  if (!(Number.isInteger(block) && block >= 1 && block <= blocks)) {
    throw new Error(`block: expected an integer in [1, ${blocks}], got ${block}`);
  }
  if (!(finalSurvivalProbability > 0 && finalSurvivalProbability <= 1)) {
    throw new Error(`finalSurvivalProbability: expected a number in (0, 1], got ${finalSurvivalProbability}`);
  }
  return 1 - (block / blocks) * (1 - finalSurvivalProbability);
}
