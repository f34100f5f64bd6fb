import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../backend/select-backend.js';
import { RESNET_PRESET_NAMES, resnetPreset } from './model-presets.js';
import { buildReferenceResNet } from './reference-resnet.js';
import { BOTTLENECK_EXPANSION, buildResNet, type ResNetConfig } from './resnet.js';
import { StochasticDepth } from './stochastic-depth.js';

function trainableParameters(model: tfl.LayersModel): number {
  return model.trainableWeights.reduce((total, weight) => total + tf.util.sizeFromShape(weight.shape as number[]), 0);
}

/**
 * Trainable parameters counted from the architecture alone: bias-free convolutions, γ and β of
 * every batch norm, a 1×1 projection + BN where a block changes the shape, the dense classifier.
 */
function architectureParameters(config: ResNetConfig): number {
  const width = (filters: number): number => Math.max(1, Math.round(filters * config.widthMultiplier));
  const convBn = (kernelSize: number, inputs: number, outputs: number): number =>
    kernelSize * kernelSize * inputs * outputs + 2 * outputs;
  let channels = width(config.stem.filters);
  let total = convBn(config.stem.kernelSize, config.inputShape[2], channels);
  for (const stage of config.stages) {
    for (let block = 0; block < stage.blocks; block++) {
      const filters = width(stage.filters);
      const outputs = config.block === 'basic' ? filters : BOTTLENECK_EXPANSION * filters;
      total +=
        config.block === 'basic'
          ? convBn(3, channels, filters) + convBn(3, filters, filters)
          : convBn(1, channels, filters) + convBn(3, filters, filters) + convBn(1, filters, outputs);
      if ((block === 0 && stage.strides !== 1) || channels !== outputs) total += convBn(1, channels, outputs);
      channels = outputs;
    }
  }
  return total + (channels + 1) * config.classes;
}

/** torchvision's ImageNet count with a 10-class head and a 3×3 stem instead of the 7×7 one. */
function cifarFromTorchvision(imagenetParameters: number, features: number): number {
  const head = (classes: number): number => (features + 1) * classes;
  const stem = (kernelSize: number): number => kernelSize * kernelSize * 3 * 64;
  return imagenetParameters - head(1000) + head(10) - stem(7) + stem(3);
}

beforeAll(async () => {
  await initBackend({ request: 'wasm', log: () => undefined });
});

describe('ResNet presets', () => {
  it('reference is the reference model: 151,274 trainable parameters, the same named weights', async () => {
    const { model, config } = buildResNet(resnetPreset('reference'));
    expect(layersWith(model, StochasticDepth)).toBe(0);
    expect(trainableParameters(model)).toBe(151_274);
    expect(architectureParameters(config)).toBe(151_274);
    const reference = buildReferenceResNet();
    const values = async (candidate: tfl.LayersModel) =>
      Promise.all(
        candidate.weights.map(async (weight) => [weight.originalName, Array.from(await weight.read().data())]),
      );
    expect(await values(model)).toEqual(await values(reference));
    model.dispose();
    reference.dispose();
  });

  it('small and small-wide share the reference layout, with stochastic depth to 0.8', () => {
    const small = buildResNet(resnetPreset('small'));
    expect(trainableParameters(small.model)).toBe(151_274);
    const survival = small.model.layers
      .filter((layer): layer is StochasticDepth => layer instanceof StochasticDepth)
      .map((layer) => layer.survivalProbability);
    expect(survival).toEqual([1, 2, 3].map((block) => 1 - (block / 3) * (1 - 0.8)));
    const wide = buildResNet(resnetPreset('small-wide'));
    expect(trainableParameters(wide.model)).toBe(architectureParameters(wide.config));
    expect(trainableParameters(wide.model)).toBe(601_546);
    expect(wide.model.getLayer('block3_out').outputShape).toEqual([null, 14, 14, 128]);
    small.model.dispose();
    wide.model.dispose();
  });

  it('resnet50-cifar is ResNet-50 with the CIFAR stem: 23,520,842 parameters, 16 blocks decaying to 0.8', () => {
    const { model, config } = buildResNet(resnetPreset('resnet50-cifar'));
    expect(config.stages.map((stage) => stage.blocks)).toEqual([3, 4, 6, 3]);
    expect(trainableParameters(model)).toBe(architectureParameters(config));
    expect(trainableParameters(model)).toBe(cifarFromTorchvision(25_557_032, 2048));
    expect(trainableParameters(model)).toBe(23_520_842);
    expect(model.getLayer('block16_out').outputShape).toEqual([null, 4, 4, 2048]);
    const survival = model.layers
      .filter((layer): layer is StochasticDepth => layer instanceof StochasticDepth)
      .map((layer) => layer.survivalProbability);
    expect(survival).toEqual(Array.from({ length: 16 }, (_, index) => 1 - ((index + 1) / 16) * (1 - 0.8)));
    model.dispose();
  });

  it('resnet18-cifar has the CIFAR ResNet-18 count: 11,173,962 parameters', () => {
    const { model, config } = buildResNet(resnetPreset('resnet18-cifar'));
    expect(trainableParameters(model)).toBe(architectureParameters(config));
    expect(trainableParameters(model)).toBe(cifarFromTorchvision(11_689_512, 512));
    model.dispose();
  });

  it('applies overrides (stem field by field) and refuses unknown names', () => {
    const config = resnetPreset('resnet50-cifar', { classes: 100, noise: false, stem: { maxPool: true }, seed: 3 });
    expect(config).toMatchObject({ name: 'resnet50-cifar', classes: 100, noise: false, seed: 3 });
    expect(config.stem).toEqual({ filters: 64, kernelSize: 3, strides: 1, maxPool: true });
    expect(resnetPreset('small', { finalSurvivalProbability: 1 }).finalSurvivalProbability).toBe(1);
    expect(RESNET_PRESET_NAMES).toEqual(['reference', 'small', 'small-wide', 'resnet18-cifar', 'resnet50-cifar']);
    expect(() => resnetPreset('resnet99')).toThrow(
      'preset: expected one of reference|small|small-wide|resnet18-cifar|resnet50-cifar, got "resnet99"',
    );
  });
});

function layersWith(model: tfl.LayersModel, kind: typeof StochasticDepth): number {
  return model.layers.filter((layer) => layer instanceof kind).length;
}
