import { Dtype, type WeightSpec } from '@noisystudent/proto';
import { describe, expect, it } from 'vitest';

import { fromWeightSpecs, toWeightSpecs } from './weight-layout.js';

describe('toWeightSpecs', () => {
  it('lays tfjs weights end to end, 4 bytes per element', () => {
    const specs = toWeightSpecs(
      [
        { name: 'conv/kernel', shape: [3, 3, 1, 2], dtype: 'float32' },
        { name: 'step', shape: [], dtype: 'int32' },
        { name: 'dense/bias', shape: [5], dtype: 'float32' },
      ],
      (18 + 1 + 5) * 4,
    );
    expect(specs).toEqual([
      { name: 'conv/kernel', shape: [3, 3, 1, 2], dtype: Dtype.FLOAT32, byteOffset: 0, byteLength: 72 },
      { name: 'step', shape: [], dtype: Dtype.INT32, byteOffset: 72, byteLength: 4 },
      { name: 'dense/bias', shape: [5], dtype: Dtype.FLOAT32, byteOffset: 76, byteLength: 20 },
    ]);
  });

  it('refuses dtypes and quantization an artifact cannot hold, and data the manifest does not cover', () => {
    expect(() => toWeightSpecs([{ name: 'mask', shape: [2], dtype: 'bool' }], 2)).toThrow(
      'model weight mask: expected dtype float32 or int32, got bool',
    );
    expect(() =>
      toWeightSpecs(
        [{ name: 'w', shape: [2], dtype: 'float32', quantization: { dtype: 'uint8', scale: 1, min: 0 } }],
        2,
      ),
    ).toThrow('model weight w: expected unquantized weights');
    expect(() => toWeightSpecs([{ name: 'w', shape: [2], dtype: 'float32' }], 12)).toThrow(
      'model weights: the weight manifest describes 8 bytes, tfjs saved 12',
    );
  });
});

describe('fromWeightSpecs', () => {
  const specs: WeightSpec[] = [
    { name: 'a', shape: [2, 2], dtype: Dtype.FLOAT32, byteOffset: 0, byteLength: 16 },
    { name: 'b', shape: [3], dtype: Dtype.INT32, byteOffset: 16, byteLength: 12 },
  ];

  it('gives back the tfjs manifest of a well-formed layout', () => {
    expect(fromWeightSpecs(specs, 28)).toEqual([
      { name: 'a', shape: [2, 2], dtype: 'float32' },
      { name: 'b', shape: [3], dtype: 'int32' },
    ]);
    expect(fromWeightSpecs([], 0)).toEqual([]);
  });

  it('names the weight where the layout breaks', () => {
    const [a, b] = specs;
    if (a === undefined || b === undefined) throw new Error('two specs expected');
    expect(() => fromWeightSpecs([a, { ...b, byteOffset: 20 }], 32)).toThrow(
      'weightSpecs[1] (b): expected byteOffset 16 (right after the previous weight), got 20',
    );
    expect(() => fromWeightSpecs([a, { ...b, name: 'a' }], 28)).toThrow(
      'weightSpecs[1] (a): expected a unique weight name, got a duplicate',
    );
    expect(() => fromWeightSpecs([{ ...a, name: '' }], 16)).toThrow('weightSpecs[0] (): expected a weight name');
    expect(() => fromWeightSpecs(specs, 24)).toThrow(
      'weightSpecs[1] (b): expected bytes 16–28 in weightData, which holds only 24',
    );
    expect(() => fromWeightSpecs([], 4)).toThrow('weightData: expected 0 bytes (the end of no weight spec), got 4');
    expect(() => fromWeightSpecs([{ ...a, dtype: Dtype.UNSPECIFIED }], 16)).toThrow(
      'weightSpecs[0] (a): expected dtype DTYPE_FLOAT32 or DTYPE_INT32, got 0 (UNSPECIFIED)',
    );
  });
});
