export {
  BACKEND_REQUESTS,
  currentBackend,
  describeBackend,
  initBackend,
  parseBackendRequest,
  type BackendChoice,
  type BackendRequest,
  type InitBackendOptions,
} from './backend/select-backend.js';
export { registerWasmTrainingKernels, wasmTrainingKernels } from './backend/wasm-training-kernels/register.js';
export {
  DEFAULT_FASHION_MNIST_DIR,
  FASHION_MNIST_CLASSES,
  loadFashionMnist,
  type FashionMnistSplit,
  type LabeledImages,
} from './data/fashion-mnist.js';
export { parseIdx, readIdxFile, type IdxArray } from './data/idx.js';
export { buildReferenceResNet, forwardFlopsPerImage, type ReferenceResNetOptions } from './models/reference-resnet.js';
export { createRandom, seededValues, shuffledIndices } from './random.js';
