import { describe, expect, it } from 'vitest';

import { DEFAULT_PSEUDO_LABEL_THRESHOLD, resolvePseudoLabelPolicy, selectPseudoLabels } from './policy.js';

const flat = (...values: number[][]) => Float32Array.from(values.flat());

describe('selectPseudoLabels: threshold', () => {
  it('keeps rows whose top probability is ≥ the threshold and reports the others by row', () => {
    const probabilities = [
      [0.3, 0.4, 0.3],
      [0.39, 0.31, 0.3],
      [0.1, 0.1, 0.8],
      [0.2, 0.41, 0.39],
    ];
    const result = selectPseudoLabels(probabilities, 3, { threshold: 0.4, mode: 'hard' });
    expect(result.kept).toEqual([0, 2, 3]);
    expect(result.belowThreshold).toEqual([1]);
    expect(result.labels).toEqual([1, 2, 1]);
    expect(result.confidences).toEqual([0.4, 0.8, 0.41]);
    expect(result.copies).toEqual([1, 1, 1]);
    expect(result.acceptedPerClass).toEqual([0, 2, 1]);
    expect(result.balancedPerClass).toEqual([0, 2, 1]);
    expect(result.emptyClasses).toEqual([0]);
  });

  it('compares float32 rows at float32 precision: a float32 0.7 reaches a threshold of 0.7', () => {
    // Math.fround(0.7) = 0.699999988…, below the double 0.7
    expect(selectPseudoLabels(flat([0.3, 0.7]), 2, { threshold: 0.7 }).kept).toEqual([0]);
    expect(selectPseudoLabels([[0.3, 0.7]], 2, { threshold: 0.7 }).kept).toEqual([0]);
    expect(selectPseudoLabels(flat([0.3, 0.7]), 2, { threshold: 0.7000001 }).belowThreshold).toEqual([0]);
    expect(selectPseudoLabels([[0.3, 0.7]], 2, { threshold: 0.7000001 }).belowThreshold).toEqual([0]);
  });

  it('keeps every row at threshold 0 and only certain rows at threshold 1', () => {
    const probabilities = [
      [0.5, 0.5],
      [0, 1],
      [0.999, 0.001],
    ];
    expect(selectPseudoLabels(probabilities, 2, { threshold: 0 }).kept).toEqual([0, 1, 2]);
    const certain = selectPseudoLabels(probabilities, 2, { threshold: 1 });
    expect(certain.kept).toEqual([1]);
    expect(certain.belowThreshold).toEqual([0, 2]);
  });

  it('defaults to the paper: threshold 0.3, soft targets at T = 1, no balancing, seed 0', () => {
    expect(DEFAULT_PSEUDO_LABEL_THRESHOLD).toBe(0.3);
    const result = selectPseudoLabels(flat([0.29, 0.71], [0.5, 0.5]), 2);
    expect(result.policy).toEqual({
      threshold: 0.3,
      mode: 'soft',
      temperature: 1,
      seed: 0,
      balance: 'none',
      targetPerClass: null,
    });
    expect(result.kept).toEqual([0, 1]);
    expect(Array.from(result.targets)).toEqual([Math.fround(0.29), Math.fround(0.71), 0.5, 0.5]);
    const tenClasses = [0.29, ...new Array<number>(9).fill(0.71 / 9)];
    expect(selectPseudoLabels([tenClasses], 10).belowThreshold).toEqual([0]);
  });
});

