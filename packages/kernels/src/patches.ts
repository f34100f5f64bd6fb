import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import { nativeKernelsActive } from './active.js';
import {
  ADAM_UPDATE,
  BATCH_NORM_TRAINING,
  BATCH_NORM_TRAINING_GRAD,
  RELU_GRAD,
  type AdamUpdateAttrs,
  type BatchNormTrainingAttrs,
} from './training-kernels.js';

/**
 * The only place that reaches into tfjs internals. Three patches, each active only while native
 * kernels run the wasm backend, and otherwise calling the original code unchanged:
 * - tfjs-layers' BatchNormalization in training: one kernel forward and one backward instead of
 *   ~25 ops per layer (moments, normalisation, their gradients);
 * - tfjs-core's Adam: one kernel per variable instead of ~12 elementwise ops;
 * - the Relu gradient: one kernel instead of Step, Cast and Multiply.
 * They rely on private fields of the pinned versions, so they apply to those versions only.
 */
export const PATCHED_TFJS_VERSION = '4.22.0';

export type PatchResult = { ok: true } | { ok: false; reason: string };

let applied: PatchResult | undefined;

export function applyTfjsPatches(): PatchResult {
  if (applied !== undefined) return applied;
  if (tf.version_core !== PATCHED_TFJS_VERSION || tfl.version_layers !== PATCHED_TFJS_VERSION) {
    applied = {
      ok: false,
      reason: `tfjs-core ${tf.version_core} / tfjs-layers ${tfl.version_layers} are not the pinned ${PATCHED_TFJS_VERSION}: batch-norm and Adam stay unpatched`,
    };
    return applied;
  }
  patchBatchNormalization();
  patchAdam();
  patchReluGradient();
  applied = { ok: true };
  return applied;
}

interface BatchNormalizationLayer {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: tfl.LayerVariable;
  beta: tfl.LayerVariable;
  movingMean: tfl.LayerVariable;
  movingVariance: tfl.LayerVariable;
}

type LayerCall = (
  this: BatchNormalizationLayer,
  inputs: tf.Tensor | tf.Tensor[],
  kwargs: Record<string, unknown>,
) => tf.Tensor | tf.Tensor[];

function patchBatchNormalization(): void {
  const entry = tf.serialization.SerializationMap.getMap().classNameMap['BatchNormalization'];
  const layerClass = entry?.[0] as { prototype: { call: LayerCall } } | undefined;
  if (layerClass === undefined) throw new Error('tfjs-layers BatchNormalization is not registered');
  const originalCall = layerClass.prototype.call;
  layerClass.prototype.call = function (this: BatchNormalizationLayer, inputs, kwargs) {
    const input = Array.isArray(inputs) ? inputs[0] : inputs;
    const channelsLast = input !== undefined && (this.axis === -1 || this.axis === input.rank - 1);
    if (kwargs?.['training'] !== true || !nativeKernelsActive() || !channelsLast || !this.center || !this.scale) {
      return originalCall.call(this, inputs, kwargs);
    }
    if (input === undefined || input.dtype !== 'float32') return originalCall.call(this, inputs, kwargs);
    return tf.tidy(() => {
      const attrs: BatchNormTrainingAttrs = { epsilon: this.epsilon };
      const [normalized, mean, variance] = tf
        .engine()
        .runKernel(
          BATCH_NORM_TRAINING,
          { x: input, gamma: this.gamma.read(), beta: this.beta.read() },
          attrs as unknown as tf.NamedAttrMap,
        ) as tf.Tensor[];
      if (normalized === undefined || mean === undefined || variance === undefined)
        throw new Error(`${BATCH_NORM_TRAINING}: expected 3 outputs`);
      // The same moving averages as tfjs-layers: moving ← moving − (moving − batch)·(1 − momentum).
      for (const [moving, batch] of [
        [this.movingMean, mean],
        [this.movingVariance, variance],
      ] as const) {
        const current = moving.read();
        moving.write(tf.sub(current, tf.mul(tf.sub(current, batch), 1 - this.momentum)));
      }
      return normalized;
    });
  };

  tf.registerGradient({
    kernelName: BATCH_NORM_TRAINING,
    inputsToSave: ['x', 'gamma'],
    outputsToSave: [false, true, true],
    gradFunc: (dys, saved, attrs) => {
      const [x, gamma, mean, variance] = saved;
      const [dy, dMean, dVariance] = Array.isArray(dys) ? dys : [dys];
      if (x === undefined || gamma === undefined || mean === undefined || variance === undefined || dy === undefined) {
        throw new Error(`${BATCH_NORM_TRAINING} gradient: missing saved tensors`);
      }
      const [dxNormalized, dGamma, dBeta] = tf
        .engine()
        .runKernel(BATCH_NORM_TRAINING_GRAD, { dy, x, mean, variance, gamma }, attrs) as tf.Tensor[];
      if (dxNormalized === undefined || dGamma === undefined || dBeta === undefined)
        throw new Error(`${BATCH_NORM_TRAINING_GRAD}: expected 3 outputs`);
      // Layers use the batch statistics only for moving averages, so their gradients are zeros;
      // when a caller differentiates through them, add ∂mean/∂x = 1/R and ∂var/∂x = 2(x − mean)/R.
      const statisticsMatter = [dMean, dVariance].some(
        (gradient) => gradient !== undefined && gradient.dataSync().some((value) => value !== 0),
      );
      const dx =
        statisticsMatter && dMean !== undefined && dVariance !== undefined
          ? tf.tidy(() => {
              const rows = x.size / (x.shape[x.rank - 1] ?? 1);
              const viaMean = tf.div(dMean, rows);
              const viaVariance = tf.mul(tf.sub(x, mean), tf.div(tf.mul(dVariance, 2), rows));
              return tf.add(tf.add(dxNormalized, viaMean), viaVariance);
            })
          : dxNormalized;
      return { x: () => dx, gamma: () => dGamma, beta: () => dBeta };
    },
  });
}

