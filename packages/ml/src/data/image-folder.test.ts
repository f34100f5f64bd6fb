import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadImageFolder } from './image-folder.js';

let root = '';
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ns-folder-'));
  await mkdir(join(root, 'cats'));
  await mkdir(join(root, 'dogs'));
  const solid = (r: number, g: number, b: number) =>
    sharp({ create: { width: 8, height: 6, channels: 3, background: { r, g, b } } });
  await solid(255, 0, 0)
    .png()
    .toFile(join(root, 'cats', 'red.png'));
  await solid(0, 0, 255)
    .jpeg({ quality: 100 })
    .toFile(join(root, 'dogs', 'blue.jpg'));
  await solid(255, 255, 255)
    .png()
    .toFile(join(root, 'dogs', 'white.png'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('image folders', () => {
  it('labels by sorted sub-folder, decodes PNG and JPEG, resizes and converts', async () => {
    const rgb = await loadImageFolder(root, { height: 4, width: 4, channels: 3 });
    expect(rgb.classNames).toEqual(['cats', 'dogs']);
    expect(Array.from(rgb.labels)).toEqual([0, 1, 1]);
    expect(rgb.count).toBe(3);
    expect(rgb.images.length).toBe(3 * 4 * 4 * 3);
    expect(Array.from(rgb.images.subarray(0, 3))).toEqual([255, 0, 0]);
    const blue = Array.from(rgb.images.subarray(48, 51));
    expect(blue[2]).toBeGreaterThan(240);
    expect(blue[0]).toBeLessThan(15);
    const gray = await loadImageFolder(root, { height: 2, width: 2, channels: 1 });
    expect(gray.images.length).toBe(3 * 4);
    expect(gray.images[8]).toBe(255);
  });

  it('names an unreadable file, or skips it when asked', async () => {
    await writeFile(join(root, 'cats', 'broken.png'), Buffer.from('not an image'));
    await expect(loadImageFolder(root, { height: 4, width: 4, channels: 3 })).rejects.toThrow(
      `${join(root, 'cats', 'broken.png')}: unreadable image`,
    );
    const lenient = await loadImageFolder(root, { height: 4, width: 4, channels: 3, skipUnreadable: true });
    expect(lenient.count).toBe(3);
    expect(lenient.skipped.map((entry) => entry.path)).toEqual([join(root, 'cats', 'broken.png')]);
    await rm(join(root, 'cats', 'broken.png'));
  });

  it('explains an empty or missing folder', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'ns-empty-'));
    await expect(loadImageFolder(empty, { height: 4, width: 4, channels: 1 })).rejects.toThrow('no class sub-folders');
    await rm(empty, { recursive: true, force: true });
    await expect(loadImageFolder(join(root, 'absent'), { height: 4, width: 4, channels: 1 })).rejects.toThrow(
      'cannot read image folder',
    );
  });
});
