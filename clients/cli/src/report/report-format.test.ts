import { describe, expect, it } from 'vitest';

import { formatCount, formatDuration, formatPercent, formatPointDelta, formatTime } from './report-format.js';

describe('report formatting', () => {
  it('formats shares, deltas and counts', () => {
    expect(formatPercent(0.89374)).toBe('89.4%');
    expect(formatPercent(1, 0)).toBe('100%');
    expect(formatPercent(undefined)).toBe('—');
    expect(formatPercent(Number.NaN)).toBe('—');
    expect(formatPointDelta(0.0042)).toBe('+0.4 pt');
    expect(formatPointDelta(-0.0167)).toBe('−1.7 pt');
    expect(formatCount(47_120)).toBe('47,120');
    expect(formatCount(undefined)).toBe('—');
  });

  it('formats times in UTC and durations between them', () => {
    expect(formatTime('2025-05-14T10:42:07.512+02:00')).toBe('2025-05-14 08:42:07 UTC');
    expect(formatTime('not a time')).toBe('not a time');
    expect(formatTime('')).toBe('—');
    expect(formatDuration('2025-05-14T08:00:00Z', '2025-05-14T08:00:45Z')).toBe('45 s');
    expect(formatDuration('2025-05-14T08:05:12Z', '2025-05-14T08:47:40Z')).toBe('42 min 28 s');
    expect(formatDuration('2025-05-14T08:00:00Z', '2025-05-14T10:05:00Z')).toBe('2 h 5 min');
    expect(formatDuration('2025-05-14T09:00:00Z', '2025-05-14T08:00:00Z')).toBe('—');
    expect(formatDuration('', '2025-05-14T08:00:00Z')).toBe('—');
  });
});
