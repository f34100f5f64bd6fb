#!/usr/bin/env node
// ns-predict: asks the teacher's Predict about image files and prints each answer.
import { readFile } from 'node:fs/promises';

import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { TeacherClient, type PredictResponse } from '@noisystudent/proto';
import { Command, InvalidArgumentError } from 'commander';

interface PredictOptions {
  teacher: string;
  topK: number;
  json: boolean;
}

const program = new Command('ns-predict')
  .description("Asks the teacher's Predict about PNG/JPEG files: class, confidence and the top k.")
  .argument('<files...>', 'PNG or JPEG images')
  .option('--teacher <address>', 'the teacher (host:port)', '127.0.0.1:50051')
  .option('--top-k <k>', 'most probable classes to show', topKOption, 3)
  .option('--json', 'one JSON object per image', false)
  .showHelpAfterError();

function topKOption(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) {
    throw new InvalidArgumentError(`--top-k: expected an integer ≥ 0, got "${value}"`);
  }
  return parsed;
}

// A client only: it loads gRPC and the protos, not the model code (no @noisystudent/ml).
async function main(): Promise<void> {
  const files = program.parse().args;
  const options = program.opts<PredictOptions>();
  const images = await Promise.all(
    files.map(async (file) => ({ content: { $case: 'encoded' as const, value: await readFile(file) } })),
  );
  const client = new TeacherClient(options.teacher, credentials.createInsecure());
  try {
    const response = await new Promise<PredictResponse>((resolve, reject) =>
      client.predict(
        { images, topK: options.topK },
        new Metadata(),
        { deadline: Date.now() + 30_000 },
        (error: ServiceError | null, answer: PredictResponse) =>
          error === null
            ? resolve(answer)
            : reject(new Error(`teacher at ${options.teacher}: ${error.details || error.message}`, { cause: error })),
      ),
    );
    response.predictions.forEach((prediction, index) => {
      const file = files[index] ?? '';
      if (options.json) {
        const { labelIndex, labelName, confidence, topK } = prediction;
        console.log(
          JSON.stringify({ file, labelIndex, labelName, confidence, topK, modelVersion: response.modelVersion }),
        );
        return;
      }
      const top = prediction.topK.map((entry) => `${entry.labelName} ${(entry.probability * 100).toFixed(1)}%`);
      console.log(
        `${file}: ${prediction.labelName} (${(prediction.confidence * 100).toFixed(1)}%)  top: ${top.join(', ')}`,
      );
    });
    if (!options.json) console.log(`model ${response.modelVersion}`);
  } finally {
    client.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`ns-predict failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
