// A reference ResNet trained for a few seconds on Fashion-MNIST: confident enough that a 0.3
// threshold keeps some images and drops others, as a real teacher would. For integration tests.
import {
  buildReferenceResNet,
  encodeModelArtifact,
  FASHION_MNIST_CLASSES,
  initBackend,
  loadFashionMnist,
  trainModel,
  type EncodedArtifact,
} from '@noisystudent/ml';

export interface TrainedArtifactOptions {
  version: string;
  /** Training steps at batch 32. @default 60 */
  steps?: number;
  /** @default 1 */
  seed?: number;
  parentVersion?: string;
}

export async function trainedFashionArtifact(options: TrainedArtifactOptions): Promise<EncodedArtifact> {
  await initBackend({ log: () => undefined });
  const train = await loadFashionMnist('train');
  const count = 2_000;
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
    return await encodeModelArtifact(model, {
      version: options.version,
      parentVersion: options.parentVersion ?? '',
      architecture: 'reference-resnet',
      classNames: [...FASHION_MNIST_CLASSES],
      createdAt: new Date(0),
    });
  } finally {
    model.dispose();
  }
}
