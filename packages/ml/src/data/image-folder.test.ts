import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { decodeImage, loadImageFolder } from './image-folder.js';

let scratch = '';
let root = '';
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'ns-folder-'));
  root = join(scratch, 'animals');
  await mkdir(join(root, 'dogs'), { recursive: true });
  await mkdir(join(root, 'cats'));
  await solid(8, 6, [255, 0, 0])
    .png()
    .toFile(join(root, 'cats', 'red.png'));
  await solid(8, 6, [0, 0, 255])
    .jpeg({ quality: 100 })
    .toFile(join(root, 'dogs', 'blue.jpg'));
  await solid(8, 6, [255, 255, 255])
    .png()
    .toFile(join(root, 'dogs', 'white.png'));
  await writeFile(join(root, 'dogs', '.DS_Store'), 'hidden files are not images');
  await mkdir(join(root, '.thumbnails'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

function solid(width: number, height: number, [r, g, b]: [number, number, number]) {
  return sharp({ create: { width, height, channels: 3, background: { r, g, b } } });
}

/** A `width × height` RGB image, left half red, right half blue. */
function halves(width: number, height: number): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) pixels.set(x < width / 2 ? [255, 0, 0] : [0, 0, 255], (y * width + x) * 3);
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

describe('loadImageFolder', () => {
  it('labels by sorted sub-folder, decodes PNG and JPEG, resizes and converts to RGB or grayscale', async () => {
    const rgb = await loadImageFolder(root, { height: 4, width: 4, channels: 3 });
    expect(rgb.classNames).toEqual(['cats', 'dogs']);
    expect(Array.from(rgb.labels)).toEqual([0, 1, 1]);
    expect(rgb.files).toEqual([
      join(root, 'cats', 'red.png'),
      join(root, 'dogs', 'blue.jpg'),
      join(root, 'dogs', 'white.png'),
    ]);
    expect({ count: rgb.count, height: rgb.height, width: rgb.width, channels: rgb.channels }).toEqual({
      count: 3,
      height: 4,
      width: 4,
      channels: 3,
    });
    expect(rgb.images.length).toBe(3 * 4 * 4 * 3);
    // channels last: every pixel of image 0 is R, G, B = 255, 0, 0
    expect(Array.from(rgb.images.subarray(0, 48))).toEqual(new Array<number[]>(16).fill([255, 0, 0]).flat());
    const blue = Array.from(rgb.images.subarray(48, 51));
    expect(blue[2]).toBeGreaterThan(240);
    expect(blue[0]).toBeLessThan(15);
    expect(rgb.skipped).toEqual([]);

    const gray = await loadImageFolder(root, { height: 2, width: 3, channels: 1 });
    expect(gray.images.length).toBe(3 * 2 * 3);
    expect(Array.from(gray.images.subarray(12, 18))).toEqual([255, 255, 255, 255, 255, 255]);
    // sharp's grayscale: Rec. 709 luminance of linear light, sRGB-encoded: red → 0.2126 → 127
    expect(gray.images[0]).toBeGreaterThanOrEqual(125);
    expect(gray.images[0]).toBeLessThanOrEqual(129);
  });

  it('gives the same images whatever the concurrency', async () => {
    const one = await loadImageFolder(root, { height: 3, width: 5, channels: 3, concurrency: 1 });
    const many = await loadImageFolder(root, { height: 3, width: 5, channels: 3, concurrency: 16 });
    expect(many).toEqual(one);
  });

  it('names an unreadable file, or skips it and lists it when asked', async () => {
    const broken = join(root, 'cats', 'broken.png');
    const truncated = join(root, 'dogs', 'truncated.jpg');
    await writeFile(broken, Buffer.from('not an image'));
    const jpeg = await solid(64, 64, [10, 200, 30]).jpeg().toBuffer();
    await writeFile(truncated, jpeg.subarray(0, jpeg.length / 2));
    try {
      await expect(loadImageFolder(root, { height: 4, width: 4, channels: 3 })).rejects.toThrow(
        `${broken}: unreadable image: `,
      );
      await expect(loadImageFolder(root, { height: 4, width: 4, channels: 3, concurrency: 1 })).rejects.toThrow(
        `${broken}: unreadable image: `,
      );
      const lenient = await loadImageFolder(root, { height: 4, width: 4, channels: 3, skipUnreadable: true });
      expect(lenient.count).toBe(3);
      expect(Array.from(lenient.labels)).toEqual([0, 1, 1]);
      expect(lenient.skipped.map((entry) => entry.path)).toEqual([broken, truncated]);
      expect(lenient.skipped[0]?.reason).toMatch(/unsupported image format/);
    } finally {
      await rm(broken);
      await rm(truncated);
    }
  });

  it('explains a missing folder, one without class sub-folders and an empty class', async () => {
    const empty = join(scratch, 'empty');
    await mkdir(join(empty, 'birds'), { recursive: true });
    await writeFile(join(empty, 'readme.txt'), 'a file at the top is not a class');
    await expect(loadImageFolder(empty, { height: 4, width: 4, channels: 1 })).rejects.toThrow(
      `${join(empty, 'birds')}: class folder 'birds' holds no image files`,
    );
    await rm(join(empty, 'birds'), { recursive: true });
    await expect(loadImageFolder(empty, { height: 4, width: 4, channels: 1 })).rejects.toThrow(
      `${empty}: no class sub-folders (expected ${empty}/<class>/<image files>)`,
    );
    await expect(loadImageFolder(join(scratch, 'absent'), { height: 4, width: 4, channels: 1 })).rejects.toThrow(
      `${join(scratch, 'absent')}: cannot read image folder: ENOENT`,
    );
  });

  it('follows symbolic links to images and class folders', async () => {
    const linked = join(scratch, 'linked');
    await mkdir(join(linked, 'a'), { recursive: true });
    await symlink(join(root, 'cats', 'red.png'), join(linked, 'a', 'red.png'));
    await symlink(join(root, 'dogs'), join(linked, 'b'));
    const data = await loadImageFolder(linked, { height: 2, width: 2, channels: 3 });
    expect(data.classNames).toEqual(['a', 'b']);
    expect(Array.from(data.labels)).toEqual([0, 1, 1]);
  });

  it('names a bad option', async () => {
    await expect(loadImageFolder(root, { height: 0, width: 4, channels: 3 })).rejects.toThrow(
      'height: expected a positive integer, got 0',
    );
    await expect(loadImageFolder(root, { height: 4, width: 4.5, channels: 3 })).rejects.toThrow(
      'width: expected a positive integer, got 4.5',
    );
    await expect(loadImageFolder(root, { height: 4, width: 4, channels: JSON.parse('4') as 1 | 3 })).rejects.toThrow(
      'channels: expected 1 (grayscale) or 3 (RGB), got 4',
    );
    await expect(loadImageFolder(root, { height: 4, width: 4, channels: 3, concurrency: 0 })).rejects.toThrow(
      'concurrency: expected a positive integer, got 0',
    );
    await expect(
      loadImageFolder(root, { height: 4, width: 4, channels: 3, fit: JSON.parse('"crop"') as 'fill' }),
    ).rejects.toThrow('fit: expected one of fill, cover, contain, got crop');
  });
});

describe('decodeImage', () => {
  it("stretches with fit 'fill', centre-crops with 'cover' and pads with black with 'contain'", async () => {
    const image = await halves(8, 2);
    // fill: squeezed to 2 wide, left pixel red, right pixel blue (less a little Lanczos blending)
    const fill = Array.from(await decodeImage(image, { height: 2, width: 2, channels: 3 }));
    expect(fill.map((value) => Math.round(value / 32))).toEqual([8, 0, 0, 0, 0, 8, 8, 0, 0, 0, 0, 8]);
    // cover: already 2 high, so the middle 2 columns (3 and 4) are kept as they are
    const cover = await decodeImage(image, { height: 2, width: 2, channels: 3, fit: 'cover' });
    expect(Array.from(cover)).toEqual([255, 0, 0, 0, 0, 255, 255, 0, 0, 0, 0, 255]);
    // contain: scaled to 4×1, padded above and below
    const contain = await decodeImage(image, { height: 4, width: 4, channels: 3, fit: 'contain' });
    expect(Array.from(contain.subarray(0, 12))).toEqual(new Array<number>(12).fill(0));
    expect(Array.from(contain.subarray(36, 48))).toEqual(new Array<number>(12).fill(0));
    const middle = Array.from(contain.subarray(12, 36));
    expect(middle.filter((value) => value > 200).length).toBeGreaterThan(0);
  });

  it('reads 16-bit, grayscale and RGBA PNGs as 8-bit RGB or grayscale bytes', async () => {
    const sixteen = await sharp(Buffer.from(new Uint16Array(4 * 3).fill(65535).buffer), {
      raw: { width: 2, height: 2, channels: 3 },
    })
      .toColourspace('rgb16')
      .png()
      .toBuffer();
    expect((await sharp(sixteen).metadata()).depth).toBe('ushort');
    expect(Array.from(await decodeImage(sixteen, { height: 2, width: 2, channels: 3 }))).toEqual(
      new Array<number>(12).fill(255),
    );
    const grayPng = await sharp(Buffer.from([50, 50, 50, 50]), { raw: { width: 2, height: 2, channels: 1 } })
      .png()
      .toBuffer();
    expect(Array.from(await decodeImage(grayPng, { height: 1, width: 1, channels: 3 }))).toEqual([50, 50, 50]);
    const rgba = await sharp({
      create: { width: 2, height: 2, channels: 4, background: { r: 0, g: 255, b: 0, alpha: 0.5 } },
    })
      .png()
      .toBuffer();
    expect(Array.from(await decodeImage(rgba, { height: 1, width: 1, channels: 3 }))).toEqual([0, 255, 0]);
  });

  it('decodes a file the same as its bytes', async () => {
    const path = join(root, 'dogs', 'white.png');
    const size = { height: 3, width: 3, channels: 1 } as const;
    expect(await decodeImage(path, size)).toEqual(await decodeImage(await readFile(path), size));
  });
});
