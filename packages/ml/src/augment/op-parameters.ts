/**
 * The RandAugment ops and how the shared magnitude M (0–30) maps to each op's parameter.
 *
 * The mappings are those of torchvision's RandAugment with 31 magnitude bins (its M is our M), which
 * fixes the direction of the ops the original TensorFlow code (tensorflow/tpu, Noisy Student's
 * randaugment.py) runs backwards: there solarize and posterize are strongest at M = 0. Here every op
 * is the identity at M = 0 except those without a magnitude (autocontrast, equalize, invert).
 */

/** The ops RandAugment samples from, uniformly, in this order (the index is what the plan draws). */
export const RAND_AUGMENT_OPS = [
  'autocontrast',
  'equalize',
  'rotate',
  'solarize',
  'color',
  'posterize',
  'contrast',
  'brightness',
  'sharpness',
  'shearX',
  'shearY',
  'translateX',
  'translateY',
  'invert',
  'identity',
] as const;

export type RandAugmentOp = (typeof RAND_AUGMENT_OPS)[number];

/** Whether `value` names one of the ops RandAugment samples from. */
export function isRandAugmentOp(value: unknown): value is RandAugmentOp {
  return (RAND_AUGMENT_OPS as readonly unknown[]).includes(value);
}

/** The largest magnitude: M runs from 0 to 30, as in the RandAugment paper's ImageNet search. */
export const MAX_MAGNITUDE = 30;

/** Ops whose parameter has a direction; the plan draws its sign (±1) per image and step. */
export const SIGNED_OPS: ReadonlySet<RandAugmentOp> = new Set<RandAugmentOp>([
  'rotate',
  'shearX',
  'shearY',
  'translateX',
  'translateY',
  'color',
  'contrast',
  'brightness',
  'sharpness',
]);

/** Ops that move pixels (nearest-neighbour affine resampling, constant fill). */
export const GEOMETRIC_OPS: ReadonlySet<RandAugmentOp> = new Set<RandAugmentOp>([
  'rotate',
  'shearX',
  'shearY',
  'translateX',
  'translateY',
]);

/**
 * Translation at M = 30 as a fraction of the image side (width for translateX, height for translateY).
 * 0.45 ≈ 150/331: AutoAugment's ImageNet range (±150 px at 331 px), which torchvision's RandAugment
 * keeps as a fraction and Noisy Student's TensorFlow code keeps as ±100 px at 224 px (0.446).
 */
export const DEFAULT_TRANSLATE_FRACTION = 0.45;

/** Rotation in degrees: ±30·M/30; positive turns the content counter-clockwise (PIL's `rotate`). */
export function rotateDegrees(magnitude: number, sign: number): number {
  return sign * 30 * (magnitude / MAX_MAGNITUDE);
}

/** Shear factor (the off-diagonal entry of the affine map, not an angle): ±0.3·M/30. */
export function shearFactor(magnitude: number, sign: number): number {
  return sign * 0.3 * (magnitude / MAX_MAGNITUDE);
}

/**
 * Translation in pixels: ±fraction·size·M/30, not rounded (nearest-neighbour sampling rounds it).
 * @param size the image side along the translation, in pixels
 * @param fraction the translation at M = 30 as a fraction of `size` @default 0.45
 */
export function translatePixels(
  magnitude: number,
  sign: number,
  size: number,
  fraction: number = DEFAULT_TRANSLATE_FRACTION,
): number {
  return sign * fraction * size * (magnitude / MAX_MAGNITUDE);
}

/** Solarize threshold on the 0–255 scale: 256 − 256·M/30; pixels at or above it are inverted. */
export function solarizeThreshold(magnitude: number): number {
  return 256 - 256 * (magnitude / MAX_MAGNITUDE);
}

/** Bits posterize keeps per channel: 8 − round(4·M/30), so 8 (identity) at M = 0 and 4 at M = 30. */
export function posterizeBits(magnitude: number): number {
  return 8 - Math.round(4 * (magnitude / MAX_MAGNITUDE));
}

/**
 * Enhance factor for color, contrast, brightness and sharpness: 1 ± 0.9·M/30, so 0.1–1.9 at M = 30.
 * 1 is the identity; 0 would be the degenerate image (gray, flat mean, black, smoothed).
 */
export function enhanceFactor(magnitude: number, sign: number): number {
  return 1 + sign * 0.9 * (magnitude / MAX_MAGNITUDE);
}
