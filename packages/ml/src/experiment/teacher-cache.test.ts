import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs-core';
import { ModelArtifact } from '@noisystudent/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../backend/select-backend.js';
import { buildReferenceResNet } from '../models/reference-resnet.js';
import { PRESETS } from './presets.js';
import { cachedTeacher, type ChosenTeacher } from './teacher-cache.js';

let directory: string;

beforeAll(async () => {
  await initBackend({ request: 'cpu', log: () => undefined });
  directory = await mkdtemp(join(tmpdir(), 'ns-teacher-cache-'));
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe('cachedTeacher', () => {
  it('trains once per teacher configuration and gives back the same model after', async () => {
    let trained = 0;
    const train = async (): Promise<ChosenTeacher> => {
      trained++;
      return {
        model: buildReferenceResNet({ seed: trained, inputShape: [8, 8, 1] }),
        recipe: 'supervised',
        candidates: {
          supervised: { eval: 0.5 + trained / 100, test: trained / 4 },
          supervised_noised: { eval: 0.3, test: 0.2 },
        },
      };
    };
    const data = {
      name: 'fashion-mnist',
      train: { height: 8, width: 8, channels: 1, classNames: Array.from({ length: 10 }, (_, index) => `c${index}`) },
    };
    const config = PRESETS['smoke'];
    if (config === undefined) throw new Error('no smoke preset');
    const first = await cachedTeacher(directory, config, data, () => undefined, train);
    const again = await cachedTeacher(
      directory,
      { ...config, studentSteps: 999, threshold: 0.9 },
      data,
      () => undefined,
      train,
    );
    expect(trained).toBe(1);
    // What the cache keeps serves like any artifact: it says how to feed the model and names its classes.
    const [kept] = (await readdir(directory)).filter((name) => name.endsWith('.nsmodel'));
    const { metadata } = ModelArtifact.decode(await readFile(join(directory, kept ?? '')));
    expect(metadata?.classNames).toEqual(data.train.classNames);
    expect(metadata?.preprocessing?.normalization).toEqual({ $case: 'rescale', value: { scale: 1 / 255, offset: 0 } });
    expect(again).toMatchObject({
      recipe: 'supervised',
      candidates: { supervised: { eval: 0.51, test: 0.25 }, supervised_noised: { eval: 0.3, test: 0.2 } },
    });
    const probe = tf.ones([1, 8, 8, 1]);
    const [a, b] = [first.model, again.model].map((model) => (model.predict(probe) as tf.Tensor).dataSync());
    expect(Array.from(b ?? [])).toEqual(Array.from(a ?? []));
    const other = await cachedTeacher(directory, { ...config, teacherSteps: 21 }, data, () => undefined, train);
    expect(trained).toBe(2);
    expect(other.candidates.supervised.eval).toBe(0.52);
    // The eval split is drawn before the labeled images: another eval size is another teacher.
    const otherEval = await cachedTeacher(
      directory,
      { ...config, evalImages: config.evalImages + 1 },
      data,
      () => undefined,
      train,
    );
    expect(trained).toBe(3);
    for (const model of [first.model, again.model, other.model, otherEval.model]) model.dispose();
    probe.dispose();
  });
});
