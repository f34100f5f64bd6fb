import { describe, expect, it } from 'vitest';

import { applyTemperature, writePseudoLabelTarget } from './targets.js';

describe('applyTemperature', () => {
  it('keeps p at T = 1 and computes p^(1/T) / Σ p^(1/T) otherwise', () => {
    expect(applyTemperature([0.25, 0.75], 1)).toEqual([0.25, 0.75]);
    // T = 0.5: squares 0.0625 and 0.5625, sum 0.625
    const sharp = applyTemperature([0.25, 0.75], 0.5);
    expect(sharp[0]).toBeCloseTo(0.1, 12);
    expect(sharp[1]).toBeCloseTo(0.9, 12);
    // T = 2: square roots 0.5 and 0.866…, sum 1.366…
    const soft = applyTemperature([0.25, 0.75], 2);
    expect(soft[0]).toBeCloseTo(0.5 / (0.5 + Math.sqrt(0.75)), 12);
    expect(soft[1]).toBeCloseTo(Math.sqrt(0.75) / (0.5 + Math.sqrt(0.75)), 12);
  });

  it('tends to one-hot for a tiny T without underflowing to NaN, and shares ties', () => {
    // 0.6^10000 underflows to 0 in double precision: p^(1/T) / Σ would be 0/0.
    expect(applyTemperature([0.4, 0.6, 0], 1e-4)).toEqual([0, 1, 0]);
    expect(applyTemperature([0.45, 0.45, 0.1], 1e-4)).toEqual([0.5, 0.5, 0]);
  });

  it('renormalises a row that sums to 1 within tolerance, at T = 1', () => {
    const [low = 0, high = 0] = applyTemperature([0.2, 0.7995], 1);
    expect(low + high).toBeCloseTo(1, 15);
    expect(low).toBeCloseTo(0.2 / 0.9995, 15);
  });

  it('names the temperature when it is not positive and finite', () => {
    expect(() => applyTemperature([0.5, 0.5], 0)).toThrow('temperature: expected a positive finite number, got 0');
    expect(() => applyTemperature([0.5, 0.5], Number.POSITIVE_INFINITY)).toThrow('got Infinity');
  });
});

describe('writePseudoLabelTarget', () => {
  it('writes one-hot for hard targets and the tempered distribution for soft ones, at the offset', () => {
    const out = new Float32Array(7).fill(9);
    writePseudoLabelTarget(out, 1, [0.2, 0.3, 0.5], 2, 'hard', 0.5);
    writePseudoLabelTarget(out, 4, [0.25, 0.75, 0], 1, 'soft', 0.5);
    expect(Array.from(out)).toEqual([9, 0, 0, 1, Math.fround(0.1), Math.fround(0.9), 0]);
  });
});
