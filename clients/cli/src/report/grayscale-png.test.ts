import sharp from 'sharp';
import { describe, expect, it } from 'vitest';

import { encodeGrayscalePng } from './grayscale-png.js';

// sharp (libvips) is the independent decoder: its raw output is sRGB unless asked for
// one channel, hence extractChannel(0) after checking the file itself holds one channel.

describe('encodeGrayscalePng', () => {
  it('writes an 8-bit one-channel PNG that a real decoder reads back pixel for pixel', async () => {
    const width = 28;
    const height = 28;
    const pixels = Uint8Array.from({ length: width * height }, (_, index) => (index * 37 + (index >> 5)) % 256);
    const png = encodeGrayscalePng(width, height, pixels);
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const metadata = await sharp(png).metadata();
    expect([metadata.format, metadata.width, metadata.height, metadata.channels, metadata.depth]).toEqual([
      'png',
      width,
      height,
      1,
      'uchar',
    ]);
    const decoded = await sharp(png).extractChannel(0).raw().toBuffer();
    expect(Buffer.compare(decoded, Buffer.from(pixels))).toBe(0);
  });

  it('encodes a non-square image row by row', async () => {
    const pixels = Uint8Array.from([0, 50, 100, 150, 200, 250]);
    const { data, info } = await sharp(encodeGrayscalePng(3, 2, pixels))
      .extractChannel(0)
      .raw()
      .toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([3, 2, 1]);
    expect([...data]).toEqual([...pixels]);
  });

  it('refuses pixels that do not match the size', () => {
    expect(() => encodeGrayscalePng(28, 28, new Uint8Array(10))).toThrow('pixels: expected 28×28 = 784 bytes, got 10');
    expect(() => encodeGrayscalePng(0, 28, new Uint8Array(0))).toThrow('expected positive integers, got 0×28');
  });
});
