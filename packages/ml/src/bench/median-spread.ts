/** A figure measured over several passes: the lowest, the median and the highest. */
export interface MedianSpread {
  min: number;
  median: number;
  max: number;
}

/** Min, median (the mean of the middle two for an even count) and max of `values`. */
export function medianSpread(values: readonly number[]): MedianSpread {
  if (values.length === 0) throw new Error('values: expected at least one pass, got none');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median =
    sorted.length % 2 === 1 ? (sorted[middle] ?? NaN) : ((sorted[middle - 1] ?? NaN) + (sorted[middle] ?? NaN)) / 2;
  return { min: sorted[0] ?? NaN, median, max: sorted[sorted.length - 1] ?? NaN };
}
