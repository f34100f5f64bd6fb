import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { cpuBudget } from './cpu-budget.js';

/** The functions the N-API addon exports (src/native/addon.cc); offsets are bytes into `heap`. */
export interface NativeAddon {
  conv2dForward(
    heap: ArrayBuffer,
    dims: Int32Array,
    x: number,
    filter: number,
    bias: number,
    out: number,
    activation: number,
  ): void;
  conv2dBackpropInput(heap: ArrayBuffer, dims: Int32Array, dy: number, filter: number, dx: number): void;
  conv2dBackpropFilter(heap: ArrayBuffer, dims: Int32Array, x: number, dy: number, dw: number): void;
  batchMatMul(
    heap: ArrayBuffer,
    a: number,
    b: number,
    c: number,
    batch: number,
    aBatch: number,
    bBatch: number,
    m: number,
    n: number,
    k: number,
    transposeA: boolean,
    transposeB: boolean,
    bias: number,
    biasSize: number,
    activation: number,
  ): void;
  add(heap: ArrayBuffer, a: number, b: number, out: number, size: number, bSize: number): void;
  multiply(heap: ArrayBuffer, a: number, b: number, out: number, size: number, bSize: number): void;
  relu(heap: ArrayBuffer, x: number, out: number, size: number): void;
  reluGrad(heap: ArrayBuffer, dy: number, x: number, dx: number, size: number): void;
  /** x as [outer, reduced, inner] summed over the middle axis, × scale, into out [outer, inner]. */
  sumAxes(
    heap: ArrayBuffer,
    x: number,
    out: number,
    outer: number,
    reduced: number,
    inner: number,
    scale: number,
  ): void;
  batchNormForward(
    heap: ArrayBuffer,
    x: number,
    gamma: number,
    beta: number,
    epsilon: number,
    rows: number,
    channels: number,
    y: number,
    mean: number,
    variance: number,
  ): void;
  batchNormInference(
    heap: ArrayBuffer,
    x: number,
    mean: number,
    variance: number,
    gamma: number,
    beta: number,
    epsilon: number,
    rows: number,
    channels: number,
    y: number,
  ): void;
  batchNormBackward(
    heap: ArrayBuffer,
    dy: number,
    x: number,
    mean: number,
    variance: number,
    gamma: number,
    epsilon: number,
    rows: number,
    channels: number,
    dx: number,
    dgamma: number,
    dbeta: number,
  ): void;
  adamUpdate(
    heap: ArrayBuffer,
    value: number,
    gradient: number,
    firstMoment: number,
    secondMoment: number,
    size: number,
    learningRate: number,
    beta1: number,
    beta2: number,
    epsilon: number,
    oneMinusAccBeta1: number,
    oneMinusAccBeta2: number,
    newValue: number,
    newFirstMoment: number,
    newSecondMoment: number,
  ): void;
  threads(): number;
  /** Sets the threads of the kernels called from the calling thread; returns the new count. */
  setThreads(threads: number): number;
  /**
   * What the convolutions run on: "onednn" or "openblas" (NS_CONV=blas forces the latter),
   * prefixed "winograd 3×3 + " where 3×3 stride-1 ones run as Winograd F(2×2, 3×3) (AVX2 CPUs
   * without AVX-512; NS_WINOGRAD=0 turns it off).
   */
  convLibrary(): string;
}

export type AddonLoad = { ok: true; addon: NativeAddon } | { ok: false; reason: string };

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Loads build/Release/ns_kernels.node; when it is absent or fails to load, says why. Unless
 * OMP_NUM_THREADS says otherwise, the kernels called from this thread get one thread per CPU
 * of the process's budget (cores, capped by a container's CPU quota).
 */
export function loadAddon(): AddonLoad {
  if (process.env['NS_NATIVE_KERNELS'] === '0') return { ok: false, reason: 'disabled by NS_NATIVE_KERNELS=0' };
  const path = join(packageDir, 'build', 'Release', 'ns_kernels.node');
  try {
    const addon = createRequire(import.meta.url)(path) as NativeAddon;
    if (process.env['OMP_NUM_THREADS'] === undefined) addon.setThreads(cpuBudget());
    return { ok: true, addon };
  } catch (error) {
    const loadError = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return { ok: false, reason: `${buildStatus() ?? 'addon not built'}; loading ${path}: ${loadError}` };
  }
}

function buildStatus(): string | undefined {
  try {
    const status = JSON.parse(readFileSync(join(packageDir, 'build', 'native-status.json'), 'utf8')) as {
      ok?: boolean;
      reason?: string;
    };
    return status.ok === true ? undefined : `build failed: ${status.reason ?? 'unknown reason'}`;
  } catch {
    return 'addon never built (run npm run build:native -w @noisystudent/kernels)';
  }
}
