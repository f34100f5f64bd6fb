import type { LabeledImages } from '../data/fashion-mnist.js';
import { predictProbabilities } from '../evaluate/evaluate-model.js';
import { withFoldedModel } from '../models/fold-batch-norm.js';
import { selectPseudoLabels } from '../pseudo-label/policy.js';
import { promotesStudent, type HeldOutAccuracy, type Recipe } from './decisions.js';
import type { ExperimentConfig } from './presets.js';
import { cachedTeacher } from './teacher-cache.js';
import { saveArtifact } from './save-artifact.js';
import { percent, SelfTraining, type TrainingHooks } from './self-training.js';

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
  const loop = new SelfTraining(config, data);
  const { split, classes, unlabeled, testIndices } = loop;
  log(
    `${data.name}: ${split.labeled.length} labeled (${config.labeledPerClass} per class), ${unlabeled.length} unlabeled, ` +
      `${split.eval.length} eval (choose), ${testIndices.length} test images (report); preset ${config.preset}, seed ${config.seed}`,
  );
  const progress = (label: string): TrainingHooks => ({
    onProgress: (p) =>
      log(
        `  ${label}: step ${p.step}/${p.steps} loss ${p.loss.toFixed(3)} lr ${p.learningRate.toExponential(2)} ${p.imagesPerSecond.toFixed(0)} img/s`,
      ),
  });

  // Supervised recipes' test accuracies, cached by step budget: every student's comparison.
  const supervised = new Map<string, number>();
  const supervisedAccuracy = async (recipe: Recipe, steps: number): Promise<number> => {
    const known = supervised.get(`${recipe}:${steps}`);
    if (known !== undefined) return known;
    const model = loop.buildModel(recipe, 1, config.seed, steps);
    await loop.train(model, recipe, steps, undefined, progress(`${recipe} ${steps} steps`));
    const accuracy = (await loop.evaluate(model)).accuracy.test;
    model.dispose();
    supervised.set(`${recipe}:${steps}`, accuracy);
    log(`${recipe} (${steps} steps): ${percent(accuracy)}% on the test images`);
    return accuracy;
  };

  // The teacher is the better of the two recipes at its own budget (on eval): an honest teacher.
  const chosen = await cachedTeacher(options.teacherCache, config, data, log, () =>
    loop.trainTeacher(log, (recipe) => progress(`${recipe} ${config.teacherSteps} steps`)),
  );
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
      ...loop.gather(
        selection.kept.map((row) => unlabeled[row] ?? 0),
        selection.targets,
      ),
      copies: selection.copies,
    };
    const width = Math.max(config.studentWidth, teacherWidth);
    const student = loop.buildModel('student', width, config.seed + round, config.studentSteps);
    await loop.train(student, 'student', config.studentSteps, pseudoSet, progress(`round ${round} student`));
    const { accuracy: studentAccuracy, test: studentTest } = await loop.evaluate(student);
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
