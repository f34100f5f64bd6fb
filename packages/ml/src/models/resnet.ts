import * as tfl from '@tensorflow/tfjs-layers';

import { NoiseDropout } from './noise-dropout.js';
import { StochasticDepth, survivalProbabilityOf } from './stochastic-depth.js';

/** Basic: two 3×3 convolutions. Bottleneck: 1×1 → 3×3 → 1×1 with 4× the filters out. */
export type ResNetBlockKind = 'basic' | 'bottleneck';

/** Channels out of a bottleneck block per filter of its 3×3 convolution (He et al. 2016). */
export const BOTTLENECK_EXPANSION = 4;

export interface ResNetStem {
  /** Filters of the stem convolution, before the width multiplier. @default the first stage's filters */
  filters: number;
  /** @default 3 */
  kernelSize: number;
  /** @default 1 */
  strides: number;
  /** A 3×3 max-pool with stride 2 after the stem, as ImageNet ResNets have; off for 32×32 and 28×28. @default false */
  maxPool: boolean;
}

export interface ResNetStage {
  /** Filters of the blocks' 3×3 convolutions, before the width multiplier (a bottleneck outputs 4× this). */
  filters: number;
  /** Residual blocks in the stage. */
  blocks: number;
  /** Stride of the stage's first block; the others have stride 1. */
  strides: number;
}

/**
 * Everything that decides a ResNet's architecture and initial weights: plain JSON, so a model
 * artifact can store it and `buildResNet(config)` rebuilds the same model.
 */
export interface ResNetConfig {
  /** The model's name (tfjs model name). @default 'resnet' */
  name: string;
  /** Height, width, channels. @default [28, 28, 1] */
  inputShape: [number, number, number];
  /** @default 10 */
  classes: number;
  /** @default 'basic' */
  block: ResNetBlockKind;
  stem: ResNetStem;
  stages: ResNetStage[];
  /** Every channel count (stem and stages) × this, rounded (students may be wider than their teachers). @default 1 */
  widthMultiplier: number;
  /**
   * The student's model noise: dropout before the classifier and stochastic depth on the residual
   * blocks. false builds a plain model (no dropout layer, plain additions) for a teacher without noise.
   * @default true
   */
  noise: boolean;
  /** Dropout rate before the classifier (replayable masks, NoiseDropout); 0 = no dropout layer. @default 0.5 */
  dropout: number;
  /**
   * p_L, the survival probability of the last residual block; block l of L survives with
   * p_l = 1 − (l/L)(1 − p_L), counting blocks over all stages. 1 = no stochastic depth. @default 0.8
   */
  finalSurvivalProbability: number;
  /** Seed of the weight initialisers: two builds with one seed have identical weights. @default 1 */
  seed: number;
}

/** What `buildResNet` accepts: a full config, or stages plus any fields that differ from the defaults. */
export type ResNetOptions = Partial<Omit<ResNetConfig, 'stem' | 'stages'>> & {
  stem?: Partial<ResNetStem>;
  stages: ResNetStage[];
};

/** The model and the resolved config it was built from (store `config` with the weights to rebuild it). */
export interface ResNetModel {
  model: tfl.LayersModel;
  config: ResNetConfig;
}

/**
 * Noise-layer seeds (train/noise-seed.ts) must differ within a model: block l's stochastic depth
 * uses SURVIVAL_SEED_BASE + l and the dropout DROPOUT_SEED, as the reference model does.
 */
const SURVIVAL_SEED_BASE = 1000;
const DROPOUT_SEED = 2000;
const MAX_BLOCKS = DROPOUT_SEED - SURVIVAL_SEED_BASE - 1;
const MODEL_NAME = /^[A-Za-z0-9][-A-Za-z0-9._]*$/;

