// nsctl report <dir>: report.json and a self-contained index.html from a running stack.
import type { AllowedRoots } from '@noisystudent/core';
import type { Command } from 'commander';

import {
  allowedPath,
  allowedRootsOf,
  makeOutput,
  parseCount,
  resolveAddresses,
  type GlobalOptions,
} from '../context.js';
import { datasetImages, type DatasetImage } from '../dataset-images.js';
import { gatherReport } from '../report/gather-report.js';
import { writeReport } from '../report/write-report.js';

interface ReportFlags {
  testImages: string;
  datasetDir?: string;
  samples: string;
  title: string;
}

/** The first `count` Fashion-MNIST test images, or none (with a note) when the data set is missing. */
export async function reportTestImages(
  count: number,
  datasetDir: string | undefined,
  roots: AllowedRoots,
  note: (line: string) => void,
): Promise<DatasetImage[]> {
  if (count === 0) return [];
  try {
    const { images } = await datasetImages({
      split: 'test',
      limit: count,
      preset: 'default',
      roots,
      ...(datasetDir === undefined ? {} : { dataDir: datasetDir }),
    });
    return images;
  } catch (error) {
    note(`report: no test images, so no confusion matrix (${error instanceof Error ? error.message : String(error)})`);
    return [];
  }
}

export function registerReport(program: Command): void {
  program
    .command('report')
    .description(
      'write <dir>/report.json and <dir>/index.html (self-contained): accuracy per round with baselines, per-class accuracy, the confusion matrix of the served teacher, pseudo-label acceptance, samples, promotions',
    )
    .argument('[dir]', 'output folder', 'report')
    .option(
      '--test-images <n>',
      'Fashion-MNIST test images to measure the served teacher on through Predict (0: skip)',
      '2000',
    )
    .option(
      '--dataset-dir <dir>',
      'folder with the Fashion-MNIST idx files (default: NS_FASHION_MNIST_DIR or Debian path)',
    )
    .option('--samples <n>', 'pseudo-labeled sample images per teacher version', '30')
    .option('--title <text>', 'the page title', 'Noisy Student self-training')
    .action(async (dir: string, flags: ReportFlags, command: Command) => {
      const global = command.optsWithGlobals<GlobalOptions>();
      const out = makeOutput(global.json);
      const roots = await allowedRootsOf(global);
      const target = await allowedPath(roots, 'dir', dir, 'write');
      const addresses = await resolveAddresses(global);
      const testImages = await reportTestImages(
        parseCount('--test-images', flags.testImages),
        flags.datasetDir,
        roots,
        out.note,
      );
      const report = await gatherReport(addresses, {
        title: flags.title,
        testImages,
        samplesPerVersion: parseCount('--samples', flags.samples),
        settings: {},
        say: out.note,
      });
      const written = await writeReport(target, report);
      out.result(written, () => out.line(`report: ${written.htmlPath} (data: ${written.jsonPath})`));
    });
}