interface AdamInternals {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: Array<{ originalName: string; variable: tf.Variable } | undefined>;
  accumulatedSecondMoment: Array<{ originalName: string; variable: tf.Variable } | undefined>;
  incrementIterations(): void;
}

type ApplyGradients = (
  this: AdamInternals,
  variableGradients: tf.NamedTensorMap | Array<{ name: string; tensor: tf.Tensor }>,
) => void;

function patchAdam(): void {
  const prototype = tf.AdamOptimizer.prototype as unknown as { applyGradients: ApplyGradients };
  const original = prototype.applyGradients;
  prototype.applyGradients = function (this: AdamInternals, variableGradients) {
    if (!nativeKernelsActive()) {
      original.call(this, variableGradients);
      return;
    }
    const names = Array.isArray(variableGradients)
      ? variableGradients.map((entry) => entry.name)
      : Object.keys(variableGradients);
    tf.tidy(() => {
      const oneMinusAccBeta1 = 1 - (this.accBeta1.dataSync()[0] ?? 0);
      const oneMinusAccBeta2 = 1 - (this.accBeta2.dataSync()[0] ?? 0);
      names.forEach((name, index) => {
        const value = tf.engine().registeredVariables[name];
        if (value === undefined) throw new Error(`Adam: no variable named ${name}`);
        const firstMoment = (this.accumulatedFirstMoment[index] ??= {
          originalName: `${name}/m`,
          variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
        }).variable;
        const secondMoment = (this.accumulatedSecondMoment[index] ??= {
          originalName: `${name}/v`,
          variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
        }).variable;
        const gradient = Array.isArray(variableGradients) ? variableGradients[index]?.tensor : variableGradients[name];
        if (gradient === undefined || gradient === null) return;
        const attrs: AdamUpdateAttrs = {
          learningRate: this.learningRate,
          beta1: this.beta1,
          beta2: this.beta2,
          epsilon: this.epsilon,
          oneMinusAccBeta1,
          oneMinusAccBeta2,
        };
        const [newValue, newFirstMoment, newSecondMoment] = tf
          .engine()
          .runKernel(
            ADAM_UPDATE,
            { value, gradient, firstMoment, secondMoment },
            attrs as unknown as tf.NamedAttrMap,
          ) as tf.Tensor[];
        if (newValue === undefined || newFirstMoment === undefined || newSecondMoment === undefined)
          throw new Error(`${ADAM_UPDATE}: expected 3 outputs`);
        firstMoment.assign(newFirstMoment);
        secondMoment.assign(newSecondMoment);
        value.assign(newValue);
      });
      this.accBeta1.assign(tf.mul(this.accBeta1, this.beta1));
      this.accBeta2.assign(tf.mul(this.accBeta2, this.beta2));
    });
    this.incrementIterations();
  };
}

function patchReluGradient(): void {
  const original = tf.getGradient('Relu');
  if (original === undefined)
    throw new Error('tfjs-core has no Relu gradient registered (import @tensorflow/tfjs-layers first)');
  tf.registerGradient({
    kernelName: 'Relu',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      if (!nativeKernelsActive() || Array.isArray(dy) || x === undefined || x.dtype !== 'float32') {
        return original.gradFunc(dy, saved, attrs);
      }
      return { x: () => tf.engine().runKernel(RELU_GRAD, { dy, x }) as tf.Tensor };
    },
  });
}
