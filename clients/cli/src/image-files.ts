import { readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';

import type { AllowedRoots } from '@noisystudent/core';

import { CliError, EXIT } from './cli-error.js';
import { allowedPath } from './context.js';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

/**
 * The image files among `paths`, folders searched recursively in name order (linked folders not
 * followed); a missing path, or a file whose real path lies outside `roots`, is an error.
 */
export async function* imageFiles(paths: string[], roots: AllowedRoots): AsyncGenerator<string> {
  for (const path of paths) {
    const info = await stat(path).catch(() => undefined);
    if (info === undefined) throw new CliError(`${path}: no such file or folder`, EXIT.usage);
    if (!info.isDirectory()) {
      await allowedPath(roots, 'image', path, 'read');
      yield path;
      continue;
    }
    await allowedPath(roots, 'folder', path, 'read');
    const entries = await readdir(path, { withFileTypes: true });
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const child = join(path, entry.name);
      if (entry.isDirectory()) yield* imageFiles([child], roots);
      else if (IMAGE_EXTENSIONS.has(extname(entry.name).toLowerCase())) {
        await allowedPath(roots, 'image', child, 'read');
        yield child;
      }
    }
  }
}
