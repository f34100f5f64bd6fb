import { describe, expect, it } from 'vitest';

import { EvaluationAccumulator } from './evaluation-accumulator.js';
import { evaluatePredictions } from './metrics.js';

// 6 examples, 3 classes. Top probabilities and whether they are right:
//   .70 ✓  .50 ✗  .90 ✓  .75 ✗  .45 ✓  .65 ✓   — none on a bin edge of 5 bins except .5, which
// lies in (.4, .6] under the right-closed bins of Guo et al.
const rows = [
  [0.7, 0.2, 0.1],
  [0.3, 0.5, 0.2],
  [0.05, 0.05, 0.9],
  [0.15, 0.75, 0.1],
  [0.45, 0.35, 0.2],
  [0.1, 0.25, 0.65],
];
const labels = [0, 2, 2, 0, 0, 2];
const flat = Float32Array.from(rows.flat());

describe('evaluatePredictions', () => {
  it('computes accuracy, per-class accuracy, loss, ECE and the confusion matrix by hand', () => {
    const result = evaluatePredictions(flat, labels, 3, { bins: 5 });
    expect(result.count).toBe(6);
    expect(result.accuracy).toBe(4 / 6);
    expect(result.confusion).toEqual([
      [2, 1, 0],
      [0, 0, 0],
      [0, 1, 2],
    ]);
    expect(result.classCounts).toEqual([3, 0, 3]);
    expect(result.perClassAccuracy).toEqual([2 / 3, Number.NaN, 2 / 3]);
    const probabilityOfLabel = [0.7, 0.2, 0.9, 0.15, 0.45, 0.65];
    const expectedLoss = -probabilityOfLabel.reduce((sum, p) => sum + Math.log(p), 0) / 6;
    expect(result.loss).toBeCloseTo(expectedLoss, 6);
    // Bins of width .2: (.4, .6] holds .50 ✗ and .45 ✓ → |1/2 − .475| = .025, weight 2/6;
    // (.6, .8] holds .70 ✓, .75 ✗, .65 ✓ → |2/3 − .70| = 1/30, weight 3/6; (.8, 1] holds .90 ✓ → .1, weight 1/6.
    // ECE = (2 · .025 + 3 · (1/30) + .1) / 6 = .25 / 6 = 1/24.
    expect(result.expectedCalibrationError).toBeCloseTo(1 / 24, 6);
    expect(result.bins).toBe(5);
    expect(result.calibration.map((bin) => bin.count)).toEqual([0, 0, 2, 3, 1]);
    expect(result.calibration[2]?.accuracy).toBe(0.5);
    expect(result.calibration[2]?.meanConfidence).toBeCloseTo(0.475, 6);
    expect(result.calibration[3]?.lower).toBeCloseTo(0.6, 12);
    expect(result.calibration[3]?.upper).toBeCloseTo(0.8, 12);
    expect(result.calibration[0]?.accuracy).toBeNaN();
  });

  it('matches a second hand computation with 2 and 10 bins, and uses 15 bins by default', () => {
    const probabilities = Float32Array.from([0.92, 0.08, 0.63, 0.37, 0.16, 0.84, 0.25, 0.75]);
    const twoClassLabels = [0, 1, 1, 1];
    // Two bins: all four above .5, accuracy .75 against mean confidence .785.
    expect(evaluatePredictions(probabilities, twoClassLabels, 2, { bins: 2 }).expectedCalibrationError).toBeCloseTo(
      0.035,
      6,
    );
    // Ten bins: one example each: |1 − .92|, |0 − .63|, |1 − .84|, |1 − .75|, each weighted 1/4.
    expect(evaluatePredictions(probabilities, twoClassLabels, 2, { bins: 10 }).expectedCalibrationError).toBeCloseTo(
      (0.08 + 0.63 + 0.16 + 0.25) / 4,
      6,
    );
    expect(evaluatePredictions(probabilities, twoClassLabels, 2).bins).toBe(15);
  });

  it('puts a confidence on a bin edge in the lower bin, takes the first class on a tie, and 1 in the last bin', () => {
    const result = evaluatePredictions(Float32Array.from([0.5, 0.5, 0, 1]), [0, 1], 2, { bins: 2 });
    expect(result.confusion).toEqual([
      [1, 0],
      [0, 1],
    ]);
    expect(result.calibration.map((bin) => bin.count)).toEqual([1, 1]);
    // Bin (0, .5]: accuracy 1 at confidence .5; bin (.5, 1]: accuracy 1 at confidence 1.
    expect(result.expectedCalibrationError).toBeCloseTo(0.25, 12);
  });

  it('clamps the probability of the label to epsilon in the loss', () => {
    const certainAndWrong = Float32Array.from([1, 0]);
    expect(evaluatePredictions(certainAndWrong, [1], 2).loss).toBeCloseTo(-Math.log(1e-7), 9);
    expect(evaluatePredictions(certainAndWrong, [1], 2, { epsilon: 1e-3 }).loss).toBeCloseTo(-Math.log(1e-3), 9);
  });

  it('takes rows as an array of arrays just like flat rows', () => {
    expect(
      evaluatePredictions(
        rows.map((row) => Float32Array.from(row)),
        labels,
        3,
        { bins: 5 },
      ),
    ).toEqual(evaluatePredictions(flat, labels, 3, { bins: 5 }));
  });

  it('names what is wrong with its input', () => {
    expect(() => evaluatePredictions(new Float32Array(0), [], 2)).toThrow(
      'labels: expected at least one example, got none',
    );
    expect(() => evaluatePredictions(new Float32Array(3), [0, 1], 2)).toThrow(
      'probabilities: expected 2×2 = 4 values (one row of 2 per label), got 3',
    );
    expect(() => evaluatePredictions(flat, [0, 2, 2, 0, 3, 2], 3)).toThrow(
      'labels[4]: expected an integer class index in 0–2, got 3',
    );
    expect(() => evaluatePredictions(flat, [0, 2, 1.5, 0, 0, 2], 3)).toThrow('labels[2]: expected an integer');
    expect(() =>
      evaluatePredictions(
        [
          [0.5, 0.5],
          [0.2, 0.3, 0.5],
        ],
        [0, 1],
        2,
      ),
    ).toThrow('probabilities[1]: expected 2 values (one per class), got 3');
    expect(() => evaluatePredictions([[0.5, 0.5]], [0, 1], 2)).toThrow(
      'probabilities: expected 2 rows (one per label), got 1',
    );
    expect(() => evaluatePredictions(Float32Array.from([0.5, -0.5]), [0], 2)).toThrow(
      'probabilities[0][1]: expected a probability in [0, 1], got -0.5',
    );
    expect(() => evaluatePredictions(Float32Array.from([0.5, 0.5, 0.75, 0.75]), [0, 1], 2)).toThrow(
      'probabilities[1]: expected values summing to 1 ± 0.001 (softmax outputs, not logits), got 1.5',
    );
    expect(() => evaluatePredictions(Float32Array.from([Number.NaN, 1]), [0], 2)).toThrow(
      'probabilities[0][0]: expected a probability in [0, 1], got NaN',
    );
    expect(() => evaluatePredictions(flat, labels, 3, { bins: 0 })).toThrow('bins: expected a positive integer, got 0');
    expect(() => evaluatePredictions(flat, labels, 3, { epsilon: 0 })).toThrow(
      'epsilon: expected a number in (0, 1), got 0',
    );
  });
});

