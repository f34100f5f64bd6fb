import { realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

import { InvalidArgument, NotFound } from './errors.js';

/** Where Debian's data set packages (`dataset-fashion-mnist`, …) install their files. */
export const SYSTEM_DATASETS_ROOT = '/usr/share/datasets';

/** The roots when none are given: the working directory, the system temp folder, Debian's data sets. */
export function defaultAllowedRoots(): string[] {
  return [process.cwd(), tmpdir(), SYSTEM_DATASETS_ROOT];
}

/** `--allowed-roots` as given: folders separated by commas; undefined or blank → undefined (the default). */
export function parseAllowedRoots(value: string | undefined): string[] | undefined {
  const roots = (value ?? '')
    .split(',')
    .map((root) => root.trim())
    .filter((root) => root !== '');
  return roots.length === 0 ? undefined : roots;
}

/**
 * The folders a part may read and write files in (models, data sets, its state, reports). Every
 * path a user or a file names is resolved, symbolic links included, and refused when it lands
 * outside them, with an error naming the setting or field: a link in an image folder to
 * `/etc/shadow`, a model manifest naming `../../secret`, `--model-file` outside the roots.
 */
export class AllowedRoots {
  /**
   * @param roots real paths (symbolic links already resolved), e.g. from `open` in another thread
   * @param setting how a user widens them, named in refusals (`--allowed-roots (NS_TEACHER_ALLOWED_ROOTS)`)
   */
  constructor(
    readonly roots: readonly string[],
    readonly setting = '--allowed-roots',
  ) {}

  /**
   * The roots given (each must exist), else the defaults that exist, each resolved to its real path.
   */
  static async open(given: string[] | undefined, setting?: string): Promise<AllowedRoots> {
    const roots: string[] = [];
    for (const root of given ?? defaultAllowedRoots()) {
      const real = await realpath(resolve(root)).catch(() => undefined);
      if (real === undefined) {
        if (given === undefined) continue;
        throw new InvalidArgument(setting ?? '--allowed-roots', `${root}: no such folder`);
      }
      if (!roots.includes(real)) roots.push(real);
    }
    return new AllowedRoots(roots, setting);
  }

  /** True when the real path `real` is one of the roots or lies under one. */
  contains(real: string): boolean {
    return this.roots.some((root) => real === root || real.startsWith(root.endsWith(sep) ? root : root + sep));
  }

  /**
   * The real path of an existing file or folder `path` (named by `field` in errors): NotFound when
   * it does not exist, InvalidArgument when it (or what its links point to) lies outside the roots.
   */
  async readable(field: string, path: string): Promise<string> {
    const real = await realpath(resolve(path)).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') throw new NotFound(`${field}: ${path} does not exist`);
      throw new InvalidArgument(field, `${path} cannot be resolved (${error.message})`);
    });
    this.check(field, path, real);
    return real;
  }

  /**
   * Where `path` (a file or folder to create or overwrite; it may not exist yet) really lands: the
   * real path of its nearest existing ancestor and the rest; refused outside the roots.
   */
  async writable(field: string, path: string): Promise<string> {
    let existing = resolve(path);
    const rest: string[] = [];
    for (;;) {
      const real = await realpath(existing).catch(() => undefined);
      if (real !== undefined) {
        const landing = rest.length === 0 ? real : join(real, ...rest.reverse());
        this.check(field, path, landing);
        return landing;
      }
      const parent = dirname(existing);
      if (parent === existing) throw new InvalidArgument(field, `${path} cannot be resolved`);
      rest.push(basename(existing));
      existing = parent;
    }
  }

  private check(field: string, path: string, real: string): void {
    if (this.contains(real)) return;
    const shown = real === resolve(path) ? path : `${path} (really ${real})`;
    const roots = this.roots.length === 0 ? 'none exist' : this.roots.join(', ');
    throw new InvalidArgument(
      field,
      `${shown} is outside the allowed roots (${roots}); move it under one of them or add its folder to ${this.setting}`,
    );
  }
}

/**
 * `name` (a relative path another file gives, e.g. a weights file in a model manifest) joined to
 * `folder`; refused when it is absolute or climbs out of `folder`.
 */
export function pathInside(field: string, folder: string, name: string): string {
  const joined = resolve(folder, name);
  const fromFolder = relative(resolve(folder), joined);
  if (isAbsolute(name) || fromFolder === '' || fromFolder.startsWith(`..${sep}`) || fromFolder === '..') {
    throw new InvalidArgument(field, `expected a path inside ${folder}, got ${JSON.stringify(name)}`);
  }
  return joined;
}
