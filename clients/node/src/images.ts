import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';

import { Dtype, type Image, type Tensor } from '@noisystudent/proto';

import { InputError } from './errors.js';

/** The element types a raw image may have. The services take 'uint8' and 'float32' images (tensor.proto). */
export type PixelDtype = 'uint8' | 'float32' | 'int32';

/**
 * Decoded pixels on the 0–255 scale, [height, width, channels] row-major (HWC, no batch
 * dimension), as the model's input height, width and channels (the teacher does not resize raw
 * tensors; it does resize encoded images).
 */
export interface RawImage {
  shape: readonly number[];
  dtype: PixelDtype;
  /**
   * The pixels: element values (a typed array or any array-like of numbers, one per element), or
   * the tensor's bytes as they travel, little-endian (a Node `Buffer` or an `ArrayBuffer`, bytes
   * per element × elements long).
   */
  data: ArrayLike<number> | ArrayBuffer;
}

/**
 * An image as the clients take it: a file path (PNG or JPEG, sent as it is; the server decodes
 * and resizes it), the encoded bytes of one (a Buffer or Uint8Array), or a `RawImage`.
 */
export type ImageInput = string | Uint8Array | RawImage;

const DTYPES: Record<PixelDtype, { dtype: Dtype; bytes: number; min: number; max: number; integer: boolean }> = {
  uint8: { dtype: Dtype.UINT8, bytes: 1, min: 0, max: 255, integer: true },
  float32: { dtype: Dtype.FLOAT32, bytes: 4, min: -Infinity, max: Infinity, integer: false },
  int32: { dtype: Dtype.INT32, bytes: 4, min: -(2 ** 31), max: 2 ** 31 - 1, integer: true },
};

/**
 * `input` as the wire's `Image`. A path is read now; every form is checked before it is sent.
 * @param field how error messages name the argument, e.g. `images[3]`
 * @throws InputError naming `field` (or a part of it) and what was expected
 */
export async function toImage(input: ImageInput, field = 'image'): Promise<Image> {
  if (typeof input === 'string') return { content: { $case: 'encoded', value: await readImageFile(input, field) } };
  if (input instanceof Uint8Array) return { content: { $case: 'encoded', value: encodedBytes(input, field) } };
  if (typeof input === 'object' && input !== null && 'shape' in input) {
    return { content: { $case: 'tensor', value: rawImageTensor(input, field) } };
  }
  throw new InputError(
    field,
    `expected a file path, PNG/JPEG bytes (Buffer or Uint8Array), or { shape, dtype, data }, got ${describeValue(input)}`,
  );
}

/**
 * `image` as the wire's `Tensor`: the shape checked as [height, width, channels], the data's
 * length against it, element values against the dtype; bytes little-endian.
 * @throws InputError naming `<field>.shape`, `<field>.dtype` or `<field>.data`
 */
export function rawImageTensor(image: RawImage, field = 'image'): Tensor {
  const spec = Object.hasOwn(DTYPES, image.dtype) ? DTYPES[image.dtype] : undefined;
  if (spec === undefined) {
    throw new InputError(`${field}.dtype`, `expected 'uint8', 'float32' or 'int32', got ${describeValue(image.dtype)}`);
  }
  const shape = checkShape(image.shape, `${field}.shape`);
  const elements = shape.reduce((product, size) => product * size, 1);
  const expected = `${shape.join('×')} ${image.dtype}`;
  const data: unknown = image.data;
  if (data instanceof ArrayBuffer || Buffer.isBuffer(data)) {
    const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (bytes.byteLength !== elements * spec.bytes) {
      throw new InputError(
        `${field}.data`,
        `expected ${elements * spec.bytes} bytes (${expected}, ${spec.bytes} per element), got ${bytes.byteLength}`,
      );
    }
    return { shape, dtype: spec.dtype, data: Buffer.from(bytes) };
  }
  if (!isArrayLike(data)) {
    throw new InputError(
      `${field}.data`,
      `expected a typed array, an array of numbers, or a Buffer of little-endian bytes, got ${describeValue(data)}`,
    );
  }
  if (data.length !== elements) {
    throw new InputError(`${field}.data`, `expected ${elements} values (${expected}), got ${data.length}`);
  }
  return { shape, dtype: spec.dtype, data: encodeElements(data, image.dtype, `${field}.data`) };
}

async function readImageFile(path: string, field: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new InputError(
      field,
      `expected a readable PNG or JPEG file, could not read ${JSON.stringify(path)} (${reason})`,
      {
        cause: error,
      },
    );
  }
  return encodedBytes(bytes, field, path);
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG_SIGNATURE = [0xff, 0xd8, 0xff];

