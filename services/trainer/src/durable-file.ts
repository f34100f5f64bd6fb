import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Writes `bytes` to `path` so that once this resolves they survive a crash: a temporary file,
 * fsync'd, renamed into place, and the folder fsync'd so the rename itself is on disk.
 */
export async function writeFileDurably(path: string, bytes: Uint8Array | string): Promise<void> {
  const temporary = `${path}.tmp`;
  const file = await open(temporary, 'w');
  try {
    await file.writeFile(bytes);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, path);
  const folder = await open(dirname(path), 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}
