import {
  ColorMode,
  colorModeToJSON,
  Dtype,
  dtypeToJSON,
  ResizeMethod,
  resizeMethodToJSON,
  type Image,
  type ModelMetadata,
  type Tensor,
} from '@noisystudent/proto';

import sharp from 'sharp';

import { decodeImage } from '../data/image-folder.js';
import { InvalidArgument } from '@noisystudent/core';

/** What a model takes, resolved once from its metadata: every request is checked against it. */
export interface ModelInputSpec {
  height: number;
  width: number;
  channels: 1 | 3;
  /** sharp's kernel for resizing encoded images. */
  kernel: 'linear' | 'nearest';
  /** Per channel: input = pixel × scale[c] + offset[c] (0–255 pixels; rescale or standardize folded in). */
  scale: number[];
  offset: number[];
}

/** Elements of one model input image: height × width × channels. */
export function inputSize(spec: ModelInputSpec): number {
  return spec.height * spec.width * spec.channels;
}

/**
 * The input spec of a model from its metadata's `preprocessing`, which every artifact must carry
 * (model.proto: receivers reject an unspecified color mode or resize method).
 */
export function modelInputSpec(metadata: ModelMetadata): ModelInputSpec {
  const [height, width, channels] = metadata.inputShape;
  const preprocessing = metadata.preprocessing;
  if (height === undefined || width === undefined || (channels !== 1 && channels !== 3)) {
    throw new InvalidArgument(
      'metadata.inputShape',
      `expected [height, width, 1 or 3], got [${metadata.inputShape.join(', ')}]`,
    );
  }
  if (preprocessing === undefined) {
    throw new InvalidArgument(
      'metadata.preprocessing',
      "expected how the model's input is made (size, color mode, resize method, normalization), got none",
    );
  }
  const colorMode = channels === 1 ? ColorMode.GRAYSCALE : ColorMode.RGB;
  if (preprocessing.colorMode !== colorMode) {
    throw new InvalidArgument(
      'metadata.preprocessing.colorMode',
      `expected ${colorModeToJSON(colorMode)} (the model takes ${channels} channel${channels === 1 ? '' : 's'}), got ${colorModeToJSON(preprocessing.colorMode)}`,
    );
  }
  if (preprocessing.resizeMethod !== ResizeMethod.BILINEAR && preprocessing.resizeMethod !== ResizeMethod.NEAREST) {
    throw new InvalidArgument(
      'metadata.preprocessing.resizeMethod',
      `expected BILINEAR or NEAREST, got ${resizeMethodToJSON(preprocessing.resizeMethod)}`,
    );
  }
  const kernel = preprocessing.resizeMethod === ResizeMethod.NEAREST ? 'nearest' : 'linear';
  const identity = { scale: new Array<number>(channels).fill(1), offset: new Array<number>(channels).fill(0) };
  const normalization = preprocessing.normalization;
  if (normalization === undefined) return { height, width, channels, kernel, ...identity };
  if (normalization.$case === 'rescale') {
    const { scale, offset } = normalization.value;
    return {
      height,
      width,
      channels,
      kernel,
      scale: new Array<number>(channels).fill(scale),
      offset: new Array<number>(channels).fill(offset),
    };
  }
  const { mean, std } = normalization.value;
  if (mean.length !== channels || std.length !== channels || std.some((value) => !(value > 0))) {
    throw new InvalidArgument(
      'metadata.preprocessing.standardize',
      `expected ${channels} means and ${channels} positive stds, got [${mean.join(', ')}] and [${std.join(', ')}]`,
    );
  }
  return {
    height,
    width,
    channels,
    kernel,
    scale: std.map((value) => 1 / value),
    offset: mean.map((value, channel) => -value / (std[channel] ?? 1)),
  };
}

/** An image's pixels as the model takes them (its height, width and channels, HWC), before normalization. */
export type ModelInputPixels = Uint8Array | Float32Array;

/**
 * One request image as the model's input, written at `out[offset …]` (HWC, float32): an encoded
 * PNG/JPEG is decoded, converted and resized like the training data; a tensor must already have
 * the model's height, width and channels. Bad input throws `InvalidArgument` naming the field
 * under `field` (e.g. `images[3].tensor.shape`) and what was expected.
 */
export async function writeModelInput(
  image: Image | undefined,
  spec: ModelInputSpec,
  field: string,
  out: Float32Array,
  offset: number,
): Promise<void> {
  writePixels(await modelInputPixels(image, spec, field), spec, out, offset);
}

/** What `writeModelInput` writes, before normalization (checked, decoded if encoded). */
export async function modelInputPixels(
  image: Image | undefined,
  spec: ModelInputSpec,
  field: string,
): Promise<ModelInputPixels> {
  const content = image?.content;
  if (content?.$case === 'encoded') return decodeEncoded(content.value, spec, `${field}.encoded`);
  return tensorInputPixels(image, spec, field);
}

