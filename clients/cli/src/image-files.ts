import { readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';

import { CliError, EXIT } from './cli-error.js';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

/** The image files among `paths`, folders searched recursively in name order; a missing path is an error. */
export async function* imageFiles(paths: string[]): AsyncGenerator<string> {
  for (const path of paths) {
    const info = await stat(path).catch(() => undefined);
    if (info === undefined) throw new CliError(`${path}: no such file or folder`, EXIT.usage);
    if (!info.isDirectory()) {
      yield path;
      continue;
    }
    const entries = await readdir(path, { withFileTypes: true });
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const child = join(path, entry.name);
      if (entry.isDirectory()) yield* imageFiles([child]);
      else if (IMAGE_EXTENSIONS.has(extname(entry.name).toLowerCase())) yield child;
    }
  }
}
