import { describe, expect, it } from 'vitest';

import { selectPseudoLabels } from './policy.js';

const rows = (...values: number[][]) => Float32Array.from(values.flat());

describe('selectPseudoLabels', () => {
  it('keeps rows whose top probability reaches the threshold, reporting the rest', () => {
    const probabilities = rows([0.3, 0.4, 0.3], [0.5, 0.25, 0.25], [0.34, 0.33, 0.33], [0.1, 0.1, 0.8]);
    const result = selectPseudoLabels(probabilities, 3, { threshold: 0.4, mode: 'hard' });
    expect(result.kept).toEqual([0, 1, 3]);
    expect(result.belowThreshold).toEqual([2]);
    expect(result.labels).toEqual([1, 0, 2]);
    expect(Array.from(result.targets)).toEqual([0, 1, 0, 1, 0, 0, 0, 0, 1]);
    expect(result.copies).toEqual([1, 1, 1]);
    expect(result.policy).toEqual({ threshold: 0.4, mode: 'hard', temperature: 1, seed: 0, targetPerClass: null });
  });

  it('defaults to the paper: threshold 0.3, soft targets', () => {
    const result = selectPseudoLabels(rows([0.29, 0.71], [0.5, 0.5]), 2);
    expect(result.policy.threshold).toBe(0.3);
    expect(result.kept).toEqual([0, 1]);
    expect(Array.from(result.targets)).toEqual([Math.fround(0.29), Math.fround(0.71), 0.5, 0.5]);
  });

  it('sharpens soft targets with a temperature: p^(1/T) renormalised', () => {
    const result = selectPseudoLabels(rows([0.25, 0.75]), 2, { temperature: 0.5 });
    expect(result.targets[0]).toBeCloseTo(0.0625 / 0.625, 6);
    expect(result.targets[1]).toBeCloseTo(0.5625 / 0.625, 6);
  });

  it('balances: duplicates small classes to exactly the target, cuts large ones to their most confident', () => {
    // class 0: 5 examples (confidences .9 .6 .8 .7 .95), class 1: 2 examples, class 2: none
    const probabilities = rows(
      [0.9, 0.05, 0.05],
      [0.6, 0.3, 0.1],
      [0.8, 0.1, 0.1],
      [0.7, 0.2, 0.1],
      [0.95, 0.04, 0.01],
      [0.1, 0.8, 0.1],
      [0.2, 0.7, 0.1],
    );
    const result = selectPseudoLabels(probabilities, 3, { mode: 'hard', targetPerClass: 3, seed: 4 });
    expect(result.acceptedPerClass).toEqual([5, 2, 0]);
    expect(result.balancedPerClass).toEqual([3, 3, 0]);
    expect(result.kept).toEqual([0, 2, 4, 5, 6]);
    expect(result.cutByBalancing).toEqual([1, 3]);
    // Class 1: ⌊3/2⌋ = 1 copy each, plus one more for one of the two.
    const class1Copies = result.copies.slice(3);
    expect(class1Copies.reduce((a, b) => a + b, 0)).toBe(3);
    expect([...class1Copies].sort()).toEqual([1, 2]);
  });

  it('chooses the extra copies by seed, the same for the same seed', () => {
    const probabilities = rows(...Array.from({ length: 7 }, () => [0.9, 0.1]), [0.1, 0.9]);
    const copiesFor = (seed: number) => selectPseudoLabels(probabilities, 2, { targetPerClass: 10, seed }).copies;
    expect(copiesFor(1)).toEqual(copiesFor(1));
    expect(
      copiesFor(1)
        .slice(0, 7)
        .reduce((a, b) => a + b, 0),
    ).toBe(10);
    expect(copiesFor(1).slice(7)).toEqual([10]);
    const differs = [2, 3, 4, 5].some((seed) => copiesFor(seed).join() !== copiesFor(1).join());
    expect(differs).toBe(true);
  });

  it("targets the mean accepted count per class with 'mean'", () => {
    const probabilities = rows([0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4], [0.1, 0.9], [0.2, 0.8]);
    const result = selectPseudoLabels(probabilities, 2, { targetPerClass: 'mean', mode: 'hard' });
    expect(result.policy.targetPerClass).toBe(3);
    expect(result.balancedPerClass).toEqual([3, 3]);
  });

  it('handles an empty window', () => {
    const result = selectPseudoLabels(new Float32Array(0), 4, { targetPerClass: 'mean' });
    expect(result).toMatchObject({
      kept: [],
      belowThreshold: [],
      acceptedPerClass: [0, 0, 0, 0],
      balancedPerClass: [0, 0, 0, 0],
    });
  });

  it('names the field or the row for bad input', () => {
    expect(() => selectPseudoLabels(rows([0.5, 0.5]), 2, { threshold: 1.5 })).toThrow(
      'threshold: expected a number in [0, 1], got 1.5',
    );
    expect(() => selectPseudoLabels(rows([0.5, 0.5]), 2, { temperature: 0 })).toThrow(
      'temperature: expected a positive number, got 0',
    );
    expect(() => selectPseudoLabels(rows([0.5, 0.5], [0.6, 0.6]), 2)).toThrow('probabilities[1]: sums to');
    expect(() => selectPseudoLabels(rows([0.5, 0.5], [Number.NaN, 1]), 2)).toThrow(
      'probabilities[1]: value NaN at class 0 is not in [0, 1]',
    );
    expect(() => selectPseudoLabels(new Float32Array(5), 2)).toThrow(
      'probabilities: expected rows of 2 values, got 5 values',
    );
    expect(() => selectPseudoLabels(rows([0.5, 0.5]), 2, { targetPerClass: -1 })).toThrow(
      'targetPerClass: expected a non-negative integer',
    );
  });
});
