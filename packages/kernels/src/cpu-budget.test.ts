import { describe, expect, it } from 'vitest';

import { cpuBudget, type ReadText } from './cpu-budget.js';

const files =
  (entries: Record<string, string>): ReadText =>
  (path) =>
    entries[path];

describe('cpuBudget', () => {
  it('is the core count without a quota', () => {
    expect(cpuBudget(8, files({}))).toBe(8);
    expect(cpuBudget(8, files({ '/sys/fs/cgroup/cpu.max': 'max 100000\n' }))).toBe(8);
    expect(
      cpuBudget(
        8,
        files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' }),
      ),
    ).toBe(8);
  });

  it('caps the cores at a cgroup v2 quota, rounded up', () => {
    expect(cpuBudget(64, files({ '/sys/fs/cgroup/cpu.max': '200000 100000\n' }))).toBe(2);
    expect(cpuBudget(64, files({ '/sys/fs/cgroup/cpu.max': '150000 100000' }))).toBe(2);
    expect(cpuBudget(64, files({ '/sys/fs/cgroup/cpu.max': '50000 100000' }))).toBe(1);
  });

  it('reads a cgroup v1 quota', () => {
    const v1 = {
      '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '400000\n',
      '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n',
    };
    expect(cpuBudget(64, files(v1))).toBe(4);
  });

  it('never exceeds the cores, and never goes below one', () => {
    expect(cpuBudget(2, files({ '/sys/fs/cgroup/cpu.max': '800000 100000' }))).toBe(2);
    expect(cpuBudget(0, files({}))).toBe(1);
    expect(cpuBudget(4, files({ '/sys/fs/cgroup/cpu.max': 'garbage' }))).toBe(4);
  });
});
