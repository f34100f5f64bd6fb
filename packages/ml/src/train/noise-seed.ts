/**
 * Seeds for the training noise (dropout masks, stochastic-depth masks) that depend only on the
 * run's seed, the step and the layer, so a run resumed from a checkpoint draws the same masks
 * as an uninterrupted one. The trainer sets the step before each forward pass; a layer asks for
 * the seed of its call. tfjs' own seeded dropout repeats one mask forever; unseeded noise comes
 * from Math.random and cannot be replayed.
 */
let runSeed: number | undefined;
let currentStep = 0;
const callsThisStep = new Map<number, number>();
let fallbackCounter = 0;

/** Called by the trainer before each step's forward pass. */
export function setNoiseStep(seed: number, step: number): void {
  runSeed = seed;
  currentStep = step;
  callsThisStep.clear();
}

/** Back to unseeded noise (e.g. after training, or between tests). */
export function clearNoiseStep(): void {
  runSeed = undefined;
  callsThisStep.clear();
}

/** A 31-bit seed for one call of the layer identified by `layerSeed`. */
export function noiseSeedFor(layerSeed: number): number {
  if (runSeed === undefined) {
    // Outside a trainer-driven step: still a fresh mask per call, deterministic per process.
    fallbackCounter++;
    return mix(layerSeed, fallbackCounter, 0x9e3779b9);
  }
  const call = callsThisStep.get(layerSeed) ?? 0;
  callsThisStep.set(layerSeed, call + 1);
  return mix(mix(runSeed, currentStep, layerSeed), call, 0x85ebca6b);
}

function mix(a: number, b: number, c: number): number {
  let h = Math.imul(a ^ 0x27d4eb2d, 0x165667b1) ^ Math.imul(b + 0x3c6ef372, 0xc2b2ae35) ^ c;
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  h = Math.imul(h, 0x297a2d39);
  h ^= h >>> 15;
  return (h >>> 0) & 0x7fffffff;
}
