import { describe, expect, it } from 'vitest';

import { loadAddon } from './addon.js';
import { cpuBudget } from './cpu-budget.js';

// NS_NATIVE_KERNELS=0 says on purpose that the addon is not there; otherwise it must load.
const expectAddon = process.env['NS_NATIVE_KERNELS'] !== '0';

describe.runIf(expectAddon)('the native addon', () => {
  const load = loadAddon();
  const addon = load.ok ? load.addon : undefined;
  if (addon === undefined) throw new Error(`addon did not load: ${load.ok ? '' : load.reason}`);

  it('computes in place in the buffer it is given', () => {
    const heap = new ArrayBuffer(64);
    const floats = new Float32Array(heap);
    floats.set([1, -2, 3, -4], 0); // a at byte 0
    floats.set([10, 20, 30, 40], 4); // b at byte 16
    addon.add(heap, 0, 16, 32, 4, 4);
    expect(Array.from(floats.subarray(8, 12))).toEqual([11, 18, 33, 36]);
    addon.relu(heap, 0, 48, 4);
    expect(Array.from(floats.subarray(12, 16))).toEqual([1, 0, 3, 0]);
  });

  it('takes a thread count, and refuses one below 1', () => {
    const before = addon.threads();
    try {
      expect(addon.setThreads(1)).toBe(1);
      expect(addon.threads()).toBe(1);
      expect(() => addon.setThreads(0)).toThrow('threads: expected a count of at least 1');
      expect(() => (addon.setThreads as unknown as () => number)()).toThrow('setThreads: expected 1 argument');
    } finally {
      addon.setThreads(before);
    }
  });

  it('refuses ranges outside the heap, naming the tensor', () => {
    const heap = new ArrayBuffer(32);
    expect(() => addon.relu(heap, 16, 0, 8)).toThrow(/^x: 8 floats at byte offset 16 do not fit in the 32-byte heap/);
    expect(() => addon.add(heap, 0, 0, 0, 6, 4)).toThrow('bSize: must divide size');
    expect(() => addon.conv2dForward(heap, new Int32Array(3), 0, 0, -1, 0, 0)).toThrow(
      'dims: expected an Int32Array of 15',
    );
    expect(() =>
      addon.conv2dForward(heap, Int32Array.from([1, 2, 2, 1, 1, 1, 1, 2, 2, 1, 1, 1, 1, 0, 0]), 0, 0, -1, 0, 7),
    ).toThrow('activation: expected 0 (linear) or 1 (relu)');
    expect(() => addon.relu('not a heap' as unknown as ArrayBuffer, 0, 0, 1)).toThrow('heap: expected an ArrayBuffer');
    expect(() => (addon.relu as unknown as (heap: ArrayBuffer) => void)(heap)).toThrow('relu: expected 4 arguments');
  });

  it('reports its threads and convolution library', () => {
    expect(addon.threads()).toBeGreaterThanOrEqual(1);
    if (process.env['OMP_NUM_THREADS'] === undefined) expect(addon.threads()).toBe(cpuBudget());
    expect(addon.convLibrary()).toMatch(/^(winograd 3×3 \+ )?(onednn|openblas)$/);
  });
});

describe('when the addon is switched off', () => {
  it('says why instead of throwing', () => {
    const saved = process.env['NS_NATIVE_KERNELS'];
    process.env['NS_NATIVE_KERNELS'] = '0';
    try {
      expect(loadAddon()).toEqual({ ok: false, reason: 'disabled by NS_NATIVE_KERNELS=0' });
    } finally {
      if (saved === undefined) delete process.env['NS_NATIVE_KERNELS'];
      else process.env['NS_NATIVE_KERNELS'] = saved;
    }
  });
});
