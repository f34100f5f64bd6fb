import * as tfl from '@tensorflow/tfjs-layers';

import { NoiseDropout } from './noise-dropout.js';
import { StochasticDepth, survivalProbabilityOf } from './stochastic-depth.js';

/**
 * The reference model every benchmark and whole-model test uses (DESIGN.md §3):
 * 3×3 stem with 32 channels + BN + ReLU; basic blocks of 32, 64 (stride 2, 1×1
 * projection) and 64; global average pool; dropout; dense 10.
 * 151,274 trainable parameters (152,106 with BN moving statistics), 80.7 MFLOP per 28×28×1 image.
 */
export interface ReferenceResNetOptions {
  /** @default [28, 28, 1] */
  inputShape?: [number, number, number];
  /** @default 10 */
  classes?: number;
  /** Dropout rate before the classifier. @default 0.5 */
  dropout?: number;
  /** Seed for the initialisers, so two builds start from the same weights. @default 1 */
  seed?: number;
  /**
   * Seed for the dropout mask. tfjs' seeded dropout draws the SAME mask at every step, which is
   * no noise at all for training: leave it unset (a new mask each step) except in tests that
   * compare backends and need identical masks. @default undefined
   */
  dropoutSeed?: number;
  /** Channel widths × this (students may be wider than their teachers). @default 1 */
  widthMultiplier?: number;
  /**
   * Noise that replays exactly after a resume (train/noise-seed.ts): dropout as NoiseDropout and,
   * when `finalSurvivalProbability` < 1, stochastic depth on each block. @default false
   */
  replayableNoise?: boolean;
  /** p_L of stochastic depth, decaying linearly from 1 over the 3 blocks; 1 = off. Needs replayableNoise. @default 1 */
  finalSurvivalProbability?: number;
}

export function buildReferenceResNet(options: ReferenceResNetOptions = {}): tfl.LayersModel {
  const inputShape = options.inputShape ?? [28, 28, 1];
  const classes = options.classes ?? 10;
  const dropout = options.dropout ?? 0.5;
  let seed = options.seed ?? 1;
  const nextSeed = (): number => seed++;
  const width = options.widthMultiplier ?? 1;
  const channels = (base: number): number => Math.max(1, Math.round(base * width));
  const finalSurvival = options.finalSurvivalProbability ?? 1;
  if (finalSurvival < 1 && options.replayableNoise !== true) {
    throw new Error('finalSurvivalProbability: stochastic depth needs replayableNoise: true');
  }
  let blockIndex = 0;
  const blockCount = 3;

  const conv = (filters: number, kernelSize: number, strides: number, name: string): tfl.layers.Layer =>
    tfl.layers.conv2d({
      filters,
      kernelSize,
      strides,
      padding: 'same',
      useBias: false,
      kernelInitializer: tfl.initializers.heNormal({ seed: nextSeed() }),
      name,
    });
  const batchNorm = (name: string): tfl.layers.Layer => tfl.layers.batchNormalization({ name, momentum: 0.9 });
  const relu = (name: string): tfl.layers.Layer => tfl.layers.reLU({ name });

  const basicBlock = (
    input: tfl.SymbolicTensor,
    filters: number,
    strides: number,
    name: string,
  ): tfl.SymbolicTensor => {
    let branch = conv(filters, 3, strides, `${name}_conv1`).apply(input) as tfl.SymbolicTensor;
    branch = batchNorm(`${name}_bn1`).apply(branch) as tfl.SymbolicTensor;
    branch = relu(`${name}_relu1`).apply(branch) as tfl.SymbolicTensor;
    branch = conv(filters, 3, 1, `${name}_conv2`).apply(branch) as tfl.SymbolicTensor;
    branch = batchNorm(`${name}_bn2`).apply(branch) as tfl.SymbolicTensor;
    const inputChannels = input.shape[input.shape.length - 1];
    let shortcut = input;
    if (strides !== 1 || inputChannels !== filters) {
      shortcut = conv(filters, 1, strides, `${name}_proj`).apply(input) as tfl.SymbolicTensor;
      shortcut = batchNorm(`${name}_proj_bn`).apply(shortcut) as tfl.SymbolicTensor;
    }
    blockIndex++;
    const survival = survivalProbabilityOf(blockIndex, blockCount, finalSurvival);
    const sum = (
      survival < 1
        ? new StochasticDepth({ survivalProbability: survival, seed: 1000 + blockIndex, name: `${name}_drop_path` })
        : tfl.layers.add({ name: `${name}_add` })
    ).apply([shortcut, branch]) as tfl.SymbolicTensor;
    return relu(`${name}_out`).apply(sum) as tfl.SymbolicTensor;
  };

  const input = tfl.input({ shape: inputShape, name: 'image' });
  let x = conv(channels(32), 3, 1, 'stem_conv').apply(input) as tfl.SymbolicTensor;
  x = batchNorm('stem_bn').apply(x) as tfl.SymbolicTensor;
  x = relu('stem_relu').apply(x) as tfl.SymbolicTensor;
  x = basicBlock(x, channels(32), 1, 'block1');
  x = basicBlock(x, channels(64), 2, 'block2');
  x = basicBlock(x, channels(64), 1, 'block3');
  x = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tfl.SymbolicTensor;
  const dropoutLayer =
    options.replayableNoise === true
      ? new NoiseDropout({ rate: dropout, seed: 2000, name: 'dropout' })
      : tfl.layers.dropout({ rate: dropout, seed: options.dropoutSeed, name: 'dropout' });
  x = dropoutLayer.apply(x) as tfl.SymbolicTensor;
  const logits = tfl.layers
    .dense({ units: classes, kernelInitializer: tfl.initializers.glorotUniform({ seed: nextSeed() }), name: 'logits' })
    .apply(x) as tfl.SymbolicTensor;
  const probabilities = tfl.layers.softmax({ name: 'probabilities' }).apply(logits) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: probabilities, name: 'reference_resnet' });
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
