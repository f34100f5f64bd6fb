import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** Reads a file's text, or undefined when it cannot be read (absent cgroup files are normal). */
export type ReadText = (path: string) => string | undefined;

const readOrUndefined: ReadText = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/**
 * The CPUs this process may really use: the cores it may run on, capped by a cgroup CPU quota
 * (a container's `cpus` limit; cgroup v2 `cpu.max`, or v1 `cpu.cfs_quota_us` over
 * `cpu.cfs_period_us`), rounded up. OpenMP only looks at the affinity mask, so under a quota
 * it would start one spinning thread per host core and slow every kernel to a crawl.
 */
export function cpuBudget(cores: number = availableParallelism(), read: ReadText = readOrUndefined): number {
  const quota = cgroupQuota(read);
  const budget = quota === undefined ? cores : Math.min(cores, Math.ceil(quota));
  return Math.max(1, budget);
}

/** The quota in CPUs, or undefined when there is none ("max", -1) or it cannot be read. */
function cgroupQuota(read: ReadText): number | undefined {
  const v2 = read('/sys/fs/cgroup/cpu.max');
  if (v2 !== undefined) {
    const [quota, period] = v2.trim().split(/\s+/);
    return ratio(quota, period);
  }
  return ratio(
    read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')?.trim(),
    read('/sys/fs/cgroup/cpu/cpu.cfs_period_us')?.trim(),
  );
}

function ratio(quota: string | undefined, period: string | undefined): number | undefined {
  const q = Number(quota);
  const p = Number(period);
  if (!Number.isFinite(q) || !Number.isFinite(p) || q <= 0 || p <= 0) return undefined;
  return q / p;
}
