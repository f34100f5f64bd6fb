import type * as tfl from '@tensorflow/tfjs-layers';

import { encodeModelArtifact } from '../artifact/model-artifact.js';
import type { ModelMetadataInput } from '../artifact/model-metadata.js';
import type { LabeledImages } from '../data/fashion-mnist.js';
import type { DatasetSplit } from '../data/splits.js';
import {
  DEFAULT_EVALUATION_BATCH_SIZE,
  predictProbabilities,
  type PixelTransform,
} from '../evaluate/evaluate-model.js';
import { toEvaluationMetrics } from '../evaluate/evaluation-metrics.js';
import { evaluatePredictions, type Evaluation } from '../evaluate/metrics.js';
import { withFoldedModel } from '../models/fold-batch-norm.js';
import { buildReferenceResNet } from '../models/reference-resnet.js';
import type { TrainingSet } from '../train/batches.js';
import { trainModel, type TrainProgress, type TrainResult } from '../train/train-model.js';
import { chooseTeacherRecipe, type HeldOutAccuracy, type Recipe } from './decisions.js';
import { experimentSplits } from './experiment-splits.js';
import type { ExperimentConfig, NoiseSettings } from './presets.js';

/** A data set as the self-training loop reads it: training images (split here) and test images. */
export interface SelfTrainingData {
  name: string;
  train: LabeledImages;
  test: LabeledImages;
}

/** What a model is trained as: one of the supervised recipes, or a student on pseudo-labels too. */
export type ModelRole = Recipe | 'student';

/** How a caller follows and controls one training run. */
export interface TrainingHooks {
  onProgress?: (progress: TrainProgress) => void;
  /** Seconds between progress reports. @default 5 */
  progressEverySeconds?: number;
  /** Save every `everySteps` steps to `path` and resume from it (see `trainModel`). */
  checkpoint?: { path: string; everySteps: number; onOtherRun?: 'throw' | 'start-over' };
  signal?: AbortSignal;
}

/** A model's evaluation on the eval split (decides) and the test split (reported). */
export interface HeldOutEvaluation {
  accuracy: HeldOutAccuracy;
  eval: Evaluation;
  test: Evaluation;
}

/** The teacher chosen among the two supervised recipes at the teacher's budget. */
export interface ChosenTeacher {
  model: tfl.LayersModel;
  recipe: Recipe;
  /** Both recipes at the teacher's budget, on eval and test; `candidates[recipe]` is the teacher's. */
  candidates: Record<Recipe, HeldOutAccuracy>;
  /**
   * The same evaluations in full (per class, calibration): the supervised baselines at this
   * budget. Absent for a teacher read back from a cache.
   */
  evaluations?: Record<Recipe, HeldOutEvaluation>;
}

/**
 * The parts of the Noisy Student loop that the offline experiment and the trainer service share,
 * for one configuration and data set: the seeded splits (labeled, eval, unlabeled, test), the
 * model of each role, training with the role's noise, held-out evaluation, and the teacher choice.
 * Everything depends only on the config, the data and the seeds, so both paths train the same
 * models from the same examples.
 */
export class SelfTraining {
  readonly split: DatasetSplit;
  /** The labeled examples with one-hot targets. */
  readonly labeledSet: TrainingSet;
  readonly evalLabels: number[];
  /** Indices into `data.test` that every model is reported on, and their labels. */
  readonly testIndices: number[];
  readonly testLabels: number[];
  /** Indices into `data.train` of the unlabeled images, in the experiment's order. */
  readonly unlabeled: number[];
  readonly classes: number;
  private readonly studentNoise: NoiseSettings;

  constructor(
    readonly config: ExperimentConfig,
    readonly data: SelfTrainingData,
  ) {
    if (!Number.isInteger(config.evalImages) || config.evalImages < 1) {
      throw new Error(`evalImages: expected a positive integer (the eval split decides), got ${config.evalImages}`);
    }
    const { train, test } = data;
    this.classes = train.classNames.length;
    const splits = experimentSplits(train.labels, this.classes, test.count, config);
    this.split = splits.split;
    if (this.split.eval.length === 0) throw new Error('evalImages: the eval split is empty; it decides every choice');
    this.evalLabels = this.split.eval.map((index) => train.labels[index] ?? 0);
    this.unlabeled = splits.unlabeled;
    this.testIndices = splits.test;
    this.testLabels = this.testIndices.map((index) => test.labels[index] ?? 0);
    const oneHot = new Float32Array(this.split.labeled.length * this.classes);
    this.split.labeled.forEach((index, row) => {
      oneHot[row * this.classes + (train.labels[index] ?? 0)] = 1;
    });
    this.labeledSet = this.gather(this.split.labeled, oneHot);
    this.studentNoise = config.studentNoise ?? config.noise;
  }

  /** Training images `indices` with `targets` (`indices.length × classes`) as a training set. */
  gather(indices: readonly number[], targets: Float32Array): TrainingSet {
    const { train } = this.data;
    const pixels = train.height * train.width * train.channels;
    const images = new Uint8Array(indices.length * pixels);
    indices.forEach((index, row) =>
      images.set(train.images.subarray(index * pixels, (index + 1) * pixels), row * pixels),
    );
    return {
      images,
      count: indices.length,
      height: train.height,
      width: train.width,
      channels: train.channels,
      targets,
      classes: this.classes,
    };
  }

