import type * as tfl from '@tensorflow/tfjs-layers';
import { InvalidArgument, MODEL_VERSION_PATTERN } from '@noisystudent/core';
import { ModelMetadata, type DeepPartial } from '@noisystudent/proto';

import { modelInputSpec } from '../preprocess/model-input.js';
import { trainingPreprocessing, type ImageDataDescription } from '../preprocess/training-input.js';
import { ModelArtifactError } from './artifact-error.js';

/**
 * Metadata as callers write it: any subset of `ModelMetadata` except what describes the input,
 * which comes from the training data (`completeModelMetadata`). Missing fields take their
 * protobuf defaults, and `createdAt` is stored as given (never "now"), so the same model and
 * metadata always give the same bytes and sha256.
 */
export type ModelMetadataInput = Omit<DeepPartial<ModelMetadata>, 'inputShape' | 'preprocessing' | 'classNames'>;

/**
 * `input` as a complete `ModelMetadata`: input shape, preprocessing and class names from the data
 * the model was trained on (never from the caller's memory of them), checked by `checkModelMetadata`.
 */
export function completeModelMetadata(
  input: ModelMetadataInput,
  trainedOn: ImageDataDescription,
  model: tfl.LayersModel,
): ModelMetadata {
  const metadata = ModelMetadata.fromPartial({
    ...input,
    inputShape: [trainedOn.height, trainedOn.width, trainedOn.channels],
    preprocessing: trainingPreprocessing(trainedOn),
    classNames: [...trainedOn.classNames],
  });
  checkModelMetadata(metadata, model);
  return metadata;
}

/**
 * Checks that `metadata` is well formed and describes `model`: a version usable in NATS names,
 * the model's input shape, preprocessing that says how to feed it, one class name per output
 * unit, metrics that agree with both. Throws `ModelArtifactError` ('invalid-metadata' or
 * 'missing-field') naming the field.
 */
export function checkModelMetadata(metadata: ModelMetadata, model: tfl.LayersModel): void {
  const fail = (field: string, detail: string): never => {
    throw new ModelArtifactError('invalid-metadata', `metadata.${field}`, detail);
  };
  if (!MODEL_VERSION_PATTERN.test(metadata.version)) {
    fail('version', `expected letters, digits, '-' or '_' (e.g. "v3"), got ${JSON.stringify(metadata.version)}`);
  }
  if (metadata.parentVersion !== '' && !MODEL_VERSION_PATTERN.test(metadata.parentVersion)) {
    fail('parentVersion', `expected "" or letters, digits, '-' or '_', got ${JSON.stringify(metadata.parentVersion)}`);
  }
  if (metadata.architectureConfigJson !== '' && !isJsonObject(metadata.architectureConfigJson)) {
    fail('architectureConfigJson', 'expected "" or a JSON object');
  }
  const inputShape = modelInputShape(model);
  if (!sameShape(metadata.inputShape, inputShape)) {
    fail(
      'inputShape',
      `expected [${inputShape.join(', ')}] (the model's input), got [${metadata.inputShape.join(', ')}]`,
    );
  }
  const preprocessing = metadata.preprocessing;
  if (preprocessing === undefined) {
    // Served without it, a model trained on 0–1 pixels would be fed 0–255 and answer confidently wrong.
    throw new ModelArtifactError(
      'missing-field',
      'metadata.preprocessing',
      "expected how the model's input is made (size, color mode, resize method, normalization), got none",
    );
  }
  const declared = [preprocessing.inputHeight, preprocessing.inputWidth, preprocessing.inputChannels];
  if (!sameShape(declared, inputShape)) {
    fail(
      'preprocessing',
      `expected inputHeight × inputWidth × inputChannels = ${inputShape.join('×')} (the model's input), got ${declared.join('×')}`,
    );
  }
  try {
    modelInputSpec(metadata);
  } catch (error) {
    if (!(error instanceof InvalidArgument)) throw error;
    throw new ModelArtifactError('invalid-metadata', error.field, error.expected, { cause: error });
  }
  const classes = modelClassCount(model);
  if (metadata.classNames.length !== classes) {
    fail('classNames', `expected ${classes} names (one per output unit), got ${metadata.classNames.length}`);
  }
  const perClass = metadata.metrics?.perClassAccuracy ?? [];
  if (perClass.length !== 0 && perClass.length !== classes) {
    fail('metrics.perClassAccuracy', `expected ${classes} entries (one per class), got ${perClass.length}`);
  }
}

/** [height, width, channels] of the model's one image input. */
function modelInputShape(model: tfl.LayersModel): number[] {
  const [input] = model.inputs;
  if (input === undefined || model.inputs.length !== 1) {
    throw new ModelArtifactError('invalid-metadata', 'model.inputs', `expected one input, got ${model.inputs.length}`);
  }
  const shape = input.shape.slice(1);
  const sizes = shape.filter((size): size is number => typeof size === 'number' && size > 0);
  if (sizes.length !== shape.length) {
    throw new ModelArtifactError(
      'invalid-metadata',
      'model.inputs[0].shape',
      `expected fixed sizes after the batch axis, got [${shape.join(', ')}]`,
    );
  }
  return sizes;
}

/** Units of the model's one `[batch, classes]` output. */
function modelClassCount(model: tfl.LayersModel): number {
  const [output] = model.outputs;
  const classes = output?.shape[1];
  if (output === undefined || model.outputs.length !== 1 || output.shape.length !== 2 || typeof classes !== 'number') {
    throw new ModelArtifactError(
      'invalid-metadata',
      'model.outputs',
      `expected one [batch, classes] output, got ${model.outputs.map((tensor) => `[${tensor.shape.join(', ')}]`).join(', ')}`,
    );
  }
  return classes;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((size, axis) => size === b[axis]);
}

function isJsonObject(text: string): boolean {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}
