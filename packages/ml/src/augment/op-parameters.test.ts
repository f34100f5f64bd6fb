import { describe, expect, it } from 'vitest';

import {
  GEOMETRIC_OPS,
  RAND_AUGMENT_OPS,
  SIGNED_OPS,
  enhanceFactor,
  isRandAugmentOp,
  posterizeBits,
  rotateDegrees,
  shearFactor,
  solarizeThreshold,
  translatePixels,
} from './op-parameters.js';

describe('RandAugment op parameters', () => {
  it('lists the 15 ops once each, with the geometric ones among the signed ones', () => {
    expect(RAND_AUGMENT_OPS).toHaveLength(15);
    expect(new Set(RAND_AUGMENT_OPS).size).toBe(15);
    expect([...SIGNED_OPS].sort()).toEqual(
      ['brightness', 'color', 'contrast', 'rotate', 'sharpness', 'shearX', 'shearY', 'translateX', 'translateY'].sort(),
    );
    for (const op of GEOMETRIC_OPS) expect(SIGNED_OPS.has(op)).toBe(true);
    expect(isRandAugmentOp('equalize')).toBe(true);
    expect(isRandAugmentOp('cutout')).toBe(false);
  });

  it('leaves every op with a magnitude at its identity for M = 0', () => {
    expect(Math.abs(rotateDegrees(0, -1))).toBe(0);
    expect(shearFactor(0, 1)).toBe(0);
    expect(translatePixels(0, 1, 28)).toBe(0);
    expect(solarizeThreshold(0)).toBe(256);
    expect(posterizeBits(0)).toBe(8);
    expect(enhanceFactor(0, -1)).toBe(1);
    expect(enhanceFactor(0, 1)).toBe(1);
  });

  it('reaches the documented extremes at M = 30', () => {
    expect(rotateDegrees(30, 1)).toBe(30);
    expect(rotateDegrees(30, -1)).toBe(-30);
    expect(shearFactor(30, -1)).toBeCloseTo(-0.3, 12);
    expect(translatePixels(30, 1, 32)).toBeCloseTo(14.4, 12);
    expect(translatePixels(30, -1, 28, 0.25)).toBeCloseTo(-7, 12);
    expect(solarizeThreshold(30)).toBe(0);
    expect(posterizeBits(30)).toBe(4);
    expect(enhanceFactor(30, 1)).toBeCloseTo(1.9, 12);
    expect(enhanceFactor(30, -1)).toBeCloseTo(0.1, 12);
  });

  it('scales linearly in between (M = 9, the paper’s ImageNet setting)', () => {
    expect(rotateDegrees(9, 1)).toBeCloseTo(9, 12);
    expect(shearFactor(9, 1)).toBeCloseTo(0.09, 12);
    expect(translatePixels(9, 1, 28)).toBeCloseTo(3.78, 12);
    expect(solarizeThreshold(9)).toBeCloseTo(179.2, 12);
    expect(posterizeBits(9)).toBe(7); // 8 − round(1.2)
    expect(posterizeBits(15)).toBe(6);
    expect(posterizeBits(27)).toBe(4); // 8 − round(3.6)
    expect(enhanceFactor(9, -1)).toBeCloseTo(0.73, 12);
  });
});
