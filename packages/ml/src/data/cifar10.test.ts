import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CIFAR10_CLASSES, CIFAR10_RECORD_BYTES, loadCifar10, parseCifar10Batch } from './cifar10.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ns-cifar-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A record whose pixel p of channel c holds (p + 7c + seed) mod 256. */
function record(label: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(CIFAR10_RECORD_BYTES);
  bytes[0] = label;
  for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) bytes[1 + c * 1024 + p] = (p + 7 * c + seed) % 256;
  return bytes;
}

async function folder(name: string, files: Record<string, Uint8Array | string>): Promise<string> {
  const path = join(dir, name);
  await mkdir(path);
  for (const [file, content] of Object.entries(files)) await writeFile(join(path, file), content);
  return path;
}

describe('CIFAR-10 binary batches', () => {
  it('reads labels and converts CHW planes to HWC pixels, with the class names of batches.meta.txt', async () => {
    const split = await folder('test-split', {
      'test_batch.bin': Buffer.concat([record(3, 0), record(9, 1)]),
      'batches.meta.txt': 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n',
    });
    const test = await loadCifar10('test', split);
    expect({ count: test.count, height: test.height, width: test.width, channels: test.channels }).toEqual({
      count: 2,
      height: 32,
      width: 32,
      channels: 3,
    });
    expect(test.images.length).toBe(2 * 32 * 32 * 3);
    expect(Array.from(test.labels)).toEqual([3, 9]);
    expect(test.classNames).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']);
    // image 1, pixel 5 (row 0, column 5): R, G, B = 5 + 0 + 1, 5 + 7 + 1, 5 + 14 + 1
    const at = (1 * 1024 + 5) * 3;
    expect(Array.from(test.images.subarray(at, at + 3))).toEqual([6, 13, 20]);
    // image 0, pixel 33 (row 1, column 1)
    expect(Array.from(test.images.subarray(33 * 3, 33 * 3 + 3))).toEqual([33, 40, 47]);
  });

  it('concatenates data_batch_1..5 in order for train, with the standard names without a meta file', async () => {
    const files: Record<string, Uint8Array> = {};
    for (let batch = 1; batch <= 5; batch++) {
      files[`data_batch_${batch}.bin`] = Buffer.concat([record(batch, batch), record(0, 100 + batch)]);
    }
    const train = await loadCifar10('train', await folder('train-split', files));
    expect(train.count).toBe(10);
    expect(Array.from(train.labels)).toEqual([1, 0, 2, 0, 3, 0, 4, 0, 5, 0]);
    expect(train.classNames).toEqual(CIFAR10_CLASSES);
    // record 9 (batch 5's second, seed 105): first pixel R = 105
    expect(train.images[9 * 3072]).toBe(105);
  });

  it('names the file for a truncated batch, a bad label or a missing file', async () => {
    const split = await folder('bad', {
      'test_batch.bin': Buffer.concat([record(1, 0), record(1, 0).subarray(0, 3000)]),
    });
    const path = join(split, 'test_batch.bin');
    await expect(loadCifar10('test', split)).rejects.toThrow(
      `${path}: 6073 bytes is not a whole number of 3073-byte records (truncated? 1 whole records and 3000 bytes)`,
    );
    await writeFile(path, Buffer.concat([record(1, 0), record(10, 0)]));
    await expect(loadCifar10('test', split)).rejects.toThrow(
      `${path}: record 1 (byte 3073) has label 10, expected 0–9`,
    );
    await writeFile(path, new Uint8Array(0));
    await expect(loadCifar10('test', split)).rejects.toThrow(`${path}: empty file, expected 3073-byte records`);
    await expect(loadCifar10('train', split)).rejects.toThrow(
      `${join(split, 'data_batch_1.bin')}: cannot read CIFAR-10 batch (expected the binary version, cifar-10-batches-bin): ENOENT`,
    );
  });

  it('names a batches.meta.txt that does not hold 10 names', async () => {
    const split = await folder('bad-meta', { 'test_batch.bin': record(0, 0), 'batches.meta.txt': 'cat\ndog\n' });
    await expect(loadCifar10('test', split)).rejects.toThrow(
      `${join(split, 'batches.meta.txt')}: expected 10 class names, one per line, got 2`,
    );
  });

  it('parses a batch held in memory', () => {
    const batch = parseCifar10Batch(record(7, 2), 'memory');
    expect(Array.from(batch.labels)).toEqual([7]);
    expect(Array.from(batch.images.subarray(0, 6))).toEqual([2, 9, 16, 3, 10, 17]);
  });
});