  /**
   * The noise a role trains with at a budget, as applied: the plain recipe gets the light
   * augmentation and neither dropout nor stochastic depth; the noised teacher recipe `noise`; the
   * student (and the noised baseline at the student's budget) the student's noise.
   */
  noiseOf(role: ModelRole, steps: number): NoiseSettings {
    const { config } = this;
    if (role === 'supervised') return { ...config.lightAugment, dropout: 0, finalSurvivalProbability: 1 };
    return role === 'student' || steps !== config.teacherSteps ? this.studentNoise : config.noise;
  }

  /** A fresh reference ResNet for `role`, with the role's dropout and stochastic depth. */
  buildModel(role: ModelRole, width: number, seed: number, steps: number): tfl.LayersModel {
    const noise = this.noiseOf(role, steps);
    const { train } = this.data;
    return buildReferenceResNet({
      inputShape: [train.height, train.width, train.channels],
      classes: this.classes,
      seed,
      widthMultiplier: width,
      dropout: noise.dropout,
      finalSurvivalProbability: noise.finalSurvivalProbability,
    });
  }

  /** Trains `model` as `role` on the labeled set and, for a student, `pseudo`. */
  train(
    model: tfl.LayersModel,
    role: ModelRole,
    steps: number,
    pseudo?: TrainingSet,
    hooks: TrainingHooks = {},
  ): Promise<TrainResult> {
    const { config } = this;
    const { numOps, magnitude } = this.noiseOf(role, steps);
    return trainModel(model, this.labeledSet, pseudo, {
      steps,
      labeledBatchSize: config.labeledBatchSize,
      pseudoBatchSize: pseudo === undefined ? 0 : config.pseudoBatchSize,
      schedule: { kind: 'cosine', learningRate: config.learningRate, warmupSteps: config.warmupSteps },
      labelSmoothing: config.labelSmoothing,
      randAugment: magnitude > 0 || numOps > 0 ? { numOps, magnitude } : undefined,
      seed: config.seed,
      ...(hooks.onProgress === undefined ? {} : { onProgress: hooks.onProgress }),
      ...(hooks.progressEverySeconds === undefined ? {} : { progressEverySeconds: hooks.progressEverySeconds }),
      ...(hooks.checkpoint === undefined ? {} : { checkpoint: hooks.checkpoint }),
      ...(hooks.signal === undefined ? {} : { signal: hooks.signal }),
    });
  }

  /**
   * Top-1 and calibration on the eval split and the test images (through the folded inference
   * copy). `input`: how the model takes pixels when not like training (an imported model's own).
   */
  evaluate(model: tfl.LayersModel, input?: PixelTransform): Promise<HeldOutEvaluation> {
    const { train, test } = this.data;
    return withFoldedModel(model, async (inference) => {
      const onEval = evaluatePredictions(
        await predictProbabilities(inference, train, this.split.eval, DEFAULT_EVALUATION_BATCH_SIZE, input),
        this.evalLabels,
        this.classes,
      );
      const onTest = evaluatePredictions(
        await predictProbabilities(inference, test, this.testIndices, DEFAULT_EVALUATION_BATCH_SIZE, input),
        this.testLabels,
        this.classes,
      );
      return { accuracy: { eval: onEval.accuracy, test: onTest.accuracy }, eval: onEval, test: onTest };
    });
  }

  /**
   * Trains both supervised recipes at the teacher's budget and keeps the one better on eval (the
   * other is freed). `hooks(recipe)` follows each run (checkpoints must differ per recipe).
   */
  async trainTeacher(
    log: (line: string) => void,
    hooks: (recipe: Recipe) => TrainingHooks = () => ({}),
  ): Promise<ChosenTeacher> {
    const steps = this.config.teacherSteps;
    const models = {} as Record<Recipe, tfl.LayersModel>;
    const candidates = {} as Record<Recipe, HeldOutAccuracy>;
    const evaluations = {} as Record<Recipe, HeldOutEvaluation>;
    for (const recipe of ['supervised', 'supervised_noised'] as const) {
      const model = this.buildModel(recipe, 1, this.config.seed, steps);
      models[recipe] = model;
      await this.train(model, recipe, steps, undefined, hooks(recipe));
      evaluations[recipe] = await this.evaluate(model);
      candidates[recipe] = evaluations[recipe].accuracy;
      log(
        `${recipe} (${steps} steps): ${percent(candidates[recipe].eval)}% on eval, ${percent(candidates[recipe].test)}% on the test images`,
      );
    }
    const recipe = chooseTeacherRecipe(candidates);
    models[recipe === 'supervised' ? 'supervised_noised' : 'supervised'].dispose();
    return { model: models[recipe], recipe, candidates, evaluations };
  }

  /**
   * `model` as an artifact: the training data's input description, the reference architecture at
   * `width`, eval metrics in `metrics` and test metrics in `testMetrics`, plus what the caller adds.
   */
  async artifact(
    model: tfl.LayersModel,
    width: number,
    evaluation: HeldOutEvaluation | undefined,
    metadata: ModelMetadataInput,
  ): Promise<Uint8Array> {
    const { name, train } = this.data;
    const { bytes } = await encodeModelArtifact(
      model,
      {
        architecture: 'reference-resnet',
        architectureConfigJson: JSON.stringify({ widthMultiplier: width }),
        ...(evaluation === undefined
          ? {}
          : {
              metrics: toEvaluationMetrics(evaluation.eval, `${name}/eval`),
              testMetrics: toEvaluationMetrics(evaluation.test, `${name}/test`),
            }),
        ...metadata,
      },
      train,
    );
    return bytes;
  }
}

/** A fraction as a percentage with two decimals. */
export const percent = (value: number): number => Math.round(value * 10_000) / 100;
