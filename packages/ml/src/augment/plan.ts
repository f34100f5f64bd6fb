import { createRandom } from '../random.js';
import { MAX_MAGNITUDE, RAND_AUGMENT_OPS, SIGNED_OPS, type RandAugmentOp } from './op-parameters.js';

/** One op applied to one image. */
export interface RandAugmentStep {
  op: RandAugmentOp;
  /** M on the 0–30 scale, the same for every step of a plan. */
  magnitude: number;
  /** Direction of the op's parameter: −1 or +1 for the ops in `SIGNED_OPS`, always +1 for the others. */
  sign: -1 | 1;
}

/** Per image (outer index = image in the batch), the ops to apply in order. */
export type RandAugmentPlan = ReadonlyArray<readonly RandAugmentStep[]>;

export interface RandAugmentPlanOptions {
  /** N: ops applied to each image, one after another (the paper uses 1–3; 0 leaves images unchanged). */
  numOps: number;
  /** M: the magnitude of every op, from 0 to 30 (fractions allowed). */
  magnitude: number;
  /** Seed of the op and sign draws (an integer; taken modulo 2^32). The same seed gives the same plan. */
  seed: number;
}

/**
 * Draws, for each of `batchSize` images independently, `numOps` ops uniformly from `RAND_AUGMENT_OPS`
 * (with replacement) and a sign for each. Pure: a function of its arguments only.
 *
 * Every step consumes exactly two draws of `createRandom(seed)` (op, then sign, also for unsigned ops),
 * images in order, so image i's steps do not depend on which ops earlier images drew.
 */
export function sampleRandAugmentPlan(batchSize: number, options: RandAugmentPlanOptions): RandAugmentPlan {
  validatePlanOptions(batchSize, options);
  const random = createRandom(options.seed);
  const plan: RandAugmentStep[][] = [];
  for (let image = 0; image < batchSize; image++) {
    const steps: RandAugmentStep[] = [];
    for (let step = 0; step < options.numOps; step++) {
      const op = RAND_AUGMENT_OPS[Math.floor(random() * RAND_AUGMENT_OPS.length)] ?? 'identity';
      const negative = random() < 0.5;
      steps.push({ op, magnitude: options.magnitude, sign: negative && SIGNED_OPS.has(op) ? -1 : 1 });
    }
    plan.push(steps);
  }
  return plan;
}

/** Throws a RangeError naming the first bad field and what it allows. */
export function validatePlanOptions(batchSize: number, options: RandAugmentPlanOptions): void {
  if (!Number.isInteger(batchSize) || batchSize < 0) {
    throw new RangeError(`batchSize: expected a non-negative integer, got ${String(batchSize)}`);
  }
  if (!Number.isInteger(options.numOps) || options.numOps < 0) {
    throw new RangeError(`numOps: expected a non-negative integer, got ${String(options.numOps)}`);
  }
  validateMagnitude(options.magnitude, 'magnitude');
  if (!Number.isSafeInteger(options.seed)) {
    throw new RangeError(`seed: expected an integer, got ${String(options.seed)}`);
  }
}

/** Throws a RangeError naming `field` unless `magnitude` is a number from 0 to 30. */
export function validateMagnitude(magnitude: unknown, field: string): void {
  if (typeof magnitude !== 'number' || !(magnitude >= 0 && magnitude <= MAX_MAGNITUDE)) {
    throw new RangeError(`${field}: expected a number from 0 to ${MAX_MAGNITUDE}, got ${String(magnitude)}`);
  }
}