describe('selectPseudoLabels: targets', () => {
  const probabilities = [
    [0.25, 0.75, 0],
    [0.5, 0.3, 0.2],
  ];

  it('gives soft targets p at T = 1 and p^(1/T) renormalised otherwise', () => {
    expect(Array.from(selectPseudoLabels(probabilities, 3).targets)).toEqual(
      [0.25, 0.75, 0, 0.5, 0.3, 0.2].map(Math.fround),
    );
    const sharpened = Array.from(selectPseudoLabels(probabilities, 3, { temperature: 0.5 }).targets);
    // row 0: 0.0625, 0.5625, 0 over 0.625; row 1: 0.25, 0.09, 0.04 over 0.38
    const expected = [0.1, 0.9, 0, 0.25 / 0.38, 0.09 / 0.38, 0.04 / 0.38];
    sharpened.forEach((value, i) => expect(value).toBeCloseTo(expected[i] ?? Number.NaN, 6));
    const softened = Array.from(selectPseudoLabels(probabilities, 3, { temperature: 2 }).targets);
    const roots = [Math.sqrt(0.5), Math.sqrt(0.3), Math.sqrt(0.2)];
    const rootSum = roots.reduce((a, b) => a + b, 0);
    roots.forEach((root, c) => expect(softened[3 + c]).toBeCloseTo(root / rootSum, 6));
  });

  it('gives one-hot targets of the top class in hard mode, whatever the temperature', () => {
    const result = selectPseudoLabels(probabilities, 3, { mode: 'hard', temperature: 3 });
    expect(Array.from(result.targets)).toEqual([0, 1, 0, 1, 0, 0]);
    expect(result.labels).toEqual([1, 0]);
  });

  it('reads flat Float32Array, Float32Array rows and number[][] alike', () => {
    const asRows = [
      [0.2, 0.5, 0.3],
      [0.9, 0.05, 0.05],
      [0.34, 0.33, 0.33],
    ];
    const policy = { threshold: 0.4, mode: 'hard' as const, targetPerClass: 2, seed: 5 };
    const fromNumbers = selectPseudoLabels(asRows, 3, policy);
    expect(selectPseudoLabels(Float32Array.from(asRows.flat()), 3, policy)).toEqual(
      selectPseudoLabels(
        asRows.map((row) => Float32Array.from(row)),
        3,
        policy,
      ),
    );
    const fromFloat32 = selectPseudoLabels(Float32Array.from(asRows.flat()), 3, policy);
    expect({ ...fromFloat32, confidences: [] }).toEqual({ ...fromNumbers, confidences: [] });
    expect(fromFloat32.confidences).toEqual([Math.fround(0.5), Math.fround(0.9)]);
  });
});

describe('selectPseudoLabels: balancing', () => {
  // class 0: rows 0 (.9), 1 (.6), 2 (.8), 3 (.8), 4 (.95); class 1: rows 5 (.8), 6 (.7); class 2: none;
  // row 7 is below the threshold
  const probabilities = [
    [0.9, 0.05, 0.05],
    [0.6, 0.3, 0.1],
    [0.8, 0.1, 0.1],
    [0.8, 0.15, 0.05],
    [0.95, 0.04, 0.01],
    [0.1, 0.8, 0.1],
    [0.2, 0.7, 0.1],
    [0.2, 0.25, 0.55],
  ];

  it('duplicates small classes to exactly the target and cuts large ones to their most confident', () => {
    const result = selectPseudoLabels(probabilities, 3, { threshold: 0.6, mode: 'hard', targetPerClass: 3 });
    expect(result.acceptedPerClass).toEqual([5, 2, 0]);
    expect(result.balancedPerClass).toEqual([3, 3, 0]);
    expect(result.emptyClasses).toEqual([2]);
    expect(result.belowThreshold).toEqual([7]);
    // class 0 keeps .95, .9 and the first of the two .8s; class 1 (3 = 2·1 + 1): seed 0 draws
    // 0.2664, so [5, 6][⌊0.2664·2⌋ = 0] = row 5 gets the extra copy
    expect(result.kept).toEqual([0, 2, 4, 5, 6]);
    expect(result.copies).toEqual([1, 1, 1, 2, 1]);
    expect(result.cutByBalancing).toEqual([1, 3]);
    expect(result.labels).toEqual([0, 0, 0, 1, 1]);
    expect(Array.from(result.targets)).toEqual([1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0]);
    expect(result.policy).toEqual({
      threshold: 0.6,
      mode: 'hard',
      temperature: 1,
      seed: 0,
      balance: 'fixed',
      targetPerClass: 3,
    });
  });

  it('chooses the extra copies by seed: the same for the same seed, others for other seeds', () => {
    const copiesFor = (seed: number) => selectPseudoLabels(probabilities, 3, { targetPerClass: 3, seed }).copies;
    expect(copiesFor(7)).toEqual(copiesFor(7));
    // seed 0 draws 0.2664 → row 5; seed 1 draws 0.6271 → row 6
    // (row 7 is accepted at the default threshold: class 2's single row gets all 3 copies, no draw)
    expect(copiesFor(0).slice(3)).toEqual([2, 1, 3]);
    expect(copiesFor(1).slice(3)).toEqual([1, 2, 3]);
  });

  it("balances to the mean accepted count of the classes that have any with 'mean', and records it", () => {
    // accepted [5, 2, 0] → (5 + 2) / 2 = 3.5 → 4
    const result = selectPseudoLabels(probabilities, 3, { threshold: 0.6, targetPerClass: 'mean', seed: 2 });
    expect(result.policy).toMatchObject({ balance: 'mean', targetPerClass: 4, seed: 2 });
    expect(result.balancedPerClass).toEqual([4, 4, 0]);
    expect(result.cutByBalancing).toEqual([1]);
    expect(result.copies).toEqual([1, 1, 1, 1, 2, 2]);
  });

  it('returns empty results for an empty window, with every class reported empty', () => {
    for (const empty of [new Float32Array(0), []]) {
      const result = selectPseudoLabels(empty, 4, { targetPerClass: 'mean' });
      expect(result).toEqual({
        kept: [],
        copies: [],
        targets: new Float32Array(0),
        labels: [],
        confidences: [],
        belowThreshold: [],
        cutByBalancing: [],
        acceptedPerClass: [0, 0, 0, 0],
        balancedPerClass: [0, 0, 0, 0],
        emptyClasses: [0, 1, 2, 3],
        policy: { threshold: 0.3, mode: 'soft', temperature: 1, seed: 0, balance: 'mean', targetPerClass: 0 },
      });
    }
  });

  it('reports every row below the threshold when none reaches it', () => {
    const result = selectPseudoLabels([[0.5, 0.5]], 2, { threshold: 0.9, targetPerClass: 5 });
    expect(result.kept).toEqual([]);
    expect(result.belowThreshold).toEqual([0]);
    expect(result.balancedPerClass).toEqual([0, 0]);
    expect(result.emptyClasses).toEqual([0, 1]);
  });
});

