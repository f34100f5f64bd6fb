import type * as tfl from '@tensorflow/tfjs-layers';

import type { LabeledImages } from '../data/fashion-mnist.js';
import { splitLabeledUnlabeled } from '../data/splits.js';
import { predictProbabilities } from '../evaluate/evaluate-model.js';
import { evaluatePredictions, type Evaluation } from '../evaluate/metrics.js';
import { withFoldedModel } from '../models/fold-batch-norm.js';
import { buildReferenceResNet } from '../models/reference-resnet.js';
import { selectPseudoLabels } from '../pseudo-label/policy.js';
import { createRandom, shuffledIndices } from '../random.js';
import type { TrainingSet } from '../train/batches.js';
import { trainModel } from '../train/train-model.js';
import type { ExperimentConfig, NoiseSettings } from './presets.js';
import { cachedTeacher } from './teacher-cache.js';

export type Recipe = 'supervised' | 'supervised_noised';

export interface RoundResult {
  student: { accuracy: number; steps: number; ece: number };
  teacherAccuracy: number;
  /** Pseudo-labeled examples kept (before duplication) and their share of the unlabeled set. */
  accepted: number;
  acceptedFraction: number;
  /** Top-1 agreement of kept pseudo-labels with the hidden true labels, percent. */
  pseudo_label_accuracy: number;
  promoted: boolean;
  baselines: { supervised: number; supervised_noised: number };
}

export interface ExperimentResult {
  dataset: string;
  labels: number;
  unlabeled: number;
  preset: string;
  teacher: { accuracy: number; steps: number; recipe: Recipe };
  rounds: RoundResult[];
  wall_s: number;
}

export interface ExperimentData {
  name: string;
  train: LabeledImages;
  test: LabeledImages;
}

const percent = (value: number): number => Math.round(value * 10_000) / 100;

export interface ExperimentRunOptions {
  /**
   * Folder where the teacher is kept and found again: runs that differ only after the teacher
   * (student noise, labels, threshold, unlabeled size, width, steps) then share one teacher.
   */
  teacherCache?: string;
}

/**
 * The whole Noisy Student loop offline, in one process: teacher (the better of two supervised
 * recipes) → pseudo-label the unlabeled split (threshold + balancing) → noised student on
 * labeled + pseudo-labeled data → promote if better → repeat. Every student is compared with
 * both supervised recipes trained for the same number of steps on the same labels.
 */
