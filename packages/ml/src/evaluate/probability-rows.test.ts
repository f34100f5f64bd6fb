import { describe, expect, it } from 'vitest';

import { readProbabilityRows } from './probability-rows.js';

describe('readProbabilityRows', () => {
  it('reads flat and row-array input alike: top class (lowest index on a tie) and its probability', () => {
    const asRows = [
      [0.2, 0.5, 0.3],
      [0.4, 0.2, 0.4],
    ];
    for (const input of [asRows, asRows.map((values) => Float32Array.from(values)), Float32Array.from(asRows.flat())]) {
      const table = readProbabilityRows(input, 3);
      expect(table.rows).toBe(2);
      expect(Array.from(table.topClass)).toEqual([1, 0]);
      expect(Array.from(table.topProbability)).toEqual(
        input === asRows ? [0.5, 0.4] : [Math.fround(0.5), Math.fround(0.4)],
      );
      expect(table.valueAt(1, 2)).toBeCloseTo(0.4, 6);
    }
  });

  it('marks float32 rows, so thresholds can be compared at their precision', () => {
    expect(Array.from(readProbabilityRows(Float32Array.from([0.3, 0.7]), 2).float32)).toEqual([1]);
    expect(Array.from(readProbabilityRows(Float64Array.from([0.3, 0.7]), 2).float32)).toEqual([0]);
    expect(Array.from(readProbabilityRows([Float32Array.from([0.3, 0.7]), [0.5, 0.5]], 2).float32)).toEqual([1, 0]);
  });

  it('reads an empty window as zero rows', () => {
    expect(readProbabilityRows([], 10).rows).toBe(0);
    expect(readProbabilityRows(new Float32Array(0), 10).rows).toBe(0);
  });

  it('names the row and class of a value that is not a probability, and the row of a bad sum or length', () => {
    expect(() =>
      readProbabilityRows(
        [
          [0.5, 0.5],
          [Number.NaN, 1],
        ],
        2,
      ),
    ).toThrow('probabilities[1][0]: expected a probability in [0, 1], got NaN');
    expect(() =>
      readProbabilityRows(
        [
          [0.2, 0.3, 0.5],
          [0.6, 0.5, -0.1],
        ],
        3,
      ),
    ).toThrow('probabilities[1][2]: expected a probability in [0, 1], got -0.1');
    expect(() =>
      readProbabilityRows(
        [
          [0.5, 0.5],
          [0.5, 0.5],
          [0.6, 0.6],
        ],
        2,
      ),
    ).toThrow('probabilities[2]: expected values summing to 1 ± 0.001 (softmax outputs, not logits), got 1.2');
    // 1 ± 1e-3 is accepted, beyond it is not
    expect(readProbabilityRows([[0.5, 0.5009]], 2).rows).toBe(1);
    expect(() => readProbabilityRows([[0.5, 0.5011]], 2)).toThrow('probabilities[0]: expected values summing to 1');
    expect(() => readProbabilityRows([[0.5, 0.5], [1]], 2)).toThrow(
      'probabilities[1]: expected 2 values (one per class), got 1',
    );
    expect(() => readProbabilityRows(new Float32Array(5), 2)).toThrow(
      'probabilities: expected a multiple of 2 values (one row of 2 per example), got 5',
    );
    expect(() => readProbabilityRows([], 1)).toThrow('classes: expected an integer ≥ 2, got 1');
  });
});