describe('selectPseudoLabels: bad input', () => {
  it('names the policy field and what it allows', () => {
    const row = [[0.5, 0.5]];
    expect(() => selectPseudoLabels(row, 2, { threshold: 1.5 })).toThrow(
      'threshold: expected a number in [0, 1], got 1.5',
    );
    expect(() => selectPseudoLabels(row, 2, { threshold: Number.NaN })).toThrow(
      'threshold: expected a number in [0, 1], got NaN',
    );
    expect(() => selectPseudoLabels(row, 2, { temperature: 0 })).toThrow(
      'temperature: expected a positive finite number, got 0',
    );
    expect(() => selectPseudoLabels(row, 2, { temperature: -1 })).toThrow('temperature: expected a positive');
    expect(() => selectPseudoLabels(row, 2, { targetPerClass: -1 })).toThrow(
      "targetPerClass: expected a non-negative integer or 'mean', got -1",
    );
    expect(() => resolvePseudoLabelPolicy({ seed: 1.5 })).toThrow('seed: expected an integer, got 1.5');
    expect(() => resolvePseudoLabelPolicy(JSON.parse('{"mode":"fuzzy"}') as object)).toThrow(
      "mode: expected 'soft' or 'hard', got fuzzy",
    );
  });

  it('names the row that is not a probability vector', () => {
    expect(() => selectPseudoLabels(flat([0.5, 0.5], [0.6, 0.6]), 2)).toThrow(
      'probabilities[1]: expected values summing to 1 ± 0.001 (softmax outputs, not logits), got',
    );
    expect(() =>
      selectPseudoLabels(
        [
          [0.5, 0.5],
          [Number.NaN, 1],
        ],
        2,
      ),
    ).toThrow('probabilities[1][0]: expected a probability in [0, 1], got NaN');
    expect(() =>
      selectPseudoLabels(
        [
          [0.5, 0.5],
          [0.5, 0.5],
          [1.2, -0.2],
        ],
        2,
      ),
    ).toThrow('probabilities[2][0]: expected a probability in [0, 1], got 1.2');
    expect(() => selectPseudoLabels(new Float32Array(5), 2)).toThrow(
      'probabilities: expected a multiple of 2 values (one row of 2 per example), got 5',
    );
  });
});
