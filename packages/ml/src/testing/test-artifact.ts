import { encodeModelArtifact, type EncodedArtifact } from '../artifact/model-artifact.js';
import { initBackend } from '../backend/select-backend.js';
import { FASHION_MNIST_CLASSES } from '../data/fashion-mnist.js';
import { buildReferenceResNet } from '../models/reference-resnet.js';

export interface TestArtifactOptions {
  version: string;
  /** Initial weights; different seeds give models that answer differently. @default 1 */
  seed?: number;
  parentVersion?: string;
  /** @default [28, 28, 1] */
  inputShape?: [number, number, number];
}

/**
 * An encoded, untrained reference ResNet with Fashion-MNIST class names: a real artifact for
 * tests of the services (serving, hot swap, registry), made in well under a second.
 */
export async function makeTestArtifact(options: TestArtifactOptions): Promise<EncodedArtifact> {
  await initBackend({ log: () => undefined });
  const inputShape = options.inputShape ?? [28, 28, 1];
  const model = buildReferenceResNet({ seed: options.seed ?? 1, inputShape });
  try {
    const [height, width, channels] = inputShape;
    return await encodeModelArtifact(
      model,
      {
        version: options.version,
        parentVersion: options.parentVersion ?? '',
        architecture: 'reference-resnet',
        createdAt: new Date(0),
      },
      { height, width, channels, classNames: FASHION_MNIST_CLASSES },
    );
  } finally {
    model.dispose();
  }
}
