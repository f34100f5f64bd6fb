import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { decodeModelArtifact } from '../artifact/model-artifact.js';
import type { ImageDataDescription } from '../preprocess/training-input.js';
import type { HeldOutAccuracy } from './decisions.js';
import type { ChosenTeacher } from './self-training.js';
import type { ExperimentConfig } from './presets.js';
import { saveArtifact } from './save-artifact.js';

export type { ChosenTeacher };

type TeacherInfo = Omit<ChosenTeacher, 'model' | 'evaluations'>;

/**
 * The experiment's teacher from `directory` when one was trained there with the same data,
 * split (eval, labeled and test sizes), seed and teacher recipes; otherwise `train()`s it and
 * keeps it for the next run. Without a directory it just trains.
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
        // The eval split is drawn before the labeled one: its size changes the teacher's labels.
        config.evalImages,
      ]),
    )
    .digest('hex')
    .slice(0, 16);
  const modelPath = join(directory, `teacher-${key}.nsmodel`);
  const infoPath = join(directory, `teacher-${key}.json`);
  try {
    const info = parseTeacherInfo(JSON.parse(await readFile(infoPath, 'utf8')));
    if (info !== undefined) {
      const { model } = await decodeModelArtifact(new Uint8Array(await readFile(modelPath)));
      const { eval: onEval, test: onTest } = info.candidates[info.recipe];
      log(
        `teacher from ${modelPath}: ${info.recipe}, ${(onEval * 100).toFixed(2)}% on eval, ${(onTest * 100).toFixed(2)}% on test`,
      );
      return { model, ...info };
    }
  } catch {
    // Not there yet (or unreadable): train and keep it.
  }
  const chosen = await train();
  await mkdir(directory, { recursive: true });
  await saveArtifact(chosen.model, { path: modelPath, version: `teacher-${key}` }, data, {
    widthMultiplier: 1,
    evalImages: config.evalImages,
    evalAccuracy: chosen.candidates[chosen.recipe].eval,
  });
  const info: TeacherInfo = { recipe: chosen.recipe, candidates: chosen.candidates };
  await writeFile(infoPath, JSON.stringify(info));
  log(`teacher kept in ${modelPath}`);
  return chosen;
}

/** The kept description of a teacher, or undefined when the file does not have its shape. */
function parseTeacherInfo(value: unknown): TeacherInfo | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { recipe, candidates } = value as Record<string, unknown>;
  if (recipe !== 'supervised' && recipe !== 'supervised_noised') return undefined;
  if (typeof candidates !== 'object' || candidates === null) return undefined;
  const accuracyOf = (entry: unknown): HeldOutAccuracy | undefined => {
    if (typeof entry !== 'object' || entry === null) return undefined;
    const { eval: onEval, test: onTest } = entry as Record<string, unknown>;
    return typeof onEval === 'number' && typeof onTest === 'number' ? { eval: onEval, test: onTest } : undefined;
  };
  const supervised = accuracyOf((candidates as Record<string, unknown>)['supervised']);
  const noised = accuracyOf((candidates as Record<string, unknown>)['supervised_noised']);
  if (supervised === undefined || noised === undefined) return undefined;
  return { recipe, candidates: { supervised, supervised_noised: noised } };
}
