#!/usr/bin/env node
// After `tsc -b`: the workspaces' bins (`ns-teacher`, `ns-trainer`, …) are compiled files that tsc
// writes without the executable bit, and `npm ci` cannot set it on files that do not exist yet;
// `npx <bin>` needs it.
import { chmod, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

const { workspaces = [] } = JSON.parse(await readFile('package.json', 'utf8'));
const folders = [];
for (const pattern of workspaces) {
  if (!pattern.endsWith('/*')) {
    folders.push(pattern);
    continue;
  }
  const parent = pattern.slice(0, -2);
  const entries = await readdir(parent, { withFileTypes: true }).catch(() => []);
  folders.push(...entries.filter((entry) => entry.isDirectory()).map((entry) => join(parent, entry.name)));
}
for (const folder of folders) {
  const manifest = await readFile(join(folder, 'package.json'), 'utf8').catch(() => undefined);
  if (manifest === undefined) continue;
  const { bin } = JSON.parse(manifest);
  for (const entry of typeof bin === 'string' ? [bin] : Object.values(bin ?? {})) {
    await chmod(join(folder, entry), 0o755).catch((error) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }
}
