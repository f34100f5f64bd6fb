import { describe, expect, it } from 'vitest';

import { RAND_AUGMENT_OPS, SIGNED_OPS } from './op-parameters.js';
import { sampleRandAugmentPlan } from './plan.js';

describe('sampleRandAugmentPlan', () => {
  it('gives each image numOps steps at the given magnitude', () => {
    const plan = sampleRandAugmentPlan(5, { numOps: 3, magnitude: 9, seed: 1 });
    expect(plan).toHaveLength(5);
    for (const steps of plan) {
      expect(steps).toHaveLength(3);
      for (const step of steps) {
        expect(RAND_AUGMENT_OPS).toContain(step.op);
        expect(step.magnitude).toBe(9);
        expect([-1, 1]).toContain(step.sign);
      }
    }
    expect(sampleRandAugmentPlan(4, { numOps: 0, magnitude: 9, seed: 1 })).toEqual([[], [], [], []]);
    expect(sampleRandAugmentPlan(0, { numOps: 2, magnitude: 9, seed: 1 })).toEqual([]);
  });

  it('is a function of the seed: the same seed gives the same plan, another seed another plan', () => {
    const options = { numOps: 2, magnitude: 10, seed: 42 };
    expect(sampleRandAugmentPlan(64, options)).toEqual(sampleRandAugmentPlan(64, options));
    expect(sampleRandAugmentPlan(64, { ...options, seed: 43 })).not.toEqual(sampleRandAugmentPlan(64, options));
  });

  it('draws images in order, so a smaller batch is a prefix of a larger one with the same seed', () => {
    const options = { numOps: 2, magnitude: 10, seed: 7 };
    expect(sampleRandAugmentPlan(10, options).slice(0, 4)).toEqual(sampleRandAugmentPlan(4, options));
  });

  it('samples every op about equally often and signs about half negative', () => {
    const plan = sampleRandAugmentPlan(20_000, { numOps: 2, magnitude: 9, seed: 2024 });
    const counts = new Map<string, number>();
    let signed = 0;
    let negative = 0;
    for (const step of plan.flat()) {
      counts.set(step.op, (counts.get(step.op) ?? 0) + 1);
      if (SIGNED_OPS.has(step.op)) {
        signed++;
        if (step.sign === -1) negative++;
      } else {
        expect(step.sign).toBe(1);
      }
    }
    // 40,000 draws: 2,666.7 expected per op, standard deviation 50; ±10% is more than 5 deviations.
    const expected = 40_000 / RAND_AUGMENT_OPS.length;
    expect([...counts.keys()].sort()).toEqual([...RAND_AUGMENT_OPS].sort());
    for (const count of counts.values()) expect(Math.abs(count - expected)).toBeLessThan(0.1 * expected);
    expect(Math.abs(negative / signed - 0.5)).toBeLessThan(0.02);
  });

  it('names the bad field and what it allows', () => {
    const options = { numOps: 2, magnitude: 9, seed: 1 };
    expect(() => sampleRandAugmentPlan(2, { ...options, magnitude: 31 })).toThrow(
      'magnitude: expected a number from 0 to 30, got 31',
    );
    expect(() => sampleRandAugmentPlan(2, { ...options, magnitude: -0.5 })).toThrow('magnitude: expected');
    expect(() => sampleRandAugmentPlan(2, { ...options, magnitude: Number.NaN })).toThrow('got NaN');
    expect(() => sampleRandAugmentPlan(2, { ...options, numOps: 1.5 })).toThrow(
      'numOps: expected a non-negative integer, got 1.5',
    );
    expect(() => sampleRandAugmentPlan(2, { ...options, numOps: -1 })).toThrow('numOps: expected');
    expect(() => sampleRandAugmentPlan(2, { ...options, seed: 0.5 })).toThrow('seed: expected an integer, got 0.5');
    expect(() => sampleRandAugmentPlan(-1, options)).toThrow('batchSize: expected a non-negative integer, got -1');
  });
});
