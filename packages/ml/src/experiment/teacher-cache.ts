import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type * as tfl from '@tensorflow/tfjs-layers';

import { decodeModelArtifact, encodeModelArtifact } from '../artifact/model-artifact.js';
import type { ImageDataDescription } from '../preprocess/training-input.js';
import type { ExperimentConfig } from './presets.js';

export interface ChosenTeacher {
  model: tfl.LayersModel;
  /** Top-1 on the test images, 0–1. */
  accuracy: number;
  recipe: 'supervised' | 'supervised_noised';
}

/**
 * The experiment's teacher from `directory` when one was trained there with the same data,
 * split, seed and teacher recipes; otherwise `train()`s it and keeps it for the next run.
 * Without a directory it just trains.
 */
export async function cachedTeacher(
  directory: string | undefined,
  config: ExperimentConfig,
  data: { name: string; train: ImageDataDescription },
  log: (line: string) => void,
  train: () => Promise<ChosenTeacher>,
): Promise<ChosenTeacher> {
  if (directory === undefined) return train();
  const key = createHash('sha256')
    .update(
      JSON.stringify([
        data.name,
        config.seed,
        config.labeledPerClass,
        config.teacherSteps,
        config.labeledBatchSize,
        config.learningRate,
        config.warmupSteps,
        config.labelSmoothing,
        config.lightAugment,
        config.noise,
        config.testImages,
      ]),
    )
    .digest('hex')
    .slice(0, 16);
  const modelPath = join(directory, `teacher-${key}.nsmodel`);
  const infoPath = join(directory, `teacher-${key}.json`);
  try {
    const info = JSON.parse(await readFile(infoPath, 'utf8')) as Omit<ChosenTeacher, 'model'>;
    const { model } = await decodeModelArtifact(new Uint8Array(await readFile(modelPath)));
    log(`teacher from ${modelPath}: ${info.recipe}, ${(info.accuracy * 100).toFixed(2)}%`);
    return { model, ...info };
  } catch {
    // Not there yet (or unreadable): train and keep it.
  }
  const chosen = await train();
  await mkdir(directory, { recursive: true });
  const { bytes } = await encodeModelArtifact(
    chosen.model,
    { version: `teacher-${key}`, architecture: 'reference-resnet' },
    data.train,
  );
  await writeFile(`${modelPath}.tmp`, bytes);
  await rename(`${modelPath}.tmp`, modelPath);
  await writeFile(infoPath, JSON.stringify({ accuracy: chosen.accuracy, recipe: chosen.recipe }));
  log(`teacher kept in ${modelPath}`);
  return chosen;
}