/** Fills in the defaults and checks every field; errors name the field and what it expects. */
export function resolveResNetConfig(options: ResNetOptions): ResNetConfig {
  const stages = options.stages;
  if (!Array.isArray(stages) || stages.length === 0) {
    throw new Error(`stages: expected at least one { filters, blocks, strides }, got ${JSON.stringify(stages)}`);
  }
  stages.forEach((stage, index) => {
    for (const field of ['filters', 'blocks', 'strides'] as const) {
      requirePositiveInteger(`stages[${index}].${field}`, (stage as Partial<ResNetStage> | null)?.[field]);
    }
  });
  const blockCount = stages.reduce((total, stage) => total + stage.blocks, 0);
  if (blockCount > MAX_BLOCKS) {
    throw new Error(`stages: expected at most ${MAX_BLOCKS} residual blocks in all, got ${blockCount}`);
  }
  const firstStage = stages[0];
  const config: ResNetConfig = {
    name: options.name ?? 'resnet',
    inputShape: options.inputShape ?? [28, 28, 1],
    classes: options.classes ?? 10,
    block: options.block ?? 'basic',
    stem: {
      filters: options.stem?.filters ?? firstStage?.filters ?? 0,
      kernelSize: options.stem?.kernelSize ?? 3,
      strides: options.stem?.strides ?? 1,
      maxPool: options.stem?.maxPool ?? false,
    },
    stages: stages.map(({ filters, blocks, strides }) => ({ filters, blocks, strides })),
    widthMultiplier: options.widthMultiplier ?? 1,
    noise: options.noise ?? true,
    dropout: options.dropout ?? 0.5,
    finalSurvivalProbability: options.finalSurvivalProbability ?? 0.8,
    seed: options.seed ?? 1,
  };
  if (typeof config.name !== 'string' || !MODEL_NAME.test(config.name)) {
    throw new Error(`name: expected letters, digits, '-', '.' or '_', got ${JSON.stringify(config.name)}`);
  }
  const shape: unknown = config.inputShape;
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((size) => Number.isInteger(size) && size > 0)) {
    throw new Error(
      `inputShape: expected [height, width, channels] of positive integers, got ${JSON.stringify(shape)}`,
    );
  }
  requirePositiveInteger('classes', config.classes);
  if (config.block !== 'basic' && config.block !== 'bottleneck') {
    throw new Error(`block: expected 'basic' or 'bottleneck', got ${JSON.stringify(config.block)}`);
  }
  requirePositiveInteger('stem.filters', config.stem.filters);
  requirePositiveInteger('stem.kernelSize', config.stem.kernelSize);
  requirePositiveInteger('stem.strides', config.stem.strides);
  if (typeof config.stem.maxPool !== 'boolean') {
    throw new Error(`stem.maxPool: expected true or false, got ${JSON.stringify(config.stem.maxPool)}`);
  }
  if (!(typeof config.widthMultiplier === 'number' && config.widthMultiplier > 0 && isFinite(config.widthMultiplier))) {
    throw new Error(`widthMultiplier: expected a positive number, got ${config.widthMultiplier}`);
  }
  if (typeof config.noise !== 'boolean') throw new Error(`noise: expected true or false, got ${config.noise}`);
  if (!(typeof config.dropout === 'number' && config.dropout >= 0 && config.dropout < 1)) {
    throw new Error(`dropout: expected a number in [0, 1), got ${config.dropout}`);
  }
  const finalSurvival = config.finalSurvivalProbability;
  if (!(typeof finalSurvival === 'number' && finalSurvival > 0 && finalSurvival <= 1)) {
    throw new Error(`finalSurvivalProbability: expected a number in (0, 1], got ${finalSurvival}`);
  }
  if (!(Number.isInteger(config.seed) && config.seed >= 0)) {
    throw new Error(`seed: expected a non-negative integer, got ${config.seed}`);
  }
  return config;
}

/**
 * Survival probability of every residual block, in order: p_l = 1 − (l/L)(1 − p_L) over all L
 * blocks of all stages, or 1 for every block when noise is off.
 */
export function resNetSurvivalProbabilities(config: ResNetConfig): number[] {
  const blocks = config.stages.reduce((total, stage) => total + stage.blocks, 0);
  return Array.from({ length: blocks }, (_, index) =>
    config.noise ? survivalProbabilityOf(index + 1, blocks, config.finalSurvivalProbability) : 1,
  );
}

/**
 * Builds a ResNet (He et al. 2016) for images `inputShape` → class probabilities:
 * stem (conv + BN + ReLU, optional max-pool) → stages of residual blocks → global average pool →
 * dropout → dense → softmax. Blocks are post-activation (v1): BN after every convolution, ReLU
 * after the sum; a bottleneck block strides in its 3×3 convolution (v1.5, as torchvision). The
 * shortcut is a 1×1 convolution + BN where the shape changes, the identity elsewhere.
 *
 * Layer names depend only on the architecture: `stem_conv`, `block<l>_conv1`, … (l counts
 * blocks over all stages, from 1), `block<l>_proj`, `block<l>_add` or `block<l>_drop_path`,
 * `pool`, `dropout`, `logits`, `probabilities`; the input is `image`. Initialisers draw seeds
 * config.seed, config.seed + 1, … in layer order, so one config gives the same weights.
 */
