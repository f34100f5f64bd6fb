// `@noisystudent/ml/data`: the data sets and the experiment's splits and presets without
// TensorFlow.js, for command-line tools that send images to the services (nsctl).
export {
  DEFAULT_FASHION_MNIST_DIR,
  FASHION_MNIST_CLASSES,
  loadFashionMnist,
  type FashionMnistSplit,
  type LabeledImages,
} from './data/fashion-mnist.js';
export { experimentSplits, type ExperimentSplits } from './experiment/experiment-splits.js';
export { PRESETS, type ExperimentConfig, type NoiseSettings } from './experiment/presets.js';
