import { describe, expect, it } from 'vitest';

import { evaluatePredictions } from './metrics.js';

describe('evaluatePredictions', () => {
  it('computes accuracy, per-class accuracy, loss, ECE and the confusion matrix by hand', () => {
    // 4 examples, 2 classes; confidences .92 (right), .63 (wrong), .84 (right), .75 (right), away from bin edges
    const probabilities = Float32Array.from([0.92, 0.08, 0.63, 0.37, 0.16, 0.84, 0.25, 0.75]);
    const labels = [0, 1, 1, 1];
    const result = evaluatePredictions(probabilities, labels, 2, 2);
    expect(result.accuracy).toBe(0.75);
    expect(result.perClassAccuracy).toEqual([1, 2 / 3]);
    expect(result.confusion).toEqual([
      [1, 0],
      [1, 2],
    ]);
    const expectedLoss = -(Math.log(0.92) + Math.log(0.37) + Math.log(0.84) + Math.log(0.75)) / 4;
    expect(result.loss).toBeCloseTo(expectedLoss, 6);
    // Two bins [0, .5) and [.5, 1]: all in the second: accuracy .75 against mean confidence .785.
    expect(result.expectedCalibrationError).toBeCloseTo(0.035, 6);
    // Ten bins: one example each in bins 9, 6, 8, 7: |1 − .92|, |0 − .63|, |1 − .84|, |1 − .75|, each weighted 1/4.
    const fine = evaluatePredictions(probabilities, labels, 2, 10);
    expect(fine.expectedCalibrationError).toBeCloseTo((0.08 + 0.63 + 0.16 + 0.25) / 4, 6);
  });

  it('names what is wrong with its input', () => {
    expect(() => evaluatePredictions(new Float32Array(0), [], 2)).toThrow('labels: expected at least one example');
    expect(() => evaluatePredictions(new Float32Array(3), [0, 1], 2)).toThrow(
      'probabilities: expected 2×2 = 4 values, got 3',
    );
    expect(() => evaluatePredictions(new Float32Array(4), [0, 2], 2)).toThrow('labels[1]: expected 0–1, got 2');
  });
});
