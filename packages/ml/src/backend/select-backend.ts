import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core's Node bundle registers no gradients; tfjs-layers' bundle registers all of them
// (as the @tensorflow/tfjs umbrella does), and we train through layers anyway.
import '@tensorflow/tfjs-layers';

import { enableNativeKernels } from '@noisystudent/kernels';

import { registerWasmTrainingKernels } from './wasm-training-kernels/register.js';

/** Which backend a process asks for. `auto` picks the fastest one that loads. */
export type BackendRequest = 'auto' | 'tensorflow' | 'wasm' | 'cpu';

export const BACKEND_REQUESTS: readonly BackendRequest[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

/** What was chosen, and why: the line every service logs at start. */
export interface BackendChoice {
  /** tfjs backend name: `tensorflow`, `wasm` or `cpu`. */
  backend: string;
  /** Which npm package supplied it. */
  source: string;
  /** True when our native CPU kernels (packages/kernels) are registered. */
  native: boolean;
  /** Threads the backend computes with. */
  threads: number;
  /** Why this one: what was tried before it and how it failed. */
  reason: string;
}

export interface InitBackendOptions {
  /** @default process.env.NS_BACKEND ?? 'auto' */
  request?: string;
  /** Receives the one-line summary. @default writes it to stderr */
  log?: (line: string) => void;
}

let current: BackendChoice | undefined;

/**
 * tfjs' cpu backend prints an "install our node backend" banner the first time it holds a tensor
 * under Node (gated by its private `firstUse`); this module already logs which backend was chosen
 * and why, so the banner is only noise in service logs and test output.
 */
function silenceCpuBackendBanner(): void {
  const cpu = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null;
  if (cpu !== null && cpu.firstUse === true) cpu.firstUse = false;
}

/** Parses `NS_BACKEND`; an unknown value is an error naming the setting and what is allowed. */
export function parseBackendRequest(value: string | undefined): BackendRequest {
  const request = (value ?? 'auto').trim().toLowerCase() || 'auto';
  if ((BACKEND_REQUESTS as readonly string[]).includes(request)) return request as BackendRequest;
  throw new Error(`NS_BACKEND: expected one of ${BACKEND_REQUESTS.join('|')}, got "${value}"`);
}

export function describeBackend(choice: BackendChoice): string {
  return `backend=${choice.backend} native=${choice.native} threads=${choice.threads} source=${choice.source} reason=${choice.reason}`;
}

/**
 * Chooses and initialises the TensorFlow.js backend once per process (docs/architecture.md §3):
 * auto tries tfjs-node-gpu (CUDA), tfjs-node, then wasm with our training kernels, then cpu.
 * Later calls return the first choice; asking for a different backend then is an error.
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendChoice> {
  const request = parseBackendRequest(options.request ?? process.env['NS_BACKEND']);
  if (current) {
    if (request !== 'auto' && backendFamily(current.backend) !== request) {
      throw new Error(
        `NS_BACKEND: backend already initialised as ${current.backend}; cannot switch to ${request} in the same process`,
      );
    }
    return current;
  }
  silenceCpuBackendBanner();
  const failures: string[] = [];
  const attempts = attemptOrder(request);
  for (const attempt of attempts) {
    try {
      const choice = await attempt.init();
      const tried = failures.length > 0 ? `; ${failures.join('; ')}` : '';
      current = { ...choice, reason: `${choice.reason}${tried}` };
      (options.log ?? ((line: string) => process.stderr.write(`${line}\n`)))(describeBackend(current));
      return current;
    } catch (error) {
      failures.push(`${attempt.name} unavailable (${firstLine(error)})`);
    }
  }
  throw new Error(`NS_BACKEND=${request}: no backend could start: ${failures.join('; ')}`);
}

/** The backend chosen by `initBackend`, or undefined before it ran. */
export function currentBackend(): BackendChoice | undefined {
  return current;
}

interface Attempt {
  name: string;
  init: () => Promise<BackendChoice>;
}

function attemptOrder(request: BackendRequest): Attempt[] {
  const tensorflowGpu: Attempt = {
    name: '@tensorflow/tfjs-node-gpu',
    init: () => initTensorflow('@tensorflow/tfjs-node-gpu'),
  };
  const tensorflowCpu: Attempt = { name: '@tensorflow/tfjs-node', init: () => initTensorflow('@tensorflow/tfjs-node') };
  const wasm: Attempt = { name: '@tensorflow/tfjs-backend-wasm', init: initWasm };
  const cpu: Attempt = { name: '@tensorflow/tfjs-backend-cpu', init: initCpu };
  switch (request) {
    case 'tensorflow':
      return [tensorflowGpu, tensorflowCpu];
    case 'wasm':
      return [wasm];
    case 'cpu':
      return [cpu];
    case 'auto':
      return [tensorflowGpu, tensorflowCpu, wasm, cpu];
  }
}

async function initTensorflow(packageName: string): Promise<BackendChoice> {
  // Both packages are optional dependencies: their install downloads libtensorflow and fails
  // on machines without that access, leaving the package absent or without its binding.
  await import(packageName);
  if (!(await tf.setBackend('tensorflow'))) throw new Error('tf.setBackend("tensorflow") returned false');
  await tf.ready();
  return { backend: 'tensorflow', source: packageName, native: true, threads: 0, reason: 'libtensorflow loaded' };
}

async function initWasm(): Promise<BackendChoice> {
  const wasmModule = await import('@tensorflow/tfjs-backend-wasm');
  registerWasmTrainingKernels();
  // Native kernels replace the heaviest wasm kernels and fall back to them for anything else.
  const native = enableNativeKernels();
  if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend("wasm") returned false');
  await tf.ready();
  if (native.native) {
    return {
      backend: 'wasm',
      source: '@tensorflow/tfjs-backend-wasm',
      native: true,
      threads: native.threads,
      reason: native.reason,
    };
  }
  // The threaded wasm build is disabled under Node upstream (tfjs issue 3830): count what it reports.
  const threads = wasmModule.getThreadsCount();
  return {
    backend: 'wasm',
    source: '@tensorflow/tfjs-backend-wasm',
    native: false,
    threads,
    reason: `wasm SIMD with noisystudent training kernels, threads=${threads} (the threaded wasm build cannot start under Node); ${native.reason}`,
  };
}

async function initCpu(): Promise<BackendChoice> {
  if (!(await tf.setBackend('cpu'))) throw new Error('tf.setBackend("cpu") returned false');
  await tf.ready();
  return {
    backend: 'cpu',
    source: '@tensorflow/tfjs-backend-cpu',
    native: false,
    threads: 1,
    reason: 'plain JavaScript kernels (slow; reference only)',
  };
}

function backendFamily(backend: string): BackendRequest {
  return backend === 'tensorflow' || backend === 'wasm' || backend === 'cpu' ? backend : 'auto';
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? message;
}
