import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../backend/select-backend.js';
import { NoiseDropout } from '../models/noise-dropout.js';
import { createRandom } from '../random.js';
import { BatchSampler, type TrainingSet } from './batches.js';
import { learningRateAt } from './schedule.js';
import { trainModel, type TrainOptions } from './train-model.js';

let dir = '';
beforeAll(async () => {
  await initBackend({ request: 'wasm', log: () => undefined });
  dir = await mkdtemp(join(tmpdir(), 'ns-train-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** 10×10 grayscale images whose class (0–3) is the brightest quadrant; one-hot targets. */
function quadrantSet(count: number, seed: number, soft = false): TrainingSet {
  const random = createRandom(seed);
  const images = new Uint8Array(count * 100);
  const targets = new Float32Array(count * 4);
  for (let i = 0; i < count; i++) {
    const label = i % 4;
    for (let p = 0; p < 100; p++) {
      const quadrant = (Math.floor(p / 10) < 5 ? 0 : 2) + (p % 10 < 5 ? 0 : 1);
      images[i * 100 + p] = Math.round(random() * 100 + (quadrant === label ? 120 : 0));
    }
    if (soft) {
      for (let c = 0; c < 4; c++) targets[i * 4 + c] = c === label ? 0.7 : 0.1;
    } else {
      targets[i * 4 + label] = 1;
    }
  }
  return { images, count, height: 10, width: 10, channels: 1, targets, classes: 4 };
}

function tinyModel(): tfl.LayersModel {
  const input = tfl.input({ shape: [10, 10, 1] });
  let x = tfl.layers
    .conv2d({
      filters: 4,
      kernelSize: 3,
      padding: 'same',
      kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }),
    })
    .apply(input);
  x = tfl.layers.batchNormalization().apply(x);
  x = tfl.layers.reLU().apply(x);
  x = tfl.layers.averagePooling2d({ poolSize: 5 }).apply(x);
  x = tfl.layers.flatten().apply(x);
  x = new NoiseDropout({ rate: 0.3, seed: 9 }).apply(x);
  const output = tfl.layers
    .dense({ units: 4, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) })
    .apply(x);
  return tfl.model({ inputs: input, outputs: output as tfl.SymbolicTensor });
}

describe('learning-rate schedules', () => {
  it('warms up linearly, then decays by a cosine to the final fraction', () => {
    const schedule = { kind: 'cosine', learningRate: 1, warmupSteps: 4, finalFraction: 0.1 } as const;
    expect([0, 1, 3].map((step) => learningRateAt(schedule, step, 14))).toEqual([0.25, 0.5, 1]);
    expect(learningRateAt(schedule, 4, 14)).toBeCloseTo(1, 12);
    expect(learningRateAt(schedule, 9, 14)).toBeCloseTo(0.1 + 0.9 * 0.5 * (1 + Math.cos((Math.PI * 5) / 9)), 12);
    expect(learningRateAt(schedule, 13, 14)).toBeCloseTo(0.1, 12);
    expect(learningRateAt({ kind: 'constant', learningRate: 0.3 }, 99, 100)).toBe(0.3);
    expect(() => learningRateAt({ kind: 'constant', learningRate: 0 }, 0, 1)).toThrow(
      'learningRate: expected a positive number, got 0',
    );
  });
});

describe('batch sampling', () => {
  it('visits every example as often as its copy count each epoch, the same way for the same seed', () => {
    const set = { ...quadrantSet(5, 1), copies: [1, 0, 3, 1, 2] };
    const sampler = new BatchSampler(set, 7, 42);
    expect(sampler.epochSize).toBe(7);
    const epoch = Array.from(sampler.indices(0)).sort();
    expect(epoch).toEqual([0, 2, 2, 2, 3, 4, 4]);
    expect(Array.from(new BatchSampler(set, 7, 42).indices(3))).toEqual(Array.from(sampler.indices(3)));
    expect(Array.from(new BatchSampler(set, 7, 43).indices(3))).not.toEqual(Array.from(sampler.indices(3)));
  });
});

describe('trainModel', () => {
  it('learns from hard labels plus soft pseudo-labels, with RandAugment and label smoothing', async () => {
    const model = tinyModel();
    const progress: number[] = [];
    const result = await trainModel(model, quadrantSet(64, 1), quadrantSet(96, 2, true), {
      steps: 60,
      labeledBatchSize: 8,
      pseudoBatchSize: 8,
      schedule: { kind: 'cosine', learningRate: 0.02, warmupSteps: 5 },
      labelSmoothing: 0.1,
      randAugment: { numOps: 1, magnitude: 2 },
      seed: 3,
      progressEverySeconds: 0,
      onProgress: (p) => progress.push(p.loss),
    });
    expect(result).toMatchObject({ steps: 60, stopped: false, resumedFrom: 0 });
    expect(progress).toHaveLength(60);
    const early = (progress[0] ?? 0) + (progress[1] ?? 0);
    const late = (progress[58] ?? 0) + (progress[59] ?? 0);
    expect(late).toBeLessThan(early * 0.8);
    model.dispose();
  });

  it('resumes from its checkpoint to exactly the weights of a run that never stopped', async () => {
    const labeled = quadrantSet(24, 5);
    const pseudo = quadrantSet(40, 6, true);
    const options = (path: string): TrainOptions => ({
      steps: 8,
      labeledBatchSize: 4,
      pseudoBatchSize: 4,
      schedule: { kind: 'cosine', learningRate: 0.01, warmupSteps: 2 },
      randAugment: { numOps: 2, magnitude: 9 },
      seed: 11,
      checkpoint: { path, everySteps: 100 },
    });
    const uninterrupted = tinyModel();
    await trainModel(uninterrupted, labeled, pseudo, options(join(dir, 'a.ckpt')));

    const controller = new AbortController();
    const first = tinyModel();
    const stopped = await trainModel(first, labeled, pseudo, {
      ...options(join(dir, 'b.ckpt')),
      signal: controller.signal,
      progressEverySeconds: 0,
      onProgress: (p) => {
        if (p.step === 3) controller.abort();
      },
    });
    expect(stopped).toMatchObject({ steps: 3, stopped: true });
    first.dispose();
    const resumed = tinyModel();
    const result = await trainModel(resumed, labeled, pseudo, options(join(dir, 'b.ckpt')));
    expect(result).toMatchObject({ resumedFrom: 3, steps: 8, stopped: false });

    const expected = uninterrupted.getWeights().map((weight) => Array.from(weight.dataSync()));
    const actual = resumed.getWeights().map((weight) => Array.from(weight.dataSync()));
    expect(actual).toEqual(expected);
    uninterrupted.dispose();
    resumed.dispose();
  });

  it('refuses a checkpoint of another run and bad training sets, naming the field', async () => {
    const model = tinyModel();
    const set = quadrantSet(8, 1);
    const base: TrainOptions = {
      steps: 2,
      labeledBatchSize: 4,
      schedule: { kind: 'constant', learningRate: 0.01 },
      seed: 1,
      checkpoint: { path: join(dir, 'c.ckpt'), everySteps: 1 },
    };
    await trainModel(model, set, undefined, base);
    await expect(trainModel(model, set, undefined, { ...base, seed: 2 })).rejects.toThrow('checkpoint of another run');
    // Asked to, a run starts over on another run's checkpoint, and then overwrites it with its own.
    const checkpoint = { path: join(dir, 'c.ckpt'), everySteps: 1, onOtherRun: 'start-over' as const };
    const startedOver = await trainModel(model, set, undefined, { ...base, seed: 2, checkpoint });
    expect(startedOver.resumedFrom).toBe(0);
    expect(startedOver.steps).toBe(2);
    expect((await trainModel(model, set, undefined, { ...base, seed: 2, checkpoint })).resumedFrom).toBe(2);
    await expect(
      trainModel(model, { ...set, images: set.images.subarray(1) }, undefined, { ...base, checkpoint: undefined }),
    ).rejects.toThrow('labeled.images: expected 8×10×10×1 = 800 bytes, got 799');
    await expect(
      trainModel(
        model,
        set,
        { ...set, classes: 3, targets: new Float32Array(24) },
        { ...base, checkpoint: undefined, pseudoBatchSize: 2 },
      ),
    ).rejects.toThrow('pseudoLabeled.classes: expected 4 like the labeled set, got 3');
    model.dispose();
  });

  it('leaves no tensors behind', async () => {
    const model = tinyModel();
    const before = tf.memory().numTensors;
    await trainModel(model, quadrantSet(16, 1), quadrantSet(16, 2, true), {
      steps: 3,
      labeledBatchSize: 4,
      pseudoBatchSize: 4,
      schedule: { kind: 'constant', learningRate: 0.01 },
      randAugment: { numOps: 2, magnitude: 5 },
      seed: 1,
    });
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
