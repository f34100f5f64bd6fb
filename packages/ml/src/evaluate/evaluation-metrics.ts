import { EvaluationMetrics } from '@noisystudent/proto';

import type { Evaluation } from './metrics.js';

/**
 * An `Evaluation` as the `EvaluationMetrics` message stored in a model's metadata. `dataset` names
 * the held-out set (e.g. "fashion-mnist/test"): student and teacher are compared only on the same
 * one. A class with no example keeps its NaN per-class accuracy (a protobuf double carries it).
 */
export function toEvaluationMetrics(evaluation: Evaluation, dataset: string): EvaluationMetrics {
  if (dataset.trim() === '') {
    throw new Error(
      `dataset: expected the held-out set's name, e.g. "fashion-mnist/test", got ${JSON.stringify(dataset)}`,
    );
  }
  return EvaluationMetrics.create({
    dataset,
    exampleCount: evaluation.count,
    top1Accuracy: evaluation.accuracy,
    loss: evaluation.loss,
    expectedCalibrationError: evaluation.expectedCalibrationError,
    eceBinCount: evaluation.bins,
    perClassAccuracy: [...evaluation.perClassAccuracy],
  });
}
