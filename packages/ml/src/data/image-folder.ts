import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

import type { AllowedRoots } from '@noisystudent/core';
import sharp from 'sharp';

import type { LabeledImages } from './fashion-mnist.js';

/** How an image meets the model's input size: the size to decode to, and how to get there. */
export interface ImageSize {
  height: number;
  width: number;
  /**
   * 1 = grayscale, 3 = sRGB. Grayscale is sharp's: Rec. 709 luminance of linear light, sRGB-encoded
   * (pure red → 127, where PIL's `L` gives 76). An alpha channel is dropped, not blended.
   */
  channels: 1 | 3;
  /**
   * `fill`: the whole image stretched to height × width (aspect ratio not kept, nothing lost);
   * `cover`: scaled to cover it, centre cropped; `contain`: scaled to fit, padded with black.
   * @default 'fill'
   */
  fit?: 'fill' | 'cover' | 'contain';
  /** sharp's resampling kernel (a model's ResizeMethod maps to 'linear' or 'nearest'). @default 'lanczos3' */
  kernel?: 'nearest' | 'linear' | 'lanczos3';
}

export interface ImageFolderOptions extends ImageSize {
  /** Images decoded at once (sharp decodes on libuv's thread pool). @default 8 */
  concurrency?: number;
  /** Skip files that cannot be decoded (listed in `skipped`) instead of failing on the first. @default false */
  skipUnreadable?: boolean;
  /** Refuse (or with `skipUnreadable`, skip) images whose real path, links resolved, lies outside these. */
  roots?: AllowedRoots;
}

export interface ImageFolder extends LabeledImages {
  /** The file of each image (parallel to `labels`). */
  files: string[];
  /** Files skipped with `skipUnreadable`, and why, by path. */
  skipped: Array<{ path: string; reason: string }>;
}

const FITS = ['fill', 'cover', 'contain'] as const;
/** Labels are bytes. */
const MAX_CLASSES = 256;
const DEFAULT_CONCURRENCY = 8;

/**
 * Loads `root/<class>/<image>` folders: class names are the sorted sub-folder names (label = rank),
 * images are every non-hidden file in them (symbolic links followed), sorted by name, decoded by
 * sharp (PNG, JPEG, WebP, GIF, TIFF, AVIF, …), converted to grayscale or RGB and resized (see
 * `ImageSize`). Channels-last bytes, like every loader. An unreadable image, a missing or empty
 * folder, or an empty class is an error naming the path.
 */
export async function loadImageFolder(root: string, options: ImageFolderOptions): Promise<ImageFolder> {
  const size = checkImageSize(options);
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new Error(`concurrency: expected a positive integer, got ${concurrency}`);
  }
  const classNames = (await listEntries(root, 'image folder'))
    .filter((entry) => entry.kind === 'directory' && !entry.name.startsWith('.'))
    .map((entry) => entry.name)
    .sort();
  if (classNames.length === 0)
    throw new Error(`${root}: no class sub-folders (expected ${root}/<class>/<image files>)`);
  if (classNames.length > MAX_CLASSES) {
    throw new Error(`${root}: ${classNames.length} class sub-folders, expected at most ${MAX_CLASSES}`);
  }
  const files: Array<{ path: string; label: number }> = [];
  for (const [label, name] of classNames.entries()) {
    const folder = join(root, name);
    const names = (await listEntries(folder, 'class folder'))
      .filter((entry) => entry.kind === 'file' && !entry.name.startsWith('.'))
      .map((entry) => entry.name)
      .sort();
    if (names.length === 0) throw new Error(`${folder}: class folder '${name}' holds no image files`);
    for (const file of names) files.push({ path: join(folder, file), label });
  }

  const pixels = size.height * size.width * size.channels;
  const decoded: Array<Uint8Array | undefined> = new Array(files.length);
  const skipped: ImageFolder['skipped'] = [];
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < files.length) {
      const index = next++;
      const file = files[index];
      if (file === undefined) continue;
      try {
        const real = options.roots === undefined ? file.path : await options.roots.readable('image', file.path);
        decoded[index] = await decodeImage(real, size);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        if (options.skipUnreadable !== true) {
          failed = true;
          throw new Error(`${file.path}: unreadable image: ${reason}`, { cause: error });
        }
        skipped.push({ path: file.path, reason });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));

  const kept = files.flatMap((file, index) => {
    const data = decoded[index];
    return data === undefined ? [] : [{ ...file, data }];
  });
  const images = new Uint8Array(kept.length * pixels);
  const labels = new Uint8Array(kept.length);
  kept.forEach(({ data, label }, index) => {
    images.set(data, index * pixels);
    labels[index] = label;
  });
  return {
    images,
    labels,
    count: kept.length,
    height: size.height,
    width: size.width,
    channels: size.channels,
    classNames,
    files: kept.map((file) => file.path),
    skipped: skipped.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
  };
}

/**
 * Decodes one image (a path, or encoded bytes) to `height × width × channels` bytes, channels
 * last. The same conversion as `loadImageFolder`, so images sent as PNG/JPEG can be prepared the
 * same way.
 */
export async function decodeImage(
  input: string | Uint8Array,
  size: ImageSize,
  /** sharp refuses an input of more pixels than this, from its header. @default sharp's (16383 × 16383) */
  maxInputPixels?: number,
): Promise<Uint8Array> {
  const { height, width, channels, fit } = checkImageSize(size);
  let image = sharp(input, maxInputPixels === undefined ? {} : { limitInputPixels: maxInputPixels })
    .resize(width, height, { fit, kernel: size.kernel ?? 'lanczos3', background: { r: 0, g: 0, b: 0 } })
    .removeAlpha();
  image = channels === 1 ? image.grayscale() : image.toColourspace('srgb');
  const { data, info } = await image.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.channels !== channels || info.width !== width || info.height !== height) {
    throw new Error(
      `decoded to ${info.width}×${info.height}×${info.channels}, expected ${width}×${height}×${channels}`,
    );
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function checkImageSize(size: ImageSize): Required<Omit<ImageSize, 'kernel'>> {
  for (const field of ['height', 'width'] as const) {
    const value = size[field];
    if (!Number.isSafeInteger(value) || value < 1)
      throw new Error(`${field}: expected a positive integer, got ${value}`);
  }
  if (size.channels !== 1 && size.channels !== 3) {
    throw new Error(`channels: expected 1 (grayscale) or 3 (RGB), got ${String(size.channels)}`);
  }
  const fit = size.fit ?? 'fill';
  if (!FITS.includes(fit)) throw new Error(`fit: expected one of ${FITS.join(', ')}, got ${String(fit)}`);
  return { height: size.height, width: size.width, channels: size.channels, fit };
}

/** The entries of a folder as files or directories, symbolic links resolved (broken ones left out). */
async function listEntries(
  folder: string,
  what: string,
): Promise<Array<{ name: string; kind: 'file' | 'directory' | 'other' }>> {
  let entries: Dirent[];
  try {
    entries = await readdir(folder, { withFileTypes: true });
  } catch (error) {
    throw new Error(`${folder}: cannot read ${what}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return Promise.all(
    entries.map(async (entry) => {
      let target: { isFile(): boolean; isDirectory(): boolean } = entry;
      if (entry.isSymbolicLink()) {
        try {
          target = await stat(join(folder, entry.name));
        } catch {
          return { name: entry.name, kind: 'other' as const };
        }
      }
      return { name: entry.name, kind: target.isFile() ? 'file' : target.isDirectory() ? 'directory' : 'other' };
    }),
  );
}