export async function runNoisyStudentExperiment(
  config: ExperimentConfig,
  data: ExperimentData,
  log: (line: string) => void,
  options: ExperimentRunOptions = {},
): Promise<ExperimentResult> {
  const started = performance.now();
  const classes = data.train.classNames.length;
  const channels = data.train.channels;
  const pixels = data.train.height * data.train.width * channels;
  const split = splitLabeledUnlabeled(data.train.labels, classes, config.labeledPerClass, config.seed);
  const unlabeledOrder = shuffledIndices(split.unlabeled.length, createRandom(config.seed + 17));
  const unlabeled = Array.from(
    unlabeledOrder.subarray(0, Math.min(config.unlabeled, split.unlabeled.length)),
    (i) => split.unlabeled[i] ?? 0,
  );
  const testOrder = shuffledIndices(data.test.count, createRandom(config.seed + 29));
  const testIndices = Array.from(testOrder.subarray(0, Math.min(config.testImages, data.test.count)));
  const testLabels = testIndices.map((index) => data.test.labels[index] ?? 0);
  log(
    `${data.name}: ${split.labeled.length} labeled (${config.labeledPerClass} per class), ${unlabeled.length} unlabeled, ${testIndices.length} test images; preset ${config.preset}`,
  );

  const gather = (indices: number[], targets: Float32Array): TrainingSet => {
    const images = new Uint8Array(indices.length * pixels);
    indices.forEach((index, row) =>
      images.set(data.train.images.subarray(index * pixels, (index + 1) * pixels), row * pixels),
    );
    return {
      images,
      count: indices.length,
      height: data.train.height,
      width: data.train.width,
      channels,
      targets,
      classes,
    };
  };
  const oneHot = new Float32Array(split.labeled.length * classes);
  split.labeled.forEach((index, row) => {
    oneHot[row * classes + (data.train.labels[index] ?? 0)] = 1;
  });
  const labeledSet = gather(split.labeled, oneHot);

  const evaluate = async (model: tfl.LayersModel): Promise<Evaluation> =>
    evaluatePredictions(
      await withFoldedModel(model, (inference) => predictProbabilities(inference, data.test, testIndices)),
      testLabels,
      classes,
    );

  const studentNoise = config.studentNoise ?? config.noise;
  /** The teacher recipes use `noise`; the student and its noised baseline the student's (with equal budgets the teacher run is the baseline). */
  const noiseOf = (recipe: Recipe | 'student', steps: number): NoiseSettings =>
    recipe === 'student' || steps !== config.teacherSteps ? studentNoise : config.noise;
  const build = (recipe: Recipe | 'student', width: number, seed: number, noise: NoiseSettings): tfl.LayersModel => {
    const noised = recipe !== 'supervised';
    return buildReferenceResNet({
      inputShape: [data.train.height, data.train.width, channels],
      classes,
      seed,
      widthMultiplier: width,
      dropout: noised ? noise.dropout : 0,
      finalSurvivalProbability: noised ? noise.finalSurvivalProbability : 1,
    });
  };

  const train = async (
    label: string,
    model: tfl.LayersModel,
    recipe: Recipe | 'student',
    steps: number,
    pseudo?: TrainingSet,
  ) => {
    const noise = noiseOf(recipe, steps);
    const augment =
      recipe === 'supervised' ? config.lightAugment : { numOps: noise.numOps, magnitude: noise.magnitude };
    await trainModel(model, labeledSet, pseudo, {
      steps,
      labeledBatchSize: config.labeledBatchSize,
      pseudoBatchSize: pseudo === undefined ? 0 : config.pseudoBatchSize,
      schedule: { kind: 'cosine', learningRate: config.learningRate, warmupSteps: config.warmupSteps },
      labelSmoothing: config.labelSmoothing,
      randAugment: augment.magnitude > 0 || augment.numOps > 0 ? augment : undefined,
      seed: config.seed,
      onProgress: (p) =>
        log(
          `  ${label}: step ${p.step}/${p.steps} loss ${p.loss.toFixed(3)} lr ${p.learningRate.toExponential(2)} ${p.imagesPerSecond.toFixed(0)} img/s`,
        ),
    });
  };

  // Supervised recipes, cached by step budget: the teacher's and every student's comparison.
  const supervised = new Map<string, number>();
  const trainSupervised = async (
    recipe: Recipe,
    steps: number,
  ): Promise<{ accuracy: number; model: tfl.LayersModel }> => {
    const model = build(recipe, 1, config.seed, noiseOf(recipe, steps));
    await train(`${recipe} ${steps} steps`, model, recipe, steps);
    const { accuracy } = await evaluate(model);
    supervised.set(`${recipe}:${steps}`, accuracy);
    log(`${recipe} (${steps} steps): ${percent(accuracy)}% on the test images`);
    return { accuracy, model };
  };
  const supervisedAccuracy = async (recipe: Recipe, steps: number): Promise<number> => {
    const known = supervised.get(`${recipe}:${steps}`);
    if (known !== undefined) return known;
    const { accuracy, model } = await trainSupervised(recipe, steps);
    model.dispose();
    return accuracy;
  };

  // The teacher is the better of the two recipes at its own budget: an honest teacher.
  const chosen = await cachedTeacher(options.teacherCache, config, data, log, async () => {
    const plain = await trainSupervised('supervised', config.teacherSteps);
    const noised = await trainSupervised('supervised_noised', config.teacherSteps);
    const plainWins = plain.accuracy >= noised.accuracy;
    (plainWins ? noised.model : plain.model).dispose();
    return plainWins
      ? { model: plain.model, accuracy: plain.accuracy, recipe: 'supervised' as const }
      : { model: noised.model, accuracy: noised.accuracy, recipe: 'supervised_noised' as const };
  });
  let teacher = chosen.model;
  let teacherAccuracy = chosen.accuracy;
  let teacherWidth = 1;
  const teacherRecipe: Recipe = chosen.recipe;
  log(`teacher: ${teacherRecipe}, ${percent(teacherAccuracy)}%`);

  const unlabeledLabels = unlabeled.map((index) => data.train.labels[index] ?? 0);
  const rounds: RoundResult[] = [];
  for (let round = 1; round <= config.rounds; round++) {
    const probabilities = await withFoldedModel(teacher, (inference) =>
      predictProbabilities(inference, data.train, unlabeled),
    );
    const selection = selectPseudoLabels(probabilities, classes, {
      threshold: config.threshold,
      mode: config.labelMode,
      temperature: config.temperature,
      ...(config.balance ? { targetPerClass: 'mean' as const } : {}),
      seed: config.seed + round,
    });
    const correct = selection.kept.filter((row, k) => selection.labels[k] === unlabeledLabels[row]).length;
    const pseudoAccuracy = selection.kept.length === 0 ? 0 : correct / selection.kept.length;
    log(
      `round ${round}: kept ${selection.kept.length}/${unlabeled.length} pseudo-labels (${percent(pseudoAccuracy)}% correct), per class after balancing ${selection.balancedPerClass.join(' ')}`,
    );
    if (selection.kept.length === 0)
      throw new Error(`round ${round}: no pseudo-label reached threshold ${config.threshold}`);
    const pseudoSet = {
      ...gather(
        selection.kept.map((row) => unlabeled[row] ?? 0),
        selection.targets,
      ),
      copies: selection.copies,
    };
    const width = Math.max(config.studentWidth, teacherWidth);
    const student = build('student', width, config.seed + round, studentNoise);
    await train(`round ${round} student`, student, 'student', config.studentSteps, pseudoSet);
    const studentEvaluation = await evaluate(student);
    const baselines = {
      supervised: await supervisedAccuracy('supervised', config.studentSteps),
      supervised_noised: await supervisedAccuracy('supervised_noised', config.studentSteps),
    };
    const promoted = studentEvaluation.accuracy > teacherAccuracy;
    log(
      `round ${round}: student ${percent(studentEvaluation.accuracy)}% vs teacher ${percent(teacherAccuracy)}%, baselines ${percent(baselines.supervised)}% / ${percent(baselines.supervised_noised)}% (noised) → ${promoted ? 'promoted' : 'kept the teacher'}`,
    );
    rounds.push({
      student: {
        accuracy: percent(studentEvaluation.accuracy),
        steps: config.studentSteps,
        ece: Math.round(studentEvaluation.expectedCalibrationError * 10_000) / 10_000,
      },
      teacherAccuracy: percent(teacherAccuracy),
      accepted: selection.kept.length,
      acceptedFraction: Math.round((selection.kept.length / unlabeled.length) * 10_000) / 10_000,
      pseudo_label_accuracy: percent(pseudoAccuracy),
      promoted,
      baselines: { supervised: percent(baselines.supervised), supervised_noised: percent(baselines.supervised_noised) },
    });
    if (promoted) {
      teacher.dispose();
      teacher = student;
      teacherAccuracy = studentEvaluation.accuracy;
      teacherWidth = width;
    } else {
      student.dispose();
    }
  }
  teacher.dispose();
  return {
    dataset: data.name,
    labels: split.labeled.length,
    unlabeled: unlabeled.length,
    preset: config.preset,
    teacher: {
      accuracy: percent(chosen.accuracy),
      steps: config.teacherSteps,
      recipe: teacherRecipe,
    },
    rounds,
    wall_s: Math.round((performance.now() - started) / 100) / 10,
  };
}
