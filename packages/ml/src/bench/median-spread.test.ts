import { describe, expect, it } from 'vitest';

import { medianSpread } from './median-spread.js';

describe('medianSpread', () => {
  it('takes the middle value of an odd count, whatever the order', () => {
    expect(medianSpread([1.3, 0.9, 1.1])).toEqual({ min: 0.9, median: 1.1, max: 1.3 });
  });

  it('averages the middle two of an even count', () => {
    expect(medianSpread([4, 1, 3, 2])).toEqual({ min: 1, median: 2.5, max: 4 });
  });

  it('is the value itself for one pass', () => {
    expect(medianSpread([0.7])).toEqual({ min: 0.7, median: 0.7, max: 0.7 });
  });

  it('refuses an empty list', () => {
    expect(() => medianSpread([])).toThrow('values: expected at least one pass, got none');
  });
});
