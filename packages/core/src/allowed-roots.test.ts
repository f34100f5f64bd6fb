import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { AllowedRoots, defaultAllowedRoots, parseAllowedRoots, pathInside } from './allowed-roots.js';
import { InvalidArgument, NotFound } from './errors.js';

let base: string;
let inside: string;
let outside: string;
let roots: AllowedRoots;

beforeAll(async () => {
  base = await realpath(await mkdtemp(join(tmpdir(), 'ns-roots-')));
  inside = join(base, 'models');
  outside = join(base, 'elsewhere');
  await mkdir(join(inside, 'sub'), { recursive: true });
  await mkdir(outside);
  await writeFile(join(inside, 'v1.nsmodel'), 'model');
  await writeFile(join(outside, 'secret'), 'secret');
  await symlink(join(outside, 'secret'), join(inside, 'link-out'));
  await symlink(join(inside, 'v1.nsmodel'), join(inside, 'sub', 'link-in'));
  await symlink(outside, join(inside, 'folder-out'));
  roots = await AllowedRoots.open([inside], '--allowed-roots (NS_TEACHER_ALLOWED_ROOTS)');
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('AllowedRoots', () => {
  it('reads files under a root, links that stay inside included', async () => {
    await expect(roots.readable('--model-file', join(inside, 'v1.nsmodel'))).resolves.toBe(join(inside, 'v1.nsmodel'));
    await expect(roots.readable('--model-file', join(inside, 'sub', 'link-in'))).resolves.toBe(
      join(inside, 'v1.nsmodel'),
    );
    await expect(roots.readable('--model-file', join(inside, 'sub', '..', 'v1.nsmodel'))).resolves.toBe(
      join(inside, 'v1.nsmodel'),
    );
  });

  it('refuses a path outside, a link out and a climb out, naming the field, the path and the setting', async () => {
    const outsideError = await roots.readable('--model-file', join(outside, 'secret')).catch((error: unknown) => error);
    expect(outsideError).toBeInstanceOf(InvalidArgument);
    expect((outsideError as InvalidArgument).field).toBe('--model-file');
    expect((outsideError as Error).message).toContain(
      `${join(outside, 'secret')} is outside the allowed roots (${inside})`,
    );
    expect((outsideError as Error).message).toContain('NS_TEACHER_ALLOWED_ROOTS');
    await expect(roots.readable('--model-file', join(inside, 'link-out'))).rejects.toThrow(
      `--model-file: ${join(inside, 'link-out')} (really ${join(outside, 'secret')}) is outside the allowed roots`,
    );
    await expect(roots.readable('--model-file', join(inside, '..', 'elsewhere', 'secret'))).rejects.toThrow(
      /outside the allowed roots/,
    );
    await expect(roots.readable('--dataset-dir', join(inside, 'folder-out'))).rejects.toThrow(
      /--dataset-dir: .*really/,
    );
  });

  it('says a missing path does not exist', async () => {
    await expect(roots.readable('--model-file', join(inside, 'missing'))).rejects.toBeInstanceOf(NotFound);
    await expect(roots.readable('--model-file', join(inside, 'missing'))).rejects.toThrow('does not exist');
  });

  it('places files not yet made by their nearest existing folder, links followed', async () => {
    await expect(roots.writable('--state-dir', join(inside, 'new', 'deeper'))).resolves.toBe(
      join(inside, 'new', 'deeper'),
    );
    await expect(roots.writable('--out', join(inside, 'folder-out', 'report'))).rejects.toThrow(
      /--out: .* \(really .*elsewhere.report\) is outside the allowed roots/,
    );
    await expect(roots.writable('--out', join(outside, 'x.nsmodel'))).rejects.toBeInstanceOf(InvalidArgument);
  });

  it('needs given roots to exist; the defaults are the working directory, the temp folder and Debian data sets', async () => {
    await expect(AllowedRoots.open([join(base, 'nope')])).rejects.toThrow('--allowed-roots: ');
    expect(defaultAllowedRoots()).toEqual([process.cwd(), tmpdir(), '/usr/share/datasets']);
    const defaults = await AllowedRoots.open(undefined);
    expect(defaults.contains(await realpath(process.cwd()))).toBe(true);
    expect(defaults.contains('/etc/passwd')).toBe(false);
    expect(new AllowedRoots(['/']).contains('/etc/passwd')).toBe(true);
    expect(new AllowedRoots(['/srv/a']).contains('/srv/ab')).toBe(false);
  });

  it('parses a comma-separated list', () => {
    expect(parseAllowedRoots(' /a, /b ,,')).toEqual(['/a', '/b']);
    expect(parseAllowedRoots('')).toBeUndefined();
    expect(parseAllowedRoots(undefined)).toBeUndefined();
  });
});

describe('pathInside', () => {
  it('joins names that stay in the folder and refuses the rest', () => {
    expect(pathInside('weightsManifest[0].paths[0]', '/m', 'group1-shard1of1.bin')).toBe('/m/group1-shard1of1.bin');
    expect(pathInside('p', '/m', 'a/../b.bin')).toBe('/m/b.bin');
    for (const name of ['../secret', '/etc/passwd', '.', 'a/../../x', '..']) {
      expect(() => pathInside('weightsManifest[0].paths[0]', '/m', name)).toThrow(
        /weightsManifest\[0\]\.paths\[0\]: expected a path inside \/m/,
      );
    }
  });
});
