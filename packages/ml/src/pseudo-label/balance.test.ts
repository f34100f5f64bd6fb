import { describe, expect, it } from 'vitest';

import { createRandom, shuffledIndices } from '../random.js';
import { balanceClasses, meanTargetPerClass, type AcceptedExample } from './balance.js';

const example = (index: number, label: number, confidence: number): AcceptedExample => ({ index, label, confidence });

/** Class 0: rows 2, 5, 9; class 1: rows 0, 4; class 2: seven rows. */
const windowExamples: AcceptedExample[] = [
  example(0, 1, 0.6),
  example(1, 2, 0.9),
  example(2, 0, 0.9),
  example(3, 2, 0.8),
  example(4, 1, 0.5),
  example(5, 0, 0.8),
  example(6, 2, 0.7),
  example(7, 2, 0.7),
  example(8, 2, 0.6),
  example(9, 0, 0.7),
  example(10, 2, 0.5),
  example(11, 2, 0.4),
];

const copiesByIndex = (result: { kept: number[]; copies: number[] }): Record<number, number> =>
  Object.fromEntries(result.kept.map((index, k) => [index, result.copies[k] ?? 0]));

describe('balanceClasses', () => {
  it('duplicates small classes to exactly the target: ⌊t/n⌋ copies each, one more for a seeded subset', () => {
    const result = balanceClasses(windowExamples, 3, { targetPerClass: 7, seed: 0 });
    // Seed 0 draws 0.2664 then 0.0003. Class 0 (3 rows, 7 = 3·2 + 1): one extra copy, to
    // [2, 5, 9][⌊0.2664·3⌋ = 0] = row 2. Class 1 (2 rows, 7 = 2·3 + 1): to [0, 4][⌊0.0003·2⌋ = 0] = row 0.
    // Class 2 has exactly 7: one copy each, no draw.
    expect(copiesByIndex(result)).toEqual({
      0: 4,
      1: 1,
      2: 3,
      3: 1,
      4: 3,
      5: 2,
      6: 1,
      7: 1,
      8: 1,
      9: 2,
      10: 1,
      11: 1,
    });
    expect(result.kept).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(result.cut).toEqual([]);
    expect(result.acceptedPerClass).toEqual([3, 2, 7]);
    expect(result.balancedPerClass).toEqual([7, 7, 7]);
    expect(result.targetPerClass).toBe(7);
  });

  it('gives the same copies for the same seed and chooses other duplicates for other seeds', () => {
    const extraInClass0 = (seed: number) => {
      const copies = copiesByIndex(balanceClasses(windowExamples, 3, { targetPerClass: 7, seed }));
      return [2, 5, 9].filter((index) => copies[index] === 3);
    };
    expect(balanceClasses(windowExamples, 3, { targetPerClass: 7, seed: 4 })).toEqual(
      balanceClasses(windowExamples, 3, { targetPerClass: 7, seed: 4 }),
    );
    // First draws: seed 0 → 0.2664, seed 1 → 0.6271, seed 4 → 0.9236; ⌊draw·3⌋ picks the row.
    expect(extraInClass0(0)).toEqual([2]);
    expect(extraInClass0(1)).toEqual([5]);
    expect(extraInClass0(4)).toEqual([9]);
  });

  it('cuts a large class to its most confident examples, ties to the lower index', () => {
    const large = [
      example(0, 0, 0.9),
      example(1, 0, 0.6),
      example(2, 0, 0.8),
      example(3, 0, 0.8),
      example(4, 0, 0.95),
      example(5, 1, 0.7),
    ];
    const result = balanceClasses(large, 2, { targetPerClass: 3 });
    expect(result.kept).toEqual([0, 2, 4, 5]);
    expect(copiesByIndex(result)).toEqual({ 0: 1, 2: 1, 4: 1, 5: 3 });
    expect(result.cut).toEqual([1, 3]);
    expect(result.balancedPerClass).toEqual([3, 3]);
  });

  it("targets the mean over classes that have examples with 'mean', and leaves empty classes at 0", () => {
    // accepted [5, 2, 0, 0] → mean of 5 and 2 = 3.5 → 4
    const result = balanceClasses(
      [0.9, 0.8, 0.7, 0.6, 0.5]
        .map((confidence, index) => example(index, 0, confidence))
        .concat(example(5, 1, 0.9), example(6, 1, 0.9)),
      4,
      { targetPerClass: 'mean' },
    );
    expect(result.targetPerClass).toBe(4);
    expect(result.acceptedPerClass).toEqual([5, 2, 0, 0]);
    expect(result.balancedPerClass).toEqual([4, 4, 0, 0]);
    expect(result.emptyClasses).toEqual([2, 3]);
    expect(result.cut).toEqual([4]);
    expect(copiesByIndex(result)).toEqual({ 0: 1, 1: 1, 2: 1, 3: 1, 5: 2, 6: 2 });
    expect(meanTargetPerClass([0, 0])).toBe(0);
    expect(meanTargetPerClass([1, 2, 0])).toBe(2);
  });

  it('depends only on the windowExamples, not on the order its examples come in', () => {
    const shuffled = Array.from(
      shuffledIndices(windowExamples.length, createRandom(3)),
      (i) => windowExamples[i] ?? example(0, 0, 0),
    );
    expect(balanceClasses(shuffled, 3, { targetPerClass: 5, seed: 9 })).toEqual(
      balanceClasses(windowExamples, 3, { targetPerClass: 5, seed: 9 }),
    );
  });

  it('hits the target exactly in every non-empty class of random windows', () => {
    const random = createRandom(11);
    for (let trial = 0; trial < 50; trial++) {
      const classes = 1 + Math.floor(random() * 6);
      const size = Math.floor(random() * 40);
      const accepted = Array.from({ length: size }, (_, index) =>
        example(index, Math.floor(random() * classes), Math.round(random() * 10) / 10),
      );
      const target = Math.floor(random() * 15);
      const result = balanceClasses(accepted, classes, { targetPerClass: target, seed: trial });
      const perClass = new Array<number>(classes).fill(0);
      result.kept.forEach((index, k) => {
        const label = accepted[index]?.label ?? -1;
        perClass[label] = (perClass[label] ?? 0) + (result.copies[k] ?? 0);
        const count = result.acceptedPerClass[label] ?? 0;
        // n < t: ⌊t/n⌋ or ⌊t/n⌋ + 1 copies; n ≥ t: one copy
        const base = count < target ? Math.floor(target / count) : 1;
        expect([base, base + 1]).toContain(result.copies[k]);
      });
      expect(perClass).toEqual(result.acceptedPerClass.map((count) => (count === 0 ? 0 : target)));
      expect(perClass).toEqual(result.balancedPerClass);
      expect([...result.kept, ...result.cut].sort((a, b) => a - b)).toEqual(accepted.map((e) => e.index));
    }
  });

  it('cuts everything for a target of 0 and returns empty counts for an empty windowExamples', () => {
    expect(balanceClasses(windowExamples, 3, { targetPerClass: 0 })).toMatchObject({
      kept: [],
      copies: [],
      balancedPerClass: [0, 0, 0],
      cut: windowExamples.map((e) => e.index),
    });
    expect(balanceClasses([], 3, { targetPerClass: 'mean' })).toEqual({
      kept: [],
      copies: [],
      cut: [],
      acceptedPerClass: [0, 0, 0],
      balancedPerClass: [0, 0, 0],
      emptyClasses: [0, 1, 2],
      targetPerClass: 0,
    });
  });

  it('names the field of a bad example or option', () => {
    expect(() => balanceClasses([example(0, 0, 0.5), example(0, 1, 0.5)], 2, { targetPerClass: 1 })).toThrow(
      'accepted[1].index: 0 appears more than once',
    );
    expect(() => balanceClasses([example(0, 2, 0.5)], 2, { targetPerClass: 1 })).toThrow(
      'accepted[0].label: expected an integer in 0–1, got 2',
    );
    expect(() => balanceClasses([example(-1, 0, 0.5)], 2, { targetPerClass: 1 })).toThrow(
      'accepted[0].index: expected a non-negative integer, got -1',
    );
    expect(() => balanceClasses([example(0, 0, Number.NaN)], 2, { targetPerClass: 1 })).toThrow(
      'accepted[0].confidence: expected a number in [0, 1], got NaN',
    );
    expect(() => balanceClasses([], 2, { targetPerClass: 2.5 })).toThrow(
      "targetPerClass: expected a non-negative integer or 'mean', got 2.5",
    );
    expect(() => balanceClasses([], 2, { targetPerClass: 1, seed: 0.5 })).toThrow('seed: expected an integer, got 0.5');
    expect(() => balanceClasses([], 0, { targetPerClass: 1 })).toThrow('classes: expected a positive integer, got 0');
  });
});
