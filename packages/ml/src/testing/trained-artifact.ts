// A reference ResNet trained for seconds on the first Fashion-MNIST training images: a teacher
// whose answers mean something, for integration tests and service benchmarks.
import { encodeModelArtifact, type EncodedArtifact } from '../artifact/model-artifact.js';
import { initBackend } from '../backend/select-backend.js';
import { loadFashionMnist } from '../data/fashion-mnist.js';
import { buildReferenceResNet } from '../models/reference-resnet.js';
import { trainModel } from '../train/train-model.js';

export interface TrainedArtifactOptions {
  version: string;
  /** Training steps at batch 32. @default 60 */
  steps?: number;
  /** @default 1 */
  seed?: number;
  parentVersion?: string;
  /** Labeled training images used. @default 2000 */
  images?: number;
}

export async function trainedFashionArtifact(options: TrainedArtifactOptions): Promise<EncodedArtifact> {
  await initBackend({ log: () => undefined });
  const train = await loadFashionMnist('train');
  const count = options.images ?? 2_000;
  const targets = new Float32Array(count * 10);
  for (let index = 0; index < count; index++) targets[index * 10 + (train.labels[index] ?? 0)] = 1;
  const model = buildReferenceResNet({ seed: options.seed ?? 1 });
  try {
    await trainModel(
      model,
      {
        images: train.images.subarray(0, count * 784),
        count,
        height: 28,
        width: 28,
        channels: 1,
        targets,
        classes: 10,
      },
      undefined,
      {
        steps: options.steps ?? 60,
        labeledBatchSize: 32,
        schedule: { kind: 'cosine', learningRate: 0.01, warmupSteps: 5 },
        seed: options.seed ?? 1,
        progressEverySeconds: 0,
      },
    );
    return await encodeModelArtifact(
      model,
      {
        version: options.version,
        parentVersion: options.parentVersion ?? '',
        architecture: 'reference-resnet',
        createdAt: new Date(0),
      },
      train,
    );
  } finally {
    model.dispose();
  }
}
