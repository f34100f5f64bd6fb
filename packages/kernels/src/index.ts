export { nativeKernelsActive } from './active.js';
export { enableNativeKernels, type NativeKernelsStatus } from './enable.js';
export { applyTfjsPatches, PATCHED_TFJS_VERSION, type PatchResult } from './patches.js';
export { loadAddon, type AddonLoad, type NativeAddon } from './addon.js';
export {
  createInferenceGraph,
  type GraphLayer,
  type InferenceGraph,
  type InferenceGraphSpec,
} from './inference-graph.js';
