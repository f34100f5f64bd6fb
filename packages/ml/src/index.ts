export { DEFAULT_FILL_VALUE } from './augment/geometric-ops.js';
export {
  DEFAULT_TRANSLATE_FRACTION,
  MAX_MAGNITUDE,
  RAND_AUGMENT_OPS,
  type RandAugmentOp,
} from './augment/op-parameters.js';
export {
  sampleRandAugmentPlan,
  type RandAugmentPlan,
  type RandAugmentPlanOptions,
  type RandAugmentStep,
} from './augment/plan.js';
export {
  applyRandAugmentPlan,
  randAugment,
  type RandAugmentApplyOptions,
  type RandAugmentOptions,
} from './augment/rand-augment.js';
export {
  BACKEND_REQUESTS,
  currentBackend,
  describeBackend,
  initBackend,
  parseBackendRequest,
  type BackendChoice,
  type BackendRequest,
  type InitBackendOptions,
} from './backend/select-backend.js';
export { registerWasmTrainingKernels, wasmTrainingKernels } from './backend/wasm-training-kernels/register.js';
export {
  DEFAULT_FASHION_MNIST_DIR,
  FASHION_MNIST_CLASSES,
  loadFashionMnist,
  type FashionMnistSplit,
  type LabeledImages,
} from './data/fashion-mnist.js';
export { parseIdx, readIdxFile, type IdxArray } from './data/idx.js';
export { buildReferenceResNet, forwardFlopsPerImage, type ReferenceResNetOptions } from './models/reference-resnet.js';
export { createRandom, seededValues, shuffledIndices } from './random.js';
export { foldBatchNorm, withFoldedModel, type FoldedModel, type FoldReport } from './models/fold-batch-norm.js';
export { compileInferenceGraph, nativeInferenceGraph } from './models/native-graph.js';
export type { InferenceGraph } from '@noisystudent/kernels';
export { NoiseDropout, type NoiseDropoutArgs } from './models/noise-dropout.js';
export { BatchSampler, validateTrainingSet, type TrainingSet } from './train/batches.js';
export { loadCheckpoint, saveCheckpoint } from './train/checkpoint.js';
export { clearNoiseStep, noiseSeedFor, setNoiseStep } from './train/noise-seed.js';
export { learningRateAt, type LearningRateSchedule } from './train/schedule.js';
export { trainModel, type TrainOptions, type TrainProgress, type TrainResult } from './train/train-model.js';
export { StochasticDepth, survivalProbabilityOf, type StochasticDepthArgs } from './models/stochastic-depth.js';
export {
  BOTTLENECK_EXPANSION,
  buildResNet,
  resNetSurvivalProbabilities,
  resolveResNetConfig,
  type ResNetBlockKind,
  type ResNetConfig,
  type ResNetModel,
  type ResNetOptions,
  type ResNetStage,
  type ResNetStem,
} from './models/resnet.js';
export {
  isResNetPresetName,
  RESNET_PRESET_NAMES,
  resnetPreset,
  type ResNetPresetName,
  type ResNetPresetOverrides,
} from './models/model-presets.js';
export { ModelArtifactError, type ModelArtifactProblem } from './artifact/artifact-error.js';
export {
  decodeModelArtifact,
  encodeModelArtifact,
  type DecodedArtifact,
  type DecodeModelArtifactOptions,
  type EncodedArtifact,
} from './artifact/model-artifact.js';
export { checkModelMetadata, completeModelMetadata, type ModelMetadataInput } from './artifact/model-metadata.js';
export { calibrationBinIndex, expectedCalibrationError, type CalibrationBin } from './evaluate/calibration.js';
export {
  DEFAULT_EVALUATION_BATCH_SIZE,
  evaluateModel,
  predictProbabilities,
  type EvaluateModelOptions,
  type ImageBatches,
  type ImageBatchSource,
  type PixelTransform,
} from './evaluate/evaluate-model.js';
export { EvaluationAccumulator } from './evaluate/evaluation-accumulator.js';
export { toEvaluationMetrics } from './evaluate/evaluation-metrics.js';
export {
  DEFAULT_CALIBRATION_BINS,
  DEFAULT_LOSS_EPSILON,
  evaluatePredictions,
  type Evaluation,
  type EvaluationOptions,
  type ProbabilityRows,
} from './evaluate/metrics.js';
export {
  CIFAR10_BATCH_FILES,
  CIFAR10_CLASSES,
  CIFAR10_RECORD_BYTES,
  CIFAR10_SIZE,
  loadCifar10,
  parseCifar10Batch,
  readCifar10Batch,
  readCifar10ClassNames,
  type Cifar10Split,
} from './data/cifar10.js';
export {
  decodeImage,
  loadImageFolder,
  type ImageFolder,
  type ImageFolderOptions,
  type ImageSize,
} from './data/image-folder.js';
export {
  selectImages,
  splitDataset,
  splitLabeledUnlabeled,
  takeSplit,
  type DatasetSplit,
  type LabeledUnlabeledSplit,
  type SplitImages,
  type SplitOptions,
  type SplitSize,
  type UnlabeledImages,
} from './data/splits.js';
export {
  balanceClasses,
  meanTargetPerClass,
  type AcceptedExample,
  type BalanceOptions,
  type ClassBalance,
} from './pseudo-label/balance.js';
export {
  DEFAULT_PSEUDO_LABEL_THRESHOLD,
  resolvePseudoLabelPolicy,
  selectPseudoLabels,
  type AppliedPseudoLabelPolicy,
  type PseudoLabelPolicy,
  type PseudoLabelSelection,
} from './pseudo-label/policy.js';
export { applyTemperature, writePseudoLabelTarget, type PseudoLabelMode } from './pseudo-label/targets.js';
export {
  inputSize,
  modelInputSpec,
  modelInputPixels,
  tensorInputPixels,
  writeModelInput,
  writePixels,
  type ModelInputPixels,
  type ModelInputSpec,
} from './preprocess/model-input.js';
export { PIXEL_SCALE, trainingPreprocessing, type ImageDataDescription } from './preprocess/training-input.js';
export { integerOption, positiveNumberOption, runMain } from './cli/options.js';
export { medianSpread, type MedianSpread } from './bench/median-spread.js';
export { chooseTeacherRecipe, promotesStudent, type HeldOutAccuracy, type Recipe } from './experiment/decisions.js';
export {
  percent,
  SelfTraining,
  type ChosenTeacher,
  type HeldOutEvaluation,
  type ModelRole,
  type SelfTrainingData,
  type TrainingHooks,
} from './experiment/self-training.js';
export {
  PRESETS,
  studentNoiseOf,
  type ExperimentConfig,
  type NoiseSettings,
  type StudentNoiseFlags,
} from './experiment/presets.js';
export { loadLayersModelFolder } from './artifact/layers-folder.js';
export {
  addExperimentOptions,
  experimentConfigFromFlags,
  type ExperimentFlags,
} from './experiment/experiment-options.js';
