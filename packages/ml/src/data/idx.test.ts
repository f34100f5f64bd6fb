import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadFashionMnist } from './fashion-mnist.js';
import { parseIdx, readIdxFile } from './idx.js';

function idxBytes(dims: number[], values: number[]): Uint8Array {
  const header = new Uint8Array(4 + 4 * dims.length);
  const view = new DataView(header.buffer);
  view.setUint32(0, 0x0800 | dims.length);
  dims.forEach((dim, axis) => view.setUint32(4 + 4 * axis, dim));
  return new Uint8Array([...header, ...values]);
}

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ns-idx-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('idx files', () => {
  it('parses dimensions and values', () => {
    const parsed = parseIdx(idxBytes([2, 2, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), 'mem');
    expect(parsed.dims).toEqual([2, 2, 3]);
    expect(Array.from(parsed.data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  it('names the file and the shortfall when truncated', () => {
    expect(() => parseIdx(idxBytes([3, 2], [1, 2, 3, 4]), 'images.idx')).toThrow(
      'images.idx: truncated: header promises 3×2 = 6 values, file holds 4',
    );
    expect(() => parseIdx(new Uint8Array([0, 0, 8]), 'tiny.idx')).toThrow('tiny.idx: truncated idx file');
  });

  it('refuses a wrong magic number', () => {
    const labels = idxBytes([2], [1, 2]);
    expect(() => parseIdx(labels, 'labels.idx', 3)).toThrow('labels.idx: wrong magic number 0x801: expected 0x803');
    expect(() => parseIdx(new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]), 'x.idx')).toThrow(
      'x.idx: not an idx file of unsigned bytes: magic number 0x1f8b0800',
    );
  });

  it('reads gzipped and plain files alike, and names a corrupt gzip', async () => {
    const plain = join(dir, 'plain-idx1-ubyte');
    const zipped = join(dir, 'zipped-idx1-ubyte.gz');
    const bytes = idxBytes([3], [7, 8, 9]);
    await writeFile(plain, bytes);
    await writeFile(zipped, gzipSync(bytes));
    expect(Array.from((await readIdxFile(plain, 1)).data)).toEqual([7, 8, 9]);
    expect(Array.from((await readIdxFile(zipped, 1)).data)).toEqual([7, 8, 9]);
    const broken = join(dir, 'broken.gz');
    await writeFile(broken, gzipSync(bytes).subarray(0, 12));
    await expect(readIdxFile(broken, 1)).rejects.toThrow(`${broken}: corrupt or truncated gzip`);
    await expect(readIdxFile(join(dir, 'absent'), 1)).rejects.toThrow(`${join(dir, 'absent')}: cannot read idx file`);
  });
});

describe('Fashion-MNIST loader', () => {
  it('loads a split and checks that labels match images', async () => {
    const split = join(dir, 'fashion');
    await rm(split, { recursive: true, force: true });
    await mkdir(split);
    await writeFile(join(split, 't10k-images-idx3-ubyte'), idxBytes([2, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7]));
    await writeFile(join(split, 't10k-labels-idx1-ubyte.gz'), gzipSync(idxBytes([2], [9, 0])));
    const test = await loadFashionMnist('test', split);
    expect({ count: test.count, height: test.height, width: test.width, labels: Array.from(test.labels) }).toEqual({
      count: 2,
      height: 2,
      width: 2,
      labels: [9, 0],
    });
    await writeFile(join(split, 't10k-labels-idx1-ubyte.gz'), gzipSync(idxBytes([3], [9, 0, 1])));
    await expect(loadFashionMnist('test', split)).rejects.toThrow('3 labels for the 2 images');
    await writeFile(join(split, 't10k-labels-idx1-ubyte.gz'), gzipSync(idxBytes([2], [9, 10])));
    await expect(loadFashionMnist('test', split)).rejects.toThrow('label 10 at index 1: expected 0–9');
    await expect(loadFashionMnist('train', split)).rejects.toThrow('train-images-idx3-ubyte(.gz): not found');
  });
});