describe('EvaluationAccumulator', () => {
  it('gives the same evaluation batch by batch as all at once', () => {
    const accumulator = new EvaluationAccumulator(3, { bins: 5 });
    accumulator.add(flat.subarray(0, 2 * 3), labels.slice(0, 2));
    // Float32 rows, as the flat whole: the same values to the last bit.
    accumulator.add(
      rows.slice(2).map((row) => Float32Array.from(row)),
      labels.slice(2),
    );
    expect(accumulator.count).toBe(6);
    const whole = evaluatePredictions(flat, labels, 3, { bins: 5 });
    const batched = accumulator.result();
    expect(batched.confusion).toEqual(whole.confusion);
    expect(batched.calibration.map((bin) => bin.count)).toEqual(whole.calibration.map((bin) => bin.count));
    expect(batched.loss).toBeCloseTo(whole.loss, 12);
    expect(batched.expectedCalibrationError).toBeCloseTo(whole.expectedCalibrationError, 12);
  });

  it('names examples by their index in the whole set, and a refused batch changes nothing', () => {
    const accumulator = new EvaluationAccumulator(3, { bins: 5 });
    accumulator.add(flat.subarray(0, 4 * 3), labels.slice(0, 4));
    const before = accumulator.result();
    // The first row of the second batch is fine, its second label is out of range: nothing of it counts.
    expect(() => accumulator.add(flat.subarray(4 * 3), [0, 7])).toThrow(
      'labels[5]: expected an integer class index in 0–2, got 7',
    );
    expect(accumulator.count).toBe(4);
    expect(accumulator.result()).toEqual(before);
    expect(() => new EvaluationAccumulator(3).result()).toThrow('labels: expected at least one example, got none');
    expect(() => new EvaluationAccumulator(1)).toThrow('classes: expected an integer ≥ 2, got 1');
  });
});
