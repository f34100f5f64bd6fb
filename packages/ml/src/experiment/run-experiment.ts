import type * as tfl from '@tensorflow/tfjs-layers';

import type { LabeledImages } from '../data/fashion-mnist.js';
import { splitDataset } from '../data/splits.js';
import { predictProbabilities } from '../evaluate/evaluate-model.js';
import { evaluatePredictions, type Evaluation } from '../evaluate/metrics.js';
import { withFoldedModel } from '../models/fold-batch-norm.js';
import { buildReferenceResNet } from '../models/reference-resnet.js';
import { selectPseudoLabels } from '../pseudo-label/policy.js';
import { createRandom, shuffledIndices } from '../random.js';
import type { TrainingSet } from '../train/batches.js';
import { trainModel } from '../train/train-model.js';
import { chooseTeacherRecipe, promotesStudent, type HeldOutAccuracy, type Recipe } from './decisions.js';
import type { ExperimentConfig, NoiseSettings } from './presets.js';
import { cachedTeacher } from './teacher-cache.js';
import { saveArtifact } from './save-artifact.js';

export type { Recipe } from './decisions.js';

/** Percentages: `accuracy` on the test images (reported), `eval_accuracy` on the eval split (decides). */
export interface ReportedAccuracy {
  accuracy: number;
  eval_accuracy: number;
}

export interface RoundResult {
  student: ReportedAccuracy & { steps: number; ece: number };
  /** The round's teacher on test and on eval, percent. */
  teacherAccuracy: number;
  teacher_eval_accuracy: number;
  /** Pseudo-labeled examples kept (before duplication) and their share of the unlabeled set. */
  accepted: number;
  acceptedFraction: number;
  /** Top-1 agreement of kept pseudo-labels with the hidden true labels, percent. */
  pseudo_label_accuracy: number;
  /** The student is better than its teacher on eval (see `promotesStudent`). */
  promoted: boolean;
  /** Supervised recipes at the student's budget, on test, percent. */
  baselines: { supervised: number; supervised_noised: number };
  /** The student's test accuracy minus the better baseline's, points. */
  gain_over_best_baseline: number;
}

export interface ExperimentResult {
  dataset: string;
  seed: number;
  labels: number;
  unlabeled: number;
  eval_images: number;
  test_images: number;
  preset: string;
  /** The split that chose the teacher's recipe and decided promotions; test accuracies are only reported. */
  chosen_on: 'eval';
  teacher: ReportedAccuracy & { steps: number; recipe: Recipe; recipes: Record<Recipe, ReportedAccuracy> };
  rounds: RoundResult[];
  wall_s: number;
}

export interface ExperimentData {
  name: string;
  train: LabeledImages;
  test: LabeledImages;
}

const percent = (value: number): number => Math.round(value * 10_000) / 100;
const reported = (accuracy: HeldOutAccuracy): ReportedAccuracy => ({
  accuracy: percent(accuracy.test),
  eval_accuracy: percent(accuracy.eval),
});

export interface ExperimentRunOptions {
  /**
   * Folder where the teacher is kept and found again: runs that differ only after the teacher
   * (student noise, labels, threshold, unlabeled size, width, steps) then share one teacher.
   */
  teacherCache?: string;
  /**
   * Writes the last teacher (the first one, or the last student promoted) to `path` as an artifact
   * named `version`, with its eval accuracy: a model to serve or push to the registry.
   */
  saveTeacher?: { path: string; version: string };
}