export function buildResNet(options: ResNetOptions): ResNetModel {
  const config = resolveResNetConfig(options);
  let nextInitializerSeed = config.seed;
  const channels = (filters: number): number => Math.max(1, Math.round(filters * config.widthMultiplier));
  const survival = resNetSurvivalProbabilities(config);

  const conv = (input: tfl.SymbolicTensor, filters: number, kernelSize: number, strides: number, name: string) =>
    tfl.layers
      .conv2d({
        filters,
        kernelSize,
        strides,
        padding: 'same',
        useBias: false,
        kernelInitializer: tfl.initializers.heNormal({ seed: nextInitializerSeed++ }),
        name,
      })
      .apply(input) as tfl.SymbolicTensor;
  const batchNorm = (input: tfl.SymbolicTensor, name: string) =>
    tfl.layers.batchNormalization({ momentum: 0.9, name }).apply(input) as tfl.SymbolicTensor;
  const relu = (input: tfl.SymbolicTensor, name: string) =>
    tfl.layers.reLU({ name }).apply(input) as tfl.SymbolicTensor;

  const residualBlock = (input: tfl.SymbolicTensor, filters: number, strides: number, index: number) => {
    const name = `block${index}`;
    let branch: tfl.SymbolicTensor;
    let outputChannels: number;
    if (config.block === 'basic') {
      outputChannels = filters;
      branch = relu(batchNorm(conv(input, filters, 3, strides, `${name}_conv1`), `${name}_bn1`), `${name}_relu1`);
      branch = batchNorm(conv(branch, filters, 3, 1, `${name}_conv2`), `${name}_bn2`);
    } else {
      outputChannels = filters * BOTTLENECK_EXPANSION;
      branch = relu(batchNorm(conv(input, filters, 1, 1, `${name}_conv1`), `${name}_bn1`), `${name}_relu1`);
      branch = relu(batchNorm(conv(branch, filters, 3, strides, `${name}_conv2`), `${name}_bn2`), `${name}_relu2`);
      branch = batchNorm(conv(branch, outputChannels, 1, 1, `${name}_conv3`), `${name}_bn3`);
    }
    let shortcut = input;
    if (strides !== 1 || input.shape[input.shape.length - 1] !== outputChannels) {
      shortcut = batchNorm(conv(input, outputChannels, 1, strides, `${name}_proj`), `${name}_proj_bn`);
    }
    const survivalProbability = survival[index - 1] ?? 1;
    const sum =
      survivalProbability < 1
        ? new StochasticDepth({ survivalProbability, seed: SURVIVAL_SEED_BASE + index, name: `${name}_drop_path` })
        : tfl.layers.add({ name: `${name}_add` });
    return relu(sum.apply([shortcut, branch]) as tfl.SymbolicTensor, `${name}_out`);
  };

  const image = tfl.input({ shape: config.inputShape, name: 'image' });
  const { stem } = config;
  let x = relu(
    batchNorm(conv(image, channels(stem.filters), stem.kernelSize, stem.strides, 'stem_conv'), 'stem_bn'),
    'stem_relu',
  );
  if (stem.maxPool) {
    x = tfl.layers
      .maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'stem_pool' })
      .apply(x) as tfl.SymbolicTensor;
  }
  let blockIndex = 0;
  for (const stage of config.stages) {
    for (let block = 0; block < stage.blocks; block++) {
      x = residualBlock(x, channels(stage.filters), block === 0 ? stage.strides : 1, ++blockIndex);
    }
  }
  x = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tfl.SymbolicTensor;
  if (config.noise && config.dropout > 0) {
    x = new NoiseDropout({ rate: config.dropout, seed: DROPOUT_SEED, name: 'dropout' }).apply(x) as tfl.SymbolicTensor;
  }
  const logits = tfl.layers
    .dense({
      units: config.classes,
      kernelInitializer: tfl.initializers.glorotUniform({ seed: nextInitializerSeed++ }),
      name: 'logits',
    })
    .apply(x) as tfl.SymbolicTensor;
  const probabilities = tfl.layers.softmax({ name: 'probabilities' }).apply(logits) as tfl.SymbolicTensor;
  return { model: tfl.model({ inputs: image, outputs: probabilities, name: config.name }), config };
}

function requirePositiveInteger(field: string, value: unknown): void {
  if (!(typeof value === 'number' && Number.isInteger(value) && value > 0)) {
    throw new Error(`${field}: expected a positive integer, got ${JSON.stringify(value)}`);
  }
}
