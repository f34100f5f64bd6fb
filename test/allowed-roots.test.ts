// Files the services read and write stay inside --allowed-roots: a model file, a state folder or a
// data set outside them (or linked to from inside) stops the start with the setting named.
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { AllowedRoots, InvalidArgument } from '@noisystudent/core';
import { loadImageFolder, loadLayersModelFolder } from '@noisystudent/ml';
import { makeTestArtifact } from '@noisystudent/ml/testing';
import { createLogger } from '@noisystudent/runtime';
import { startTeacher, teacherConfig } from '@noisystudent/teacher';
import { startTrainer, trainerConfig } from '@noisystudent/trainer';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const silent = createLogger({ service: 'test', level: 'silent' });
let base: string;
let inside: string;
let outside: string;

async function png(path: string): Promise<void> {
  await writeFile(
    path,
    await sharp(Buffer.alloc(8 * 8, 90), { raw: { width: 8, height: 8, channels: 1 } })
      .png()
      .toBuffer(),
  );
}

beforeAll(async () => {
  base = await realpath(await mkdtemp(join(tmpdir(), 'ns-allowed-roots-')));
  inside = join(base, 'inside');
  outside = join(base, 'outside');
  await mkdir(inside);
  await mkdir(outside);
  const artifact = (await makeTestArtifact({ version: 'v1' })).bytes;
  await writeFile(join(outside, 'v1.nsmodel'), artifact);
  await writeFile(join(inside, 'v1.nsmodel'), artifact);
  await symlink(join(outside, 'v1.nsmodel'), join(inside, 'linked.nsmodel'));
  for (const name of ['a', 'b']) {
    await mkdir(join(inside, 'images', name), { recursive: true });
    await png(join(inside, 'images', name, '1.png'));
  }
  await png(join(outside, 'secret.png'));
  await symlink(join(outside, 'secret.png'), join(inside, 'images', 'b', '2.png'));
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('the teacher', () => {
  it('serves a --model-file inside the roots and refuses one outside them, linked or not', async () => {
    const teacher = await startTeacher(
      teacherConfig({ port: 0, metricsPort: 0, modelFile: join(inside, 'v1.nsmodel'), allowedRoots: inside }, {}),
      silent,
    );
    await teacher.serving('v1');
    await teacher.stop();
    for (const modelFile of [join(outside, 'v1.nsmodel'), join(inside, 'linked.nsmodel')]) {
      const config = teacherConfig({ port: 0, metricsPort: 0, modelFile, allowedRoots: inside }, {});
      await expect(startTeacher(config, silent)).rejects.toThrow(
        new RegExp(
          `^--model-file: ${modelFile}.* is outside the allowed roots \\(${inside}\\); .*NS_TEACHER_ALLOWED_ROOTS`,
        ),
      );
    }
  });
});

describe('the trainer', () => {
  it('refuses a state folder, a data set or an imported teacher outside the roots before it connects', async () => {
    // NATS is never reached (port 1 answers nothing): the paths are checked first.
    const common = { port: 0, metricsPort: 0, natsUrl: 'nats://127.0.0.1:1', allowedRoots: inside };
    const cases: Array<[string, Record<string, unknown>]> = [
      ['--state-dir', { stateDir: join(outside, 'state') }],
      ['--dataset-dir', { stateDir: join(inside, 'state'), dataset: 'cifar10', datasetDir: outside }],
      ['--import-teacher', { stateDir: join(inside, 'state'), importTeacher: join(inside, 'linked.nsmodel') }],
    ];
    for (const [flag, settings] of cases) {
      await expect(startTrainer(trainerConfig({ ...common, ...settings }, {}), silent), flag).rejects.toThrow(
        new RegExp(`^${flag}: .* is outside the allowed roots .*NS_TRAINER_ALLOWED_ROOTS`),
      );
    }
  });
});

describe('the loaders', () => {
  it('refuse an image in a data set folder that links outside the roots', async () => {
    const roots = await AllowedRoots.open([inside]);
    const size = { height: 8, width: 8, channels: 1 as const };
    await expect(loadImageFolder(join(inside, 'images'), { ...size, roots })).rejects.toThrow(
      `image: ${join(inside, 'images', 'b', '2.png')} (really ${join(outside, 'secret.png')}) is outside the allowed roots`,
    );
    const skipping = await loadImageFolder(join(inside, 'images'), { ...size, roots, skipUnreadable: true });
    expect(skipping.count).toBe(2);
    expect(skipping.skipped.map((entry) => entry.path)).toEqual([join(inside, 'images', 'b', '2.png')]);
    // Without roots the link is followed (the loader alone does not know where files may be).
    expect((await loadImageFolder(join(inside, 'images'), size)).count).toBe(3);
  });

  it('refuse a Layers model whose manifest names a weights file outside its folder', async () => {
    const folder = join(inside, 'layers');
    await mkdir(folder);
    await writeFile(join(outside, 'weights.bin'), Buffer.alloc(16));
    for (const path of ['../../outside/weights.bin', join(outside, 'weights.bin')]) {
      await writeFile(
        join(folder, 'model.json'),
        JSON.stringify({ modelTopology: {}, weightsManifest: [{ paths: [path], weights: [] }] }),
      );
      const error = await loadLayersModelFolder(folder).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(InvalidArgument);
      expect((error as Error).message).toContain(`weightsManifest[0].paths[0]: expected a path inside ${folder}`);
    }
    await symlink(join(outside, 'weights.bin'), join(folder, 'linked.bin'));
    await writeFile(
      join(folder, 'model.json'),
      JSON.stringify({ modelTopology: {}, weightsManifest: [{ paths: ['linked.bin'], weights: [] }] }),
    );
    await expect(loadLayersModelFolder(folder, await AllowedRoots.open([inside]))).rejects.toThrow(
      /weightsManifest\[0\]\.paths\[0\]: .*linked\.bin \(really .*outside.weights\.bin\) is outside the allowed roots/,
    );
  });
});