/**
 * The whole Noisy Student loop offline, in one process: teacher (the better of two supervised
 * recipes) → pseudo-label the unlabeled split (threshold + balancing) → noised student on
 * labeled + pseudo-labeled data → promote if better → repeat. "Better" is measured on an eval
 * split held out from the training images; the test images are only reported. Every student is
 * compared with both supervised recipes trained for the same number of steps on the same labels.
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
  if (!Number.isInteger(config.evalImages) || config.evalImages < 1) {
    throw new Error(`evalImages: expected a positive integer (the eval split decides), got ${config.evalImages}`);
  }
  const split = splitDataset(data.train.labels, classes, {
    labeled: { perClass: config.labeledPerClass },
    eval: { total: config.evalImages },
    seed: config.seed,
  });
  const evalLabels = split.eval.map((index) => data.train.labels[index] ?? 0);
  const unlabeledOrder = shuffledIndices(split.unlabeled.length, createRandom(config.seed + 17));
  const unlabeled = Array.from(
    unlabeledOrder.subarray(0, Math.min(config.unlabeled, split.unlabeled.length)),
    (i) => split.unlabeled[i] ?? 0,
  );
  const testOrder = shuffledIndices(data.test.count, createRandom(config.seed + 29));
  const testIndices = Array.from(testOrder.subarray(0, Math.min(config.testImages, data.test.count)));
  const testLabels = testIndices.map((index) => data.test.labels[index] ?? 0);
  log(
    `${data.name}: ${split.labeled.length} labeled (${config.labeledPerClass} per class), ${unlabeled.length} unlabeled, ` +
      `${split.eval.length} eval (choose), ${testIndices.length} test images (report); preset ${config.preset}, seed ${config.seed}`,
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

  const onTest = async (inference: tfl.LayersModel): Promise<Evaluation> =>
    evaluatePredictions(await predictProbabilities(inference, data.test, testIndices), testLabels, classes);
  const onEval = async (inference: tfl.LayersModel): Promise<number> =>
    evaluatePredictions(await predictProbabilities(inference, data.train, split.eval), evalLabels, classes).accuracy;
  const evaluateHeldOut = (model: tfl.LayersModel): Promise<{ accuracy: HeldOutAccuracy; test: Evaluation }> =>
    withFoldedModel(model, async (inference) => {
      const evalAccuracy = await onEval(inference);
      const test = await onTest(inference);
      return { accuracy: { eval: evalAccuracy, test: test.accuracy }, test };
    });
  const evaluateTest = async (model: tfl.LayersModel): Promise<number> =>
    (await withFoldedModel(model, onTest)).accuracy;

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

  // Supervised recipes' test accuracies, cached by step budget: every student's comparison.
  const supervised = new Map<string, number>();
  const trainSupervised = async (recipe: Recipe, steps: number): Promise<tfl.LayersModel> => {
    const model = build(recipe, 1, config.seed, noiseOf(recipe, steps));
    await train(`${recipe} ${steps} steps`, model, recipe, steps);
    return model;
  };
  const supervisedAccuracy = async (recipe: Recipe, steps: number): Promise<number> => {
    const known = supervised.get(`${recipe}:${steps}`);
    if (known !== undefined) return known;
    const model = await trainSupervised(recipe, steps);
    const accuracy = await evaluateTest(model);
    model.dispose();
    supervised.set(`${recipe}:${steps}`, accuracy);
    log(`${recipe} (${steps} steps): ${percent(accuracy)}% on the test images`);
    return accuracy;
  };

  // The teacher is the better of the two recipes at its own budget (on eval): an honest teacher.
  const chosen = await cachedTeacher(options.teacherCache, config, data, log, async () => {
    const models = {
      supervised: await trainSupervised('supervised', config.teacherSteps),
      supervised_noised: await trainSupervised('supervised_noised', config.teacherSteps),
    };
    const candidates = {
      supervised: (await evaluateHeldOut(models.supervised)).accuracy,
      supervised_noised: (await evaluateHeldOut(models.supervised_noised)).accuracy,
    };
    for (const [recipe, accuracy] of Object.entries(candidates)) {
      log(
        `${recipe} (${config.teacherSteps} steps): ${percent(accuracy.eval)}% on eval, ${percent(accuracy.test)}% on the test images`,
      );
    }
    const recipe = chooseTeacherRecipe(candidates);
    models[recipe === 'supervised' ? 'supervised_noised' : 'supervised'].dispose();
    return { model: models[recipe], recipe, candidates };
  });
  // At the teacher's budget the two recipes are also the baselines (a cached teacher included).
  for (const recipe of ['supervised', 'supervised_noised'] as const) {
    supervised.set(`${recipe}:${config.teacherSteps}`, chosen.candidates[recipe].test);
  }
  let teacher = chosen.model;
  let teacherAccuracy: HeldOutAccuracy = chosen.candidates[chosen.recipe];
  let teacherWidth = 1;
  const teacherRecipe: Recipe = chosen.recipe;
  log(
    `teacher: ${teacherRecipe} (chosen on eval), ${percent(teacherAccuracy.eval)}% on eval, ${percent(teacherAccuracy.test)}% on test`,
  );

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
    const { accuracy: studentAccuracy, test: studentTest } = await evaluateHeldOut(student);
    const baselines = {
      supervised: percent(await supervisedAccuracy('supervised', config.studentSteps)),
      supervised_noised: percent(await supervisedAccuracy('supervised_noised', config.studentSteps)),
    };
    const promoted = promotesStudent(studentAccuracy, teacherAccuracy);
    log(
      `round ${round}: student ${percent(studentAccuracy.eval)}% vs teacher ${percent(teacherAccuracy.eval)}% on eval → ${promoted ? 'promoted' : 'kept the teacher'}; ` +
        `on test student ${percent(studentAccuracy.test)}%, teacher ${percent(teacherAccuracy.test)}%, baselines ${baselines.supervised}% / ${baselines.supervised_noised}% (noised)`,
    );
    const studentReported = reported(studentAccuracy);
    rounds.push({
      student: {
        ...studentReported,
        steps: config.studentSteps,
        ece: Math.round(studentTest.expectedCalibrationError * 10_000) / 10_000,
      },
      teacherAccuracy: percent(teacherAccuracy.test),
      teacher_eval_accuracy: percent(teacherAccuracy.eval),
      accepted: selection.kept.length,
      acceptedFraction: Math.round((selection.kept.length / unlabeled.length) * 10_000) / 10_000,
      pseudo_label_accuracy: percent(pseudoAccuracy),
      promoted,
      baselines,
      gain_over_best_baseline:
        Math.round((studentReported.accuracy - Math.max(baselines.supervised, baselines.supervised_noised)) * 100) /
        100,
    });
    if (promoted) {
      teacher.dispose();
      teacher = student;
      teacherAccuracy = studentAccuracy;
      teacherWidth = width;
    } else {
      student.dispose();
    }
  }
  if (options.saveTeacher !== undefined) {
    await saveArtifact(teacher, options.saveTeacher, data, {
      widthMultiplier: teacherWidth,
      evalImages: split.eval.length,
      evalAccuracy: teacherAccuracy.eval,
    });
    log(`teacher saved to ${options.saveTeacher.path} as version ${options.saveTeacher.version}`);
  }
  teacher.dispose();
  return {
    dataset: data.name,
    seed: config.seed,
    labels: split.labeled.length,
    unlabeled: unlabeled.length,
    eval_images: split.eval.length,
    test_images: testIndices.length,
    preset: config.preset,
    chosen_on: 'eval',
    teacher: {
      ...reported(chosen.candidates[teacherRecipe]),
      steps: config.teacherSteps,
      recipe: teacherRecipe,
      recipes: {
        supervised: reported(chosen.candidates.supervised),
        supervised_noised: reported(chosen.candidates.supervised_noised),
      },
    },
    rounds,
    wall_s: Math.round((performance.now() - started) / 100) / 10,
  };
}
