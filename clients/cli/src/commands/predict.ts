// nsctl predict <files…>: class, confidence and top-k of each image, from the teacher service.
import { connectTeacher } from '@noisystudent/client';
import type { Command } from 'commander';

import { CliError, EXIT } from '../cli-error.js';
import { allowedRootsOf, makeOutput, parseCount, resolveAddresses, target, type GlobalOptions } from '../context.js';
import { imageFiles } from '../image-files.js';
import { percent, table } from '../view/format.js';

const BATCH = 32;

export function registerPredict(program: Command): void {
  program
    .command('predict')
    .description('predict image files (PNG or JPEG; folders are searched) through the teacher service')
    .argument('<paths...>', 'image files or folders')
    .option('--top-k <k>', 'classes to show per image', '3')
    .action(async (paths: string[], flags: { topK: string }, command: Command) => {
      const global = command.optsWithGlobals<GlobalOptions>();
      const out = makeOutput(global.json);
      const topK = parseCount('--top-k', flags.topK, 1);
      const files: string[] = [];
      for await (const file of imageFiles(paths, await allowedRootsOf(global))) files.push(file);
      if (files.length === 0) throw new CliError(`no PNG or JPEG files in ${paths.join(', ')}`, EXIT.usage);
      const teacher = connectTeacher(target(await resolveAddresses(global), 'teacher'));
      const results: Array<{
        file: string;
        modelVersion: string;
        label: string;
        confidence: number;
        topK: Array<{ label: string; probability: number }>;
      }> = [];
      try {
        for (let start = 0; start < files.length; start += BATCH) {
          const batch = files.slice(start, start + BATCH);
          const answer = await teacher.predict(batch, { topK });
          answer.predictions.forEach((prediction, i) =>
            results.push({
              file: batch[i] ?? '',
              modelVersion: answer.modelVersion,
              label: prediction.label,
              confidence: prediction.confidence,
              topK: prediction.topK.map(({ label, probability }) => ({ label, probability })),
            }),
          );
        }
      } finally {
        teacher.close();
      }
      out.result(results, () => {
        out.line(
          table([
            ['image', 'class', 'confidence', `top ${topK}`],
            ...results.map((r) => [
              r.file,
              r.label,
              percent(r.confidence, 1),
              r.topK.map((entry) => `${entry.label} ${percent(entry.probability, 1)}`).join(', '),
            ]),
          ]),
        );
        out.line(`model ${results[0]?.modelVersion ?? '?'} at ${teacher.address}`);
      });
    });
}
