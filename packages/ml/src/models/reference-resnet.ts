import type * as tfl from '@tensorflow/tfjs-layers';

import { resnetPreset } from './model-presets.js';
import { buildResNet } from './resnet.js';

/**
 * The reference model every benchmark and whole-model test uses (docs/architecture.md §3): the `reference`
 * preset of the ResNet family (resnet.ts) — 3×3 stem with 32 channels + BN + ReLU; basic blocks
 * of 32, 64 (stride 2, 1×1 projection) and 64; global average pool; dropout; dense 10.
 * 151,274 trainable parameters (152,106 with BN moving statistics), 80.7 MFLOP per 28×28×1 image.
 * Its noise is replayable (NoiseDropout, StochasticDepth: masks from train/noise-seed.ts), so two
 * runs — on two backends, or a resumed one — draw the same masks when they set the same noise step.
 */
export interface ReferenceResNetOptions {
  /** @default [28, 28, 1] */
  inputShape?: [number, number, number];
  /** @default 10 */
  classes?: number;
  /** Dropout rate before the classifier; 0 = no dropout layer. @default 0.5 */
  dropout?: number;
  /** Seed for the initialisers, so two builds start from the same weights. @default 1 */
  seed?: number;
  /** Channel widths × this (students may be wider than their teachers). @default 1 */
  widthMultiplier?: number;
  /** p_L of stochastic depth, decaying linearly from 1 over the 3 blocks; 1 = off. @default 1 */
  finalSurvivalProbability?: number;
}

export function buildReferenceResNet(options: ReferenceResNetOptions = {}): tfl.LayersModel {
  const config = resnetPreset('reference', {
    name: 'reference_resnet',
    ...(options.inputShape === undefined ? {} : { inputShape: options.inputShape }),
    classes: options.classes ?? 10,
    dropout: options.dropout ?? 0.5,
    seed: options.seed ?? 1,
    widthMultiplier: options.widthMultiplier ?? 1,
    finalSurvivalProbability: options.finalSurvivalProbability ?? 1,
  });
  return buildResNet(config).model;
}

/** Multiply-adds ×2 of every convolution and dense layer for one image: the FLOP count benchmarks report. */
export function forwardFlopsPerImage(model: tfl.LayersModel): number {
  let flops = 0;
  for (const layer of model.layers) {
    const className = layer.getClassName();
    if (className === 'Conv2D') {
      const kernel = layer.getWeights()[0];
      const output = layer.outputShape as number[];
      if (kernel === undefined) continue;
      const [kh = 0, kw = 0, ci = 0, co = 0] = kernel.shape;
      flops += 2 * (output[1] ?? 0) * (output[2] ?? 0) * kh * kw * ci * co;
    } else if (className === 'Dense') {
      const kernel = layer.getWeights()[0];
      if (kernel === undefined) continue;
      const [inputs = 0, units = 0] = kernel.shape;
      flops += 2 * inputs * units;
    }
  }
  return flops;
}