/** Encoded image bytes, checked to be PNG or JPEG (what tensor.proto's `encoded` holds). */
function encodedBytes(bytes: Uint8Array, field: string, path?: string): Buffer {
  const source = path === undefined ? '' : ` in ${JSON.stringify(path)}`;
  if (bytes.byteLength === 0) throw new InputError(field, `expected PNG or JPEG bytes, got 0 bytes${source}`);
  const startsWith = (signature: number[]): boolean => signature.every((byte, index) => bytes[index] === byte);
  if (!startsWith(PNG_SIGNATURE) && !startsWith(JPEG_SIGNATURE)) {
    const head = Array.from(bytes.subarray(0, 4), (byte) => byte.toString(16).padStart(2, '0')).join(' ');
    throw new InputError(
      field,
      `expected PNG or JPEG bytes, got bytes starting ${head}${source} (raw pixels go as { shape, dtype, data })`,
    );
  }
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function checkShape(shape: unknown, field: string): number[] {
  const dims: unknown[] | undefined = Array.isArray(shape) ? shape : undefined;
  const valid =
    dims !== undefined &&
    dims.length === 3 &&
    dims.every((size) => typeof size === 'number' && Number.isInteger(size) && size > 0) &&
    (dims[2] === 1 || dims[2] === 3);
  if (!valid) {
    throw new InputError(
      field,
      `expected [height, width, channels] with positive sizes and 1 or 3 channels (HWC, no batch dimension), got ${describeValue(shape)}`,
    );
  }
  return (dims as number[]).slice();
}

const LITTLE_ENDIAN = endianness() === 'LE';

/** Element values as little-endian bytes of `dtype`, each checked to fit it. */
function encodeElements(values: ArrayLike<number>, dtype: PixelDtype, field: string): Buffer {
  const spec = DTYPES[dtype];
  // Integer typed arrays of the dtype's own type hold only valid values; floats may hold NaN or ±Infinity.
  if (!isOwnTypedArray(values, dtype) || dtype === 'float32') checkValues(values, spec, dtype, field);
  if (isOwnTypedArray(values, dtype) && (LITTLE_ENDIAN || dtype === 'uint8')) {
    // A copy: the caller may reuse its array before the request is serialized.
    return Buffer.from(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }
  const bytes = Buffer.alloc(values.length * spec.bytes);
  for (let index = 0; index < values.length; index++) {
    const value = values[index] ?? NaN;
    if (dtype === 'uint8') bytes[index] = value;
    else if (dtype === 'float32') bytes.writeFloatLE(value, index * 4);
    else bytes.writeInt32LE(value, index * 4);
  }
  return bytes;
}

function isOwnTypedArray(
  values: ArrayLike<number>,
  dtype: PixelDtype,
): values is Uint8Array | Uint8ClampedArray | Float32Array | Int32Array {
  switch (dtype) {
    case 'uint8':
      return values instanceof Uint8Array || values instanceof Uint8ClampedArray;
    case 'float32':
      return values instanceof Float32Array;
    case 'int32':
      return values instanceof Int32Array;
  }
}

function checkValues(
  values: ArrayLike<number>,
  spec: (typeof DTYPES)[PixelDtype],
  dtype: PixelDtype,
  field: string,
): void {
  for (let index = 0; index < values.length; index++) {
    const value = values[index];
    const fits =
      typeof value === 'number' &&
      Number.isFinite(value) &&
      value >= spec.min &&
      value <= spec.max &&
      (!spec.integer || Number.isInteger(value));
    if (!fits) {
      const wanted = dtype === 'float32' ? 'a finite number' : `an integer from ${spec.min} to ${spec.max}`;
      throw new InputError(`${field}[${index}]`, `expected ${wanted} (${dtype}), got ${describeValue(value)}`);
    }
  }
}

function isArrayLike(value: unknown): value is ArrayLike<number> {
  return (
    ArrayBuffer.isView(value) ||
    Array.isArray(value) ||
    (typeof value === 'object' && value !== null && typeof (value as { length?: unknown }).length === 'number')
  );
}

function describeValue(value: unknown): string {
  if (value === undefined || value === null) return String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value))
    return `[${value.map((item) => (typeof item === 'number' ? item : typeof item)).join(', ')}]`;
  if (typeof value === 'object') return value.constructor?.name ?? 'an object';
  return String(value);
}
