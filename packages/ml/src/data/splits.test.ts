import { describe, expect, it } from 'vitest';

import { splitLabeledUnlabeled } from './splits.js';

describe('splitLabeledUnlabeled', () => {
  const labels = Array.from({ length: 60 }, (_, i) => i % 3);

  it('takes N per class, the rest unlabeled, disjoint and complete, the same for the same seed', () => {
    const split = splitLabeledUnlabeled(labels, 3, 4, 7);
    expect(split.labeled).toHaveLength(12);
    expect(split.unlabeled).toHaveLength(48);
    expect([0, 1, 2].map((c) => split.labeled.filter((i) => labels[i] === c).length)).toEqual([4, 4, 4]);
    expect(new Set([...split.labeled, ...split.unlabeled]).size).toBe(60);
    expect(splitLabeledUnlabeled(labels, 3, 4, 7)).toEqual(split);
    expect(splitLabeledUnlabeled(labels, 3, 4, 8).labeled).not.toEqual(split.labeled);
  });

  it('names a class that has too few examples', () => {
    expect(() => splitLabeledUnlabeled([0, 0, 1], 2, 2, 1)).toThrow(
      'class 1: has 1 examples, fewer than labeledPerClass = 2',
    );
    expect(() => splitLabeledUnlabeled([0, 5], 2, 1, 1)).toThrow('labels[1]: expected 0–1, got 5');
  });
});
