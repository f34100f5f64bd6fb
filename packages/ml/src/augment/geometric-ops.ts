import type * as tf from '@tensorflow/tfjs-core';

import { sampleAffine, type AffineMap } from './affine-sample.js';

/*
 * Rotate, shear and translate as PIL computes them for RandAugment (nearest neighbour, constant fill),
 * one parameter per image. Images: float32 [N, H, W, C] on the 0–255 scale.
 */

/**
 * Value of pixels that come from outside the image: mid-gray, as Noisy Student's and the TPU RandAugment
 * code fill (so that ops that read intensities see an "average" value rather than black).
 */
export const DEFAULT_FILL_VALUE = 128;

/**
 * Rotation about the image centre by `degrees`, counter-clockwise for positive values (PIL's `rotate`).
 * Coefficients are rounded to 15 decimals as PIL does, so that e.g. sin 30° is exactly 0.5.
 */
export function rotateMap(degrees: number, height: number, width: number): AffineMap {
  const radians = (degrees * Math.PI) / 180;
  const cos = roundCoefficient(Math.cos(radians));
  const sin = roundCoefficient(Math.sin(radians));
  const centreX = width / 2;
  const centreY = height / 2;
  return [cos, -sin, centreX - cos * centreX + sin * centreY, sin, cos, centreY - sin * centreX - cos * centreY];
}

/** Shear along x about the top-left corner: the pixel at (u, v) reads (u + factor·v, v). */
export function shearXMap(factor: number): AffineMap {
  return [1, factor, 0, 0, 1, 0];
}

/** Shear along y about the top-left corner: the pixel at (u, v) reads (u, factor·u + v). */
export function shearYMap(factor: number): AffineMap {
  return [1, 0, 0, factor, 1, 0];
}

/** The pixel at (u, v) reads (u + pixels, v): positive values move the content left. */
export function translateXMap(pixels: number): AffineMap {
  return [1, 0, pixels, 0, 1, 0];
}

/** The pixel at (u, v) reads (u, v + pixels): positive values move the content up. */
export function translateYMap(pixels: number): AffineMap {
  return [1, 0, 0, 0, 1, pixels];
}

/** @param degrees one per image @param fillValue @default 128 */
export function rotate(images: tf.Tensor4D, degrees: readonly number[], fillValue = DEFAULT_FILL_VALUE): tf.Tensor4D {
  const [, height, width] = images.shape;
  return sampleAffine(
    images,
    degrees.map((angle) => rotateMap(angle, height, width)),
    fillValue,
  );
}

/** @param factors one per image @param fillValue @default 128 */
export function shearX(images: tf.Tensor4D, factors: readonly number[], fillValue = DEFAULT_FILL_VALUE): tf.Tensor4D {
  return sampleAffine(images, factors.map(shearXMap), fillValue);
}

/** @param factors one per image @param fillValue @default 128 */
export function shearY(images: tf.Tensor4D, factors: readonly number[], fillValue = DEFAULT_FILL_VALUE): tf.Tensor4D {
  return sampleAffine(images, factors.map(shearYMap), fillValue);
}

/** @param pixels one per image @param fillValue @default 128 */
export function translateX(
  images: tf.Tensor4D,
  pixels: readonly number[],
  fillValue = DEFAULT_FILL_VALUE,
): tf.Tensor4D {
  return sampleAffine(images, pixels.map(translateXMap), fillValue);
}

/** @param pixels one per image @param fillValue @default 128 */
export function translateY(
  images: tf.Tensor4D,
  pixels: readonly number[],
  fillValue = DEFAULT_FILL_VALUE,
): tf.Tensor4D {
  return sampleAffine(images, pixels.map(translateYMap), fillValue);
}

function roundCoefficient(value: number): number {
  return Math.round(value * 1e15) / 1e15;
}
