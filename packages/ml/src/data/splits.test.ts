import { describe, expect, it } from 'vitest';

import type { LabeledImages } from './fashion-mnist.js';
import { selectImages, splitDataset, splitLabeledUnlabeled, takeSplit, type DatasetSplit } from './splits.js';

/** 60 examples, classes 0, 1, 2 in turn. */
const labels = Array.from({ length: 60 }, (_, i) => i % 3);
const countPerClass = (indices: number[]) => [0, 1, 2].map((c) => indices.filter((i) => labels[i] === c).length);
const isAscending = (indices: number[]) => indices.every((value, i) => i === 0 || value > (indices[i - 1] ?? -1));

function expectPartition(split: DatasetSplit, count: number): void {
  const all = [...split.labeled, ...split.unlabeled, ...split.eval];
  expect(all).toHaveLength(count);
  expect(new Set(all).size).toBe(count);
  for (const part of [split.labeled, split.unlabeled, split.eval]) expect(isAscending(part)).toBe(true);
}

describe('splitDataset', () => {
  it('takes N per class for labeled and eval, the rest unlabeled, disjoint and complete', () => {
    const split = splitDataset(labels, 3, { labeled: { perClass: 4 }, eval: { perClass: 5 }, seed: 7 });
    expect(countPerClass(split.labeled)).toEqual([4, 4, 4]);
    expect(countPerClass(split.eval)).toEqual([5, 5, 5]);
    expect(countPerClass(split.unlabeled)).toEqual([11, 11, 11]);
    expectPartition(split, 60);
  });

  it('takes N in all for labeled or eval, whatever their classes', () => {
    const split = splitDataset(labels, 3, { labeled: { total: 10 }, eval: { total: 7 }, seed: 3 });
    expect([split.labeled.length, split.eval.length, split.unlabeled.length]).toEqual([10, 7, 43]);
    expectPartition(split, 60);
    const mixed = splitDataset(labels, 3, { labeled: { perClass: 2 }, eval: { total: 9 }, seed: 3 });
    expect(countPerClass(mixed.labeled)).toEqual([2, 2, 2]);
    expect(mixed.eval).toHaveLength(9);
    expectPartition(mixed, 60);
  });

  it('gives identical indices for the same seed and other indices for another seed', () => {
    const options = { labeled: { perClass: 4 }, eval: { total: 12 } };
    const split = splitDataset(labels, 3, { ...options, seed: 7 });
    expect(splitDataset(labels, 3, { ...options, seed: 7 })).toEqual(split);
    const other = splitDataset(labels, 3, { ...options, seed: 8 });
    expect(other.labeled).not.toEqual(split.labeled);
    expect(other.eval).not.toEqual(split.eval);
  });

  it('draws eval first: the same seed gives the same eval set whatever labeled asks for', () => {
    const small = splitDataset(labels, 3, { labeled: { perClass: 1 }, eval: { perClass: 3 }, seed: 5 });
    const large = splitDataset(labels, 3, { labeled: { total: 30 }, eval: { perClass: 3 }, seed: 5 });
    expect(large.eval).toEqual(small.eval);
    expect(large.labeled).not.toEqual(small.labeled);
  });

  it('defaults to no eval part and seed 0', () => {
    const split = splitDataset(labels, 3, { labeled: { perClass: 2 } });
    expect(split.eval).toEqual([]);
    expect(split).toEqual(splitDataset(labels, 3, { labeled: { perClass: 2 }, eval: { total: 0 }, seed: 0 }));
  });

  it('names the class and part that has too few examples', () => {
    const few = [0, 0, 0, 1, 1, 2, 2, 2];
    expect(() => splitDataset(few, 3, { labeled: { perClass: 3 } })).toThrow(
      'labeled.perClass: class 1 has 2 examples, fewer than the 3 asked for',
    );
    expect(() => splitDataset(few, 3, { labeled: { perClass: 1 }, eval: { perClass: 2 } })).toThrow(
      'labeled.perClass: class 1 has 0 examples left after eval (2 in all), fewer than the 1 asked for',
    );
    expect(() => splitDataset(few, 4, { labeled: { perClass: 1 } })).toThrow(
      'labeled.perClass: class 3 has 0 examples, fewer than the 1 asked for',
    );
    expect(() => splitDataset(few, 3, { labeled: { total: 1 }, eval: { perClass: 3 } })).toThrow(
      'eval.perClass: class 1 has 2 examples, fewer than the 3 asked for',
    );
    expect(() => splitDataset(few, 3, { labeled: { total: 4 }, eval: { total: 5 } })).toThrow(
      'labeled.total: expected at most 3, the examples left (5 of 8 are in eval), got 4',
    );
    expect(() => splitDataset(few, 3, { labeled: { total: 9 } })).toThrow(
      'labeled.total: expected at most 8, the examples left, got 9',
    );
  });

  it('names a bad label, size or seed', () => {
    expect(() => splitDataset([0, 5], 2, { labeled: { perClass: 1 } })).toThrow(
      'labels[1]: expected an integer class in 0–1, got 5',
    );
    expect(() => splitDataset(labels, 3, { labeled: { perClass: 0 } })).toThrow(
      'labeled.perClass: expected a positive integer, got 0',
    );
    expect(() => splitDataset(labels, 3, { labeled: { total: 1 }, eval: { total: -1 } })).toThrow(
      'eval.total: expected a non-negative integer, got -1',
    );
    expect(() => splitDataset(labels, 3, { labeled: JSON.parse('{}') as { total: number } })).toThrow(
      'labeled: expected { perClass: n } or { total: n }, got {}',
    );
    expect(() => splitDataset(labels, 3, { labeled: { total: 1 }, seed: 0.5 })).toThrow(
      'seed: expected an integer, got 0.5',
    );
  });
});

