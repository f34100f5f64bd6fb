// nsctl ingest <folder | --dataset fashion-mnist --split unlabeled --limit N>: unlabeled images
// into the labeler, with a progress bar; running it again resends by source id, and what was
// stored before comes back as duplicates (nothing is stored twice).
import { relative } from 'node:path';

import { connectLabeler, type ConnectOptions, type IngestSummary } from '@noisystudent/client';
import type { Command } from 'commander';

import { CliError, EXIT } from '../cli-error.js';
import { allowedRootsOf, makeOutput, parseCount, resolveAddresses, target, type GlobalOptions } from '../context.js';
import { datasetImages, type DatasetSplitName } from '../dataset-images.js';
import { imageFiles } from '../image-files.js';
import { bar, count, duration } from '../view/format.js';
import { LiveView } from '../view/live-view.js';

interface IngestFlags {
  dataset?: string;
  split: string;
  limit?: string;
  preset: string;
  seed?: string;
  datasetDir?: string;
  window: string;
}

export interface IngestItem {
  sourceId: string;
  image: string | { shape: number[]; dtype: 'uint8'; data: Uint8Array };
}

/** Streams `items` into the labeler at `address` with a live progress line on stderr. */
export async function ingestWithProgress(
  address: string | ConnectOptions,
  items: IngestItem[],
  options: { window: number; view?: LiveView; label?: string },
): Promise<IngestSummary> {
  const labeler = connectLabeler(address);
  const view = options.view ?? new LiveView();
  const started = Date.now();
  const show = (p: { sent: number; stored: number; duplicates: number; rejected: number }, force = false): void => {
    const seconds = (Date.now() - started) / 1000;
    const done = p.stored + p.duplicates + p.rejected;
    const rate = seconds > 0 ? done / seconds : 0;
    view.render(
      [
        `${options.label ?? 'ingest'} ${bar(done, items.length)} ${count(done)}/${count(items.length)}  ${count(rate)} images/s  stored ${count(p.stored)}  duplicates ${count(p.duplicates)}  rejected ${count(p.rejected)}  ${duration(seconds)}`,
      ],
      force,
    );
  };
  try {
    const summary = await labeler.ingest(items, { window: options.window, onProgress: (p) => show(p) });
    show(summary, true);
    view.done();
    return summary;
  } finally {
    labeler.close();
  }
}

export function registerIngest(program: Command): void {
  program
    .command('ingest')
    .description(
      'send unlabeled images to the labeler: image files/folders, or a Fashion-MNIST split; run again to resume (stored images come back as duplicates)',
    )
    .argument('[paths...]', 'PNG/JPEG files or folders (source id: the path under the folder given)')
    .option('--dataset <name>', 'ingest a data set instead of files: fashion-mnist')
    .option(
      '--split <name>',
      "unlabeled (the images the trainer's preset leaves unlabeled), train or test",
      'unlabeled',
    )
    .option('--limit <n>', 'at most this many images')
    .option('--preset <name>', "the trainer's preset, which decides the unlabeled split", 'default')
    .option('--seed <n>', "the trainer's seed, if not the preset's")
    .option(
      '--dataset-dir <dir>',
      'folder with the Fashion-MNIST idx files (default: NS_FASHION_MNIST_DIR or Debian path)',
    )
    .option('--window <n>', 'images in flight (unanswered) at most', '256')
    .action(async (paths: string[], flags: IngestFlags, command: Command) => {
      const global = command.optsWithGlobals<GlobalOptions>();
      const out = makeOutput(global.json);
      const limit = flags.limit === undefined ? undefined : parseCount('--limit', flags.limit, 1);
      let items: IngestItem[];
      if (flags.dataset !== undefined) {
        if (paths.length > 0) throw new CliError('give either paths or --dataset, not both', EXIT.usage);
        if (flags.dataset !== 'fashion-mnist') {
          throw new CliError(`--dataset: expected fashion-mnist, got "${flags.dataset}"`, EXIT.usage);
        }
        if (!['unlabeled', 'train', 'test'].includes(flags.split)) {
          throw new CliError(`--split: expected unlabeled, train or test, got "${flags.split}"`, EXIT.usage);
        }
        const { images } = await datasetImages({
          split: flags.split as DatasetSplitName,
          preset: flags.preset,
          ...(limit === undefined ? {} : { limit }),
          ...(flags.seed === undefined ? {} : { seed: parseCount('--seed', flags.seed) }),
          ...(flags.datasetDir === undefined ? {} : { dataDir: flags.datasetDir }),
          roots: await allowedRootsOf(global),
        });
        items = images;
      } else {
        if (paths.length === 0)
          throw new CliError('give image files or folders, or --dataset fashion-mnist', EXIT.usage);
        items = [];
        for await (const file of imageFiles(paths, await allowedRootsOf(global))) {
          if (limit !== undefined && items.length >= limit) break;
          const root = paths.find((path) => file.startsWith(path)) ?? '';
          const id = (relative(root, file) || file).replace(/[^A-Za-z0-9_.:/-]/g, '_');
          items.push({ sourceId: id, image: file });
        }
        if (items.length === 0) throw new CliError(`no PNG or JPEG files in ${paths.join(', ')}`, EXIT.usage);
      }
      const labeler = target(await resolveAddresses(global), 'labeler');
      const summary = await ingestWithProgress(labeler, items, { window: parseCount('--window', flags.window, 1) });
      out.result(summary, () => {
        out.line(
          `ingested ${count(summary.sent)} images in ${duration(summary.seconds)}: ${count(summary.stored)} stored, ${count(summary.duplicates)} duplicates, ${count(summary.rejected)} rejected`,
        );
        for (const [reason, times] of Object.entries(summary.reasons))
          out.line(`  rejected ${count(times)}×: ${reason}`);
      });
      if (summary.rejected > 0) process.exitCode = EXIT.refused;
    });
}
