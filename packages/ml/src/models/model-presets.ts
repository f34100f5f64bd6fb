import { resolveResNetConfig, type ResNetConfig, type ResNetOptions, type ResNetStage } from './resnet.js';

/** The named ResNets. Students may be as large as or larger than their teachers (e.g. small → small-wide). */
export const RESNET_PRESET_NAMES = ['reference', 'small', 'small-wide', 'resnet18-cifar', 'resnet50-cifar'] as const;

export type ResNetPresetName = (typeof RESNET_PRESET_NAMES)[number];

/** Fields a caller may change on a preset (e.g. `{ classes: 100, noise: false, seed: 7 }`). */
export type ResNetPresetOverrides = Partial<ResNetOptions>;

/** The reference model's layout (docs/architecture.md §3): blocks of 32, 64 (stride 2, projection), 64. */
const REFERENCE_STAGES: ResNetStage[] = [
  { filters: 32, blocks: 1, strides: 1 },
  { filters: 64, blocks: 2, strides: 2 },
];

/** CIFAR ResNets (He et al. 2016 widths) with the reproduction's reduced strides: 3×3 stride-1 stem, no max-pool. */
const CIFAR_STEM = { filters: 64, kernelSize: 3, strides: 1, maxPool: false };
const cifarStages = (blocks: [number, number, number, number]): ResNetStage[] =>
  [64, 128, 256, 512].map((filters, index) => ({
    filters,
    blocks: blocks[index] ?? 0,
    strides: index === 0 ? 1 : 2,
  }));

const PRESETS: Record<ResNetPresetName, ResNetOptions> = {
  // The benchmark model: 151,274 trainable parameters, dropout 0.5, no stochastic depth.
  reference: { name: 'reference', inputShape: [28, 28, 1], stages: REFERENCE_STAGES, finalSurvivalProbability: 1 },
  // The reference layout with the student's noise (dropout 0.5, stochastic depth to 0.8).
  small: { name: 'small', inputShape: [28, 28, 1], stages: REFERENCE_STAGES },
  // Twice the channels: a larger student for a `small` teacher.
  'small-wide': { name: 'small-wide', inputShape: [28, 28, 1], stages: REFERENCE_STAGES, widthMultiplier: 2 },
  'resnet18-cifar': {
    name: 'resnet18-cifar',
    inputShape: [32, 32, 3],
    block: 'basic',
    stem: CIFAR_STEM,
    stages: cifarStages([2, 2, 2, 2]),
  },
  // The Keras reproduction's model: ResNet-50 (bottleneck 3, 4, 6, 3) for 32×32×3 images.
  'resnet50-cifar': {
    name: 'resnet50-cifar',
    inputShape: [32, 32, 3],
    block: 'bottleneck',
    stem: CIFAR_STEM,
    stages: cifarStages([3, 4, 6, 3]),
  },
};

/**
 * The resolved config of a named ResNet with `overrides` applied (`stem` merges field by field;
 * `stages` replaces the list). Build it with `buildResNet(resnetPreset(name))`.
 */
export function resnetPreset(name: string, overrides: ResNetPresetOverrides = {}): ResNetConfig {
  if (!isResNetPresetName(name)) {
    throw new Error(`preset: expected one of ${RESNET_PRESET_NAMES.join('|')}, got ${JSON.stringify(name)}`);
  }
  const preset = PRESETS[name];
  return resolveResNetConfig({
    ...preset,
    ...overrides,
    stem: { ...preset.stem, ...overrides.stem },
    stages: overrides.stages ?? preset.stages,
  });
}

export function isResNetPresetName(name: string): name is ResNetPresetName {
  return (RESNET_PRESET_NAMES as readonly string[]).includes(name);
}