describe('splitLabeledUnlabeled', () => {
  it('is splitDataset with N per class labeled and no eval', () => {
    const split = splitLabeledUnlabeled(labels, 3, 4, 7);
    expect(split).toEqual({
      labeled: splitDataset(labels, 3, { labeled: { perClass: 4 }, seed: 7 }).labeled,
      unlabeled: splitDataset(labels, 3, { labeled: { perClass: 4 }, seed: 7 }).unlabeled,
    });
    expect(countPerClass(split.labeled)).toEqual([4, 4, 4]);
    expect(split.unlabeled).toHaveLength(48);
  });
});

describe('takeSplit', () => {
  // 6 images of 1×2×1 pixels: image i holds [10i, 10i + 1]; labels 0 1 2 0 1 2
  const data: LabeledImages = {
    images: Uint8Array.from({ length: 12 }, (_, p) => 10 * Math.floor(p / 2) + (p % 2)),
    labels: Uint8Array.from([0, 1, 2, 0, 1, 2]),
    count: 6,
    height: 1,
    width: 2,
    channels: 1,
    classNames: ['a', 'b', 'c'],
  };

  it('gathers each part and keeps the unlabeled labels apart from their images', () => {
    const parts = takeSplit(data, { labeled: [0, 4], unlabeled: [1, 5], eval: [3] });
    expect(Array.from(parts.labeled.images)).toEqual([0, 1, 40, 41]);
    expect(Array.from(parts.labeled.labels)).toEqual([0, 1]);
    expect(parts.labeled.count).toBe(2);
    expect('labels' in parts.unlabeled).toBe(false);
    expect(Array.from(parts.unlabeled.images)).toEqual([10, 11, 50, 51]);
    expect(parts.unlabeled.count).toBe(2);
    expect(Array.from(parts.unlabeledTrueLabels)).toEqual([1, 2]);
    expect(Array.from(parts.eval.labels)).toEqual([0]);
    expect(parts.eval.classNames).toEqual(['a', 'b', 'c']);
  });

  it('names an index outside the set', () => {
    expect(() => selectImages(data, [0, 6])).toThrow('indices[1]: expected an integer in 0–5, got 6');
  });
});
