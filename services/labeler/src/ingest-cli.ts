#!/usr/bin/env node
// ns-ingest: streams unlabeled images into the labeler's Ingest — image files, or a split of
// Fashion-MNIST — and prints the accounting (stored, duplicates, rejected with reasons).
import { readdir, readFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';

import { credentials, type ServiceError } from '@grpc/grpc-js';
import { integerOption, loadFashionMnist, runMain } from '@noisystudent/ml';
import { Dtype, LabelerClient, type IngestRequest, type IngestResponse } from '@noisystudent/proto';
import { Command } from 'commander';

interface IngestOptions {
  labeler: string;
  fashionMnist?: 'train' | 'test';
  limit?: number;
  sourcePrefix: string;
}

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

const program = new Command('ns-ingest')
  .description("Streams unlabeled images into the labeler's Ingest and prints what happened to them.")
  .argument('[paths...]', 'PNG/JPEG files or folders of them (source id: the file name)')
  .option('--labeler <address>', 'the labeler (host:port)', '127.0.0.1:50052')
  .option('--fashion-mnist <split>', 'ingest a Fashion-MNIST split instead (train or test), as raw tensors')
  .option('--limit <count>', 'at most this many images', integerOption('--limit'))
  .option('--source-prefix <text>', 'source ids are <prefix><index> for --fashion-mnist', 'fmnist-')
  .showHelpAfterError();

async function* filesUnder(paths: string[]): AsyncGenerator<string> {
  for (const path of paths) {
    const entries = await readdir(path, { withFileTypes: true }).catch(() => undefined);
    if (entries === undefined) {
      yield path;
      continue;
    }
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.isDirectory()) yield* filesUnder([join(path, entry.name)]);
      else if (IMAGE_EXTENSIONS.has(extname(entry.name).toLowerCase())) yield join(path, entry.name);
    }
  }
}

async function* requests(paths: string[], options: IngestOptions): AsyncGenerator<IngestRequest> {
  const limit = options.limit ?? Number.MAX_SAFE_INTEGER;
  let count = 0;
  if (options.fashionMnist !== undefined) {
    const data = await loadFashionMnist(options.fashionMnist);
    const pixels = data.height * data.width * data.channels;
    for (let index = 0; index < data.count && count < limit; index++, count++) {
      const tensor = { shape: [data.height, data.width, data.channels], dtype: Dtype.UINT8 };
      const bytes = Buffer.from(data.images.subarray(index * pixels, (index + 1) * pixels));
      yield {
        sourceId: `${options.sourcePrefix}${options.fashionMnist}-${index}`,
        image: { content: { $case: 'tensor', value: { ...tensor, data: bytes } } },
      };
    }
    return;
  }
  for await (const file of filesUnder(paths)) {
    if (count++ >= limit) return;
    const sourceId = basename(file).replace(/[^A-Za-z0-9_.:/-]/g, '_');
    yield { sourceId, image: { content: { $case: 'encoded', value: await readFile(file) } } };
  }
}

runMain('ns-ingest', async () => {
  const paths = program.parse().args;
  const options = program.opts<IngestOptions>();
  if (paths.length === 0 && options.fashionMnist === undefined)
    program.error('give image paths or --fashion-mnist <split>');
  if (options.fashionMnist !== undefined && !['train', 'test'].includes(options.fashionMnist)) {
    program.error(`--fashion-mnist: expected train or test, got "${options.fashionMnist}"`);
  }
  const client = new LabelerClient(options.labeler, credentials.createInsecure());
  const stream = client.ingest();
  const counts = { sent: 0, stored: 0, duplicates: 0, rejected: 0 };
  const reasons = new Map<string, number>();
  const started = Date.now();
  const progress = setInterval(() => {
    const seconds = (Date.now() - started) / 1000;
    process.stderr.write(
      `\r${counts.stored} stored, ${counts.duplicates} duplicates, ${counts.rejected} rejected (${(counts.stored / seconds).toFixed(0)} images/s)`,
    );
  }, 500);
  const finished = new Promise<void>((resolve, reject) => {
    stream.on('data', (answer: IngestResponse) => {
      if (answer.result?.$case === 'stored') {
        if (answer.result.value.duplicate) counts.duplicates++;
        else counts.stored++;
      } else if (answer.result?.$case === 'rejected') {
        counts.rejected++;
        reasons.set(answer.result.value.reason, (reasons.get(answer.result.value.reason) ?? 0) + 1);
      }
    });
    stream.on('end', resolve);
    stream.on('error', (error: ServiceError) =>
      reject(new Error(`labeler at ${options.labeler}: ${error.details || error.message}`, { cause: error })),
    );
  });
  try {
    for await (const request of requests(paths, options)) {
      counts.sent++;
      // The labeler reads as fast as it stores; wait when the stream says so.
      if (!stream.write(request)) await new Promise((drained) => stream.once('drain', drained));
    }
    stream.end();
    await finished;
  } finally {
    clearInterval(progress);
    client.close();
  }
  process.stderr.write('\n');
  for (const [reason, count] of reasons) process.stderr.write(`rejected ×${count}: ${reason}\n`);
  console.log(JSON.stringify({ ...counts, seconds: (Date.now() - started) / 1000 }));
  if (counts.rejected > 0) process.exitCode = 2;
});
