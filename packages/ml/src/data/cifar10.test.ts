import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadCifar10 } from './cifar10.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ns-cifar-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A record whose pixel p of channel c holds (p + 7c + seed) mod 256. */
function record(label: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(3073);
  bytes[0] = label;
  for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) bytes[1 + c * 1024 + p] = (p + 7 * c + seed) % 256;
  return bytes;
}

describe('CIFAR-10 binary batches', () => {
  it('reads labels and converts CHW planes to HWC pixels', async () => {
    const split = join(dir, 'ok');
    await mkdir(split);
    await writeFile(join(split, 'test_batch.bin'), Buffer.concat([record(3, 0), record(9, 1)]));
    await writeFile(join(split, 'batches.meta.txt'), 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n');
    const test = await loadCifar10('test', split);
    expect({ count: test.count, height: test.height, width: test.width, channels: test.channels }).toEqual({
      count: 2,
      height: 32,
      width: 32,
      channels: 3,
    });
    expect(Array.from(test.labels)).toEqual([3, 9]);
    expect(test.classNames[9]).toBe('j');
    // image 1, pixel 5: channels (5 + 0 + 1), (5 + 7 + 1), (5 + 14 + 1)
    const at = (1 * 1024 + 5) * 3;
    expect(Array.from(test.images.subarray(at, at + 3))).toEqual([6, 13, 20]);
  });

  it('names the file for a truncated batch, a bad label or a missing file', async () => {
    const split = join(dir, 'bad');
    await mkdir(split);
    await writeFile(join(split, 'test_batch.bin'), record(1, 0).subarray(0, 3000));
    await expect(loadCifar10('test', split)).rejects.toThrow(
      `${join(split, 'test_batch.bin')}: 3000 bytes is not a whole number of 3073-byte records`,
    );
    await writeFile(join(split, 'test_batch.bin'), record(12, 0));
    await expect(loadCifar10('test', split)).rejects.toThrow('record 0 has label 12, expected 0–9');
    await expect(loadCifar10('train', split)).rejects.toThrow(
      `${join(split, 'data_batch_1.bin')}: cannot read CIFAR-10 batch`,
    );
  });
});