/**
 * `modelInputPixels` for an image that is not encoded, without waiting: a tensor is checked and
 * its pixels returned at once (the serving path's common case: no promise and no copy per image).
 * An encoded image or none throws `InvalidArgument` naming `field`.
 */
export function tensorInputPixels(image: Image | undefined, spec: ModelInputSpec, field: string): ModelInputPixels {
  const content = image?.content;
  if (content === undefined) {
    throw new InvalidArgument(field, 'expected an image: encoded PNG/JPEG bytes or a tensor, got neither');
  }
  if (content.$case === 'encoded') {
    throw new InvalidArgument(
      `${field}.encoded`,
      'expected a tensor here (encoded images are decoded by modelInputPixels)',
    );
  }
  return tensorPixels(content.value, spec, `${field}.tensor`);
}

/**
 * The most pixels an encoded image may declare (4096 × 4096), and its widest side. Checked from
 * the image's header before anything is decoded: a small file can declare a huge image (a PNG of
 * zeros compresses about 1000:1), which would take the decoder seconds and gigabytes.
 */
export const MAX_ENCODED_PIXELS = 4096 * 4096;
export const MAX_ENCODED_SIDE = 16_384;

async function decodeEncoded(bytes: Uint8Array, spec: ModelInputSpec, field: string): Promise<Uint8Array> {
  if (bytes.byteLength === 0) throw new InvalidArgument(field, 'expected PNG or JPEG bytes, got 0 bytes');
  let header: { width?: number | undefined; height?: number | undefined; format?: string | undefined };
  try {
    header = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw notAnImage(field, bytes, error);
  }
  const { width = 0, height = 0 } = header;
  if (width > MAX_ENCODED_SIDE || height > MAX_ENCODED_SIDE || width * height > MAX_ENCODED_PIXELS) {
    throw new InvalidArgument(
      field,
      `expected an image of at most ${MAX_ENCODED_PIXELS.toLocaleString('en-US')} pixels (e.g. 4096×4096), got a ${header.format ?? 'image'} of ${width}×${height}`,
    );
  }
  try {
    return await decodeImage(
      bytes,
      { height: spec.height, width: spec.width, channels: spec.channels, kernel: spec.kernel },
      MAX_ENCODED_PIXELS,
    );
  } catch (error) {
    throw notAnImage(field, bytes, error);
  }
}

function notAnImage(field: string, bytes: Uint8Array, error: unknown): InvalidArgument {
  const reason = error instanceof Error ? error.message : String(error);
  return new InvalidArgument(
    field,
    `expected a PNG or JPEG image, got ${bytes.byteLength} bytes that did not decode (${reason})`,
    { cause: error },
  );
}

function tensorPixels(tensor: Tensor, spec: ModelInputSpec, field: string): Uint8Array | Float32Array {
  const expectedShape = [spec.height, spec.width, spec.channels];
  if (tensor.shape.length !== 3 || tensor.shape.some((dimension, axis) => dimension !== expectedShape[axis])) {
    throw new InvalidArgument(
      `${field}.shape`,
      `expected [${expectedShape.join(', ')}] (the model's height, width, channels), got [${tensor.shape.join(', ')}]`,
    );
  }
  const elements = inputSize(spec);
  const data = tensor.data;
  if (tensor.dtype === Dtype.UINT8) {
    if (data.byteLength !== elements) {
      throw new InvalidArgument(
        `${field}.data`,
        `expected ${elements} bytes (${expectedShape.join('×')} uint8), got ${data.byteLength}`,
      );
    }
    return data;
  }
  if (tensor.dtype === Dtype.FLOAT32) {
    if (data.byteLength !== elements * 4) {
      throw new InvalidArgument(
        `${field}.data`,
        `expected ${elements * 4} bytes (${expectedShape.join('×')} float32), got ${data.byteLength}`,
      );
    }
    // Little-endian on the wire (tensor.proto), whatever the host's order.
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const values = new Float32Array(elements);
    for (let index = 0; index < elements; index++) {
      const value = view.getFloat32(index * 4, true);
      if (!Number.isFinite(value)) {
        throw new InvalidArgument(`${field}.data`, `expected finite pixel values, got ${value} at element ${index}`);
      }
      values[index] = value;
    }
    return values;
  }
  throw new InvalidArgument(`${field}.dtype`, `expected UINT8 or FLOAT32, got ${dtypeToJSON(tensor.dtype)}`);
}

/** Normalizes one image's pixels (`spec`'s scale and offset per channel) into `out[offset …]`. */
export function writePixels(pixels: ModelInputPixels, spec: ModelInputSpec, out: Float32Array, offset: number): void {
  const { channels, scale, offset: shift } = spec;
  const elements = inputSize(spec);
  if (offset + elements > out.length)
    throw new RangeError(`out: ${elements} values at ${offset} do not fit in ${out.length}`);
  for (let index = 0; index < elements; index++) {
    const channel = index % channels;
    out[offset + index] = (pixels[index] ?? 0) * (scale[channel] ?? 1) + (shift[channel] ?? 0);
  }
}
