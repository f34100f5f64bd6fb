import { EvaluationMetrics } from '@noisystudent/proto';
import { describe, expect, it } from 'vitest';

import { toEvaluationMetrics } from './evaluation-metrics.js';
import { evaluatePredictions } from './metrics.js';

describe('toEvaluationMetrics', () => {
  const evaluation = evaluatePredictions(
    Float32Array.from([0.7, 0.2, 0.1, 0.3, 0.5, 0.2, 0.05, 0.05, 0.9]),
    [0, 2, 2],
    3,
    { bins: 5 },
  );

  it('maps every field and survives the wire', () => {
    const metrics = toEvaluationMetrics(evaluation, 'fashion-mnist/test');
    expect(metrics).toEqual({
      dataset: 'fashion-mnist/test',
      exampleCount: 3,
      top1Accuracy: 2 / 3,
      loss: evaluation.loss,
      expectedCalibrationError: evaluation.expectedCalibrationError,
      eceBinCount: 5,
      perClassAccuracy: [1, Number.NaN, 0.5],
    });
    expect(EvaluationMetrics.decode(EvaluationMetrics.encode(metrics).finish())).toEqual(metrics);
  });

  it('needs the name of the held-out set', () => {
    expect(() => toEvaluationMetrics(evaluation, ' ')).toThrow(
      `dataset: expected the held-out set's name, e.g. "fashion-mnist/test", got " "`,
    );
  });
});
