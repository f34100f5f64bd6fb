import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Dtype, Image } from '@noisystudent/proto';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InputError } from './errors.js';
import { rawImageTensor, toImage, type RawImage } from './images.js';

let directory: string;
let png: Buffer;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'ns-client-images-'));
  png = await sharp(Buffer.alloc(4 * 4, 7), { raw: { width: 4, height: 4, channels: 1 } })
    .png()
    .toBuffer();
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** The InputError `run` throws (synchronously or by rejecting). */
async function inputError(run: () => unknown): Promise<InputError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof InputError) return error;
    throw error;
  }
  throw new Error('expected an InputError, got none');
}

describe('toImage', () => {
  it('sends a file and its bytes as the same encoded image', async () => {
    const file = join(directory, 'four.png');
    await writeFile(file, png);
    const fromFile = await toImage(file);
    const fromBuffer = await toImage(png);
    const fromUint8Array = await toImage(new Uint8Array(png));
    expect(fromFile).toEqual({ content: { $case: 'encoded', value: png } });
    expect(fromBuffer).toEqual(fromFile);
    expect(fromUint8Array).toEqual(fromFile);
    // What travels decodes to the same bytes.
    expect(Image.decode(Image.encode(fromFile).finish())).toEqual(fromFile);
  });

  it('turns pixels into a little-endian tensor of their dtype', async () => {
    const floats = await toImage({ shape: [1, 2, 1], dtype: 'float32', data: [1.5, -2] });
    expect(floats).toEqual({
      content: {
        $case: 'tensor',
        value: { shape: [1, 2, 1], dtype: Dtype.FLOAT32, data: Buffer.from([0, 0, 0xc0, 0x3f, 0, 0, 0, 0xc0]) },
      },
    });
    expect(rawImageTensor({ shape: [1, 1, 1], dtype: 'int32', data: new Int32Array([-2]) }).data).toEqual(
      Buffer.from([0xfe, 0xff, 0xff, 0xff]),
    );
    // A typed array of another type is taken as values; a Buffer as the bytes themselves.
    const fromValues = rawImageTensor({ shape: [2, 1, 1], dtype: 'float32', data: new Uint8Array([1, 255]) });
    const fromBytes = rawImageTensor({ shape: [2, 1, 1], dtype: 'float32', data: Buffer.from(fromValues.data) });
    expect(Array.from(new Float32Array(new Uint8Array(fromValues.data).buffer))).toEqual([1, 255]);
    expect(fromBytes).toEqual(fromValues);
    const pixels = new Uint8Array([0, 128, 255]);
    const tensor = rawImageTensor({ shape: [1, 1, 3], dtype: 'uint8', data: pixels });
    expect(tensor.data).toEqual(Buffer.from(pixels));
    pixels[0] = 9;
    expect(tensor.data[0]).toBe(0);
  });

  it.each<{ name: string; input: RawImage; field: string; message: RegExp }>([
    {
      name: 'data shorter than the shape',
      input: { shape: [28, 28, 1], dtype: 'uint8', data: new Uint8Array(783) },
      field: 'image.data',
      message: /^image\.data: expected 784 values \(28×28×1 uint8\), got 783$/,
    },
    {
      name: 'bytes of the wrong length',
      input: { shape: [2, 2, 1], dtype: 'float32', data: Buffer.alloc(4) },
      field: 'image.data',
      message: /^image\.data: expected 16 bytes \(2×2×1 float32, 4 per element\), got 4$/,
    },
    {
      name: 'an unknown dtype',
      input: { shape: [2, 2, 1], dtype: 'float64' as 'float32', data: [1, 2, 3, 4] },
      field: 'image.dtype',
      message: /^image\.dtype: expected 'uint8', 'float32' or 'int32', got "float64"$/,
    },
    {
      name: 'a shape that is not HWC',
      input: { shape: [28, 28], dtype: 'uint8', data: new Uint8Array(784) },
      field: 'image.shape',
      message: /^image\.shape: expected \[height, width, channels\].*got \[28, 28\]$/,
    },
    {
      name: 'a uint8 value out of range',
      input: { shape: [1, 2, 1], dtype: 'uint8', data: [3, 256] },
      field: 'image.data[1]',
      message: /^image\.data\[1\]: expected an integer from 0 to 255 \(uint8\), got 256$/,
    },
    {
      name: 'a float32 NaN',
      input: { shape: [1, 2, 1], dtype: 'float32', data: new Float32Array([0, NaN]) },
      field: 'image.data[1]',
      message: /^image\.data\[1\]: expected a finite number \(float32\), got NaN$/,
    },
  ])('refuses $name, naming the field', async ({ input, field, message }) => {
    const error = await inputError(() => toImage(input));
    expect(error.field).toBe(field);
    expect(error.message).toMatch(message);
  });

  it('refuses a file it cannot read and bytes that are not PNG or JPEG, naming the argument', async () => {
    const missing = join(directory, 'missing.png');
    const unreadable = await inputError(() => toImage(missing, 'images[2]'));
    expect(unreadable.field).toBe('images[2]');
    expect(unreadable.message).toContain(`could not read ${JSON.stringify(missing)} (ENOENT`);

    const text = join(directory, 'notes.png');
    await writeFile(text, 'not an image');
    expect((await inputError(() => toImage(text))).message).toBe(
      `image: expected PNG or JPEG bytes, got bytes starting 6e 6f 74 20 in ${JSON.stringify(text)} (raw pixels go as { shape, dtype, data })`,
    );
    expect((await inputError(() => toImage(Buffer.alloc(0)))).message).toBe(
      'image: expected PNG or JPEG bytes, got 0 bytes',
    );
    expect((await inputError(() => toImage(42 as unknown as string))).message).toMatch(/^image: expected a file path/);
  });
});
