import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

import sharp from 'sharp';

import type { LabeledImages } from './fashion-mnist.js';

export interface ImageFolderOptions {
  /** Images are resized to this (sharp `fit: 'fill'`: the whole image, aspect ratio not kept). */
  height: number;
  width: number;
  /** 1 = grayscale, 3 = RGB. */
  channels: 1 | 3;
  /** Images decoded at once. @default 8 */
  concurrency?: number;
  /** Skip files that cannot be decoded (listed in `skipped`) instead of failing. @default false */
  skipUnreadable?: boolean;
}

export interface ImageFolder extends LabeledImages {
  /** Files skipped with `skipUnreadable`, and why. */
  skipped: Array<{ path: string; reason: string }>;
}

/**
 * Loads `root/<class>/<image>` folders: class names are the sorted sub-folder names, images are
 * any format sharp decodes (PNG, JPEG, WebP, …), converted to grayscale or RGB and resized.
 */
export async function loadImageFolder(root: string, options: ImageFolderOptions): Promise<ImageFolder> {
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (error) {
    throw new Error(`${root}: cannot read image folder: ${error instanceof Error ? error.message : String(error)}`);
  }
  const classNames = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  if (classNames.length === 0)
    throw new Error(`${root}: no class sub-folders (expected ${root}/<class>/<image files>)`);
  const files: Array<{ path: string; label: number }> = [];
  for (const [label, name] of classNames.entries()) {
    const names = (await readdir(join(root, name), { withFileTypes: true }))
      .filter((entry) => entry.isFile() && !entry.name.startsWith('.'))
      .map((entry) => entry.name)
      .sort();
    for (const file of names) files.push({ path: join(root, name, file), label });
  }
  if (files.length === 0) throw new Error(`${root}: the class folders hold no files`);

  const pixels = options.height * options.width * options.channels;
  const decoded: Array<Uint8Array | undefined> = new Array(files.length);
  const skipped: ImageFolder['skipped'] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const index = next++;
      const file = files[index];
      if (file === undefined) continue;
      try {
        let image = sharp(file.path).resize(options.width, options.height, { fit: 'fill' }).removeAlpha();
        image = options.channels === 1 ? image.grayscale() : image.toColourspace('srgb');
        const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
        if (info.channels !== options.channels || data.length !== pixels) {
          throw new Error(
            `decoded to ${info.width}×${info.height}×${info.channels}, expected ${options.width}×${options.height}×${options.channels}`,
          );
        }
        decoded[index] = data;
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        if (options.skipUnreadable !== true) throw new Error(`${file.path}: unreadable image: ${reason}`);
        skipped.push({ path: file.path, reason });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 8) }, worker));

  const kept = files.map((file, index) => ({ file, data: decoded[index] })).filter((entry) => entry.data !== undefined);
  const images = new Uint8Array(kept.length * pixels);
  const labels = new Uint8Array(kept.length);
  kept.forEach(({ file, data }, index) => {
    if (data !== undefined) images.set(data, index * pixels);
    labels[index] = file.label;
  });
  return {
    images,
    labels,
    count: kept.length,
    height: options.height,
    width: options.width,
    channels: options.channels,
    classNames,
    skipped,
  };
}
