import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

// Registers the custom layers the topology may name before it is deserialized.
import './noise-dropout.js';
import './stochastic-depth.js';

/** One layer of a functional model's JSON topology (tfjs-layers' Keras format, snake_case). */
interface LayerJson {
  class_name: string;
  name: string;
  config: Record<string, unknown>;
  /** One node per call; each node lists its inputs as [layer, node index, tensor index, kwargs]. */
  inbound_nodes: Array<Array<[string, number, number, Record<string, unknown>?]>>;
}

interface TopologyJson {
  class_name: string;
  config: {
    name: string;
    layers: LayerJson[];
    input_layers: Array<[string, number, number]>;
    output_layers: Array<[string, number, number]>;
  };
  [key: string]: unknown;
}

/** What `foldBatchNorm` changed, by layer name of the original model. */
export interface FoldReport {
  /** Batch normalisations folded into the convolution before them. */
  batchNorms: string[];
  /** ReLUs fused into that convolution's epilogue. */
  relus: string[];
  /** Stochastic depth sums whose survival scaling went into the residual's convolution (now plain adds). */
  survivalScales: string[];
  /** Layers that are the identity at inference (dropout), removed. */
  identities: string[];
}

export interface FoldedModel {
  /** A new model, for inference only (it has no batch normalisation left to train); the caller disposes it. */
  model: tfl.LayersModel;
  folded: FoldReport;
}

/** Layer classes that compute the identity at inference. */
const INFERENCE_IDENTITIES = new Set([
  'Dropout',
  'NoiseDropout',
  'SpatialDropout1D',
  'GaussianNoise',
  'GaussianDropout',
]);

/**
 * An inference copy of `model` with every convolution → batch normalisation (→ ReLU) chain folded
 * into one convolution with bias and fused activation: W' = W·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β
 * per output channel, computed in double precision. A stochastic depth sum fed by such a chain
 * becomes a plain add with its survival probability folded into W' and b' (its inference output is
 * shortcut + p·residual), and dropout layers are removed. On the native wasm kernels this turns
 * three passes over each activation (convolution, normalisation, ReLU) into one.
 *
 * Predictions equal the original's up to float rounding. Only what is provably equivalent is
 * folded: a convolution whose output feeds nothing but its batch normalisation, channels-last,
 * without an activation of its own, and a normalisation over the last axis. Everything else is
 * copied as it is; a model that is not functional (or calls a layer twice) is copied unfolded.
 * The original model is left untouched and still owned by the caller.
 */
export async function foldBatchNorm(model: tfl.LayersModel): Promise<FoldedModel> {
  const topology = model.toJSON(null, false) as unknown as TopologyJson;
  const folded: FoldReport = { batchNorms: [], relus: [], survivalScales: [], identities: [] };
  /** Per folded convolution: the normalisation folded into it and the scale from stochastic depth. */
  const foldInto = new Map<string, { batchNorm: string; survivalProbability: number }>();

  if (isFoldable(topology)) {
    const layers = new Map(topology.config.layers.map((layer) => [layer.name, layer]));
    const removed = new Map<string, string>(); // removed layer → the layer now producing its output
    const consumers = consumersOf(topology);
    const onlyConsumer = (name: string): LayerJson | undefined => {
      const users = consumers.get(name) ?? [];
      return users.length === 1 && !isOutput(topology, name) ? layers.get(users[0] ?? '') : undefined;
    };

    for (const layer of topology.config.layers) {
      const input = singleInput(layer);
      if (INFERENCE_IDENTITIES.has(layer.class_name) && input !== undefined) {
        removed.set(layer.name, input);
        folded.identities.push(layer.name);
      }
      if (layer.class_name !== 'Conv2D' || !isPlainConvolution(layer.config)) continue;
      const batchNorm = onlyConsumer(layer.name);
      if (batchNorm?.class_name !== 'BatchNormalization' || !normalizesLastAxis(batchNorm.config)) continue;

      layer.config['use_bias'] = true;
      removed.set(batchNorm.name, layer.name);
      folded.batchNorms.push(batchNorm.name);
      let survivalProbability = 1;
      const next = onlyConsumer(batchNorm.name);
      if (next !== undefined && isPlainRelu(next)) {
        layer.config['activation'] = 'relu';
        removed.set(next.name, layer.name);
        folded.relus.push(next.name);
      } else if (next?.class_name === 'StochasticDepth' && residualInputOf(next) === batchNorm.name) {
        survivalProbability = Number(next.config['survival_probability'] ?? 1);
        next.class_name = 'Add';
        next.config = { name: next.config['name'], trainable: next.config['trainable'] ?? true };
        folded.survivalScales.push(next.name);
      }
      foldInto.set(layer.name, { batchNorm: batchNorm.name, survivalProbability });
    }
    rewire(topology, removed);
  }

  const inference = await tfl.models.modelFromJSON({ modelTopology: topology as unknown as Record<string, never> });
  try {
    for (const layer of inference.layers) {
      const fold = foldInto.get(layer.name);
      const source = model.getLayer(layer.name);
      if (fold === undefined) {
        if (layer.weights.length > 0) layer.setWeights(source.getWeights());
        continue;
      }
      tf.tidy(() => layer.setWeights(foldedWeights(source, model.getLayer(fold.batchNorm), fold.survivalProbability)));
    }
  } catch (error) {
    inference.dispose();
    throw error;
  }
  return { model: inference, folded };
}

function isFoldable(topology: TopologyJson): boolean {
  const { layers } = topology.config ?? {};
  return (
    (topology.class_name === 'Model' || topology.class_name === 'Functional') &&
    Array.isArray(layers) &&
    layers.every((layer) => Array.isArray(layer.inbound_nodes) && layer.inbound_nodes.length <= 1)
  );
}

/** For every layer, the layers that take its output (once per use). */
function consumersOf(topology: TopologyJson): Map<string, string[]> {
  const consumers = new Map<string, string[]>();
  for (const layer of topology.config.layers) {
    for (const node of layer.inbound_nodes) {
      for (const [source] of node) consumers.set(source, [...(consumers.get(source) ?? []), layer.name]);
    }
  }
  return consumers;
}

function isOutput(topology: TopologyJson, name: string): boolean {
  return topology.config.output_layers.some(([layer]) => layer === name);
}

function singleInput(layer: LayerJson): string | undefined {
  const node = layer.inbound_nodes[0];
  return node?.length === 1 ? node[0]?.[0] : undefined;
}

function residualInputOf(sum: LayerJson): string | undefined {
  const node = sum.inbound_nodes[0];
  return node?.length === 2 && node[0]?.[0] !== node[1]?.[0] ? node[1]?.[0] : undefined;
}

function isPlainConvolution(config: Record<string, unknown>): boolean {
  return (
    (config['data_format'] ?? 'channels_last') === 'channels_last' && (config['activation'] ?? 'linear') === 'linear'
  );
}

function normalizesLastAxis(config: Record<string, unknown>): boolean {
  const axis = config['axis'];
  return axis === -1 || axis === 3 || (Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === 3));
}

function isPlainRelu(layer: LayerJson): boolean {
  if (layer.class_name === 'Activation') return layer.config['activation'] === 'relu';
  if (layer.class_name !== 'ReLU') return false;
  return layer.config['max_value'] === null || layer.config['max_value'] === undefined;
}

/** Points every use of a removed layer's output at the layer that now produces it. */
function rewire(topology: TopologyJson, removed: Map<string, string>): void {
  const producer = (name: string): string => {
    let current = name;
    while (removed.has(current)) current = removed.get(current) ?? current;
    return current;
  };
  topology.config.layers = topology.config.layers.filter((layer) => !removed.has(layer.name));
  for (const layer of topology.config.layers) {
    for (const node of layer.inbound_nodes) {
      for (const input of node) input[0] = producer(input[0]);
    }
  }
  for (const output of topology.config.output_layers) output[0] = producer(output[0]);
}

/** The folded kernel and bias of `convolution` followed by `batchNorm`, times `scale`, in double precision. */
function foldedWeights(convolution: tfl.layers.Layer, batchNorm: tfl.layers.Layer, scale: number): tf.Tensor[] {
  const [kernel, bias] = convolution.getWeights();
  if (kernel === undefined) throw new Error(`${convolution.name}: expected a kernel to fold into`);
  const channels = kernel.shape[kernel.shape.length - 1] ?? 0;
  const normalization = batchNorm as unknown as { center: boolean; scale: boolean; epsilon: number };
  const statistics = batchNorm.getWeights().map((weight) => weight.dataSync());
  let next = 0;
  const gamma = normalization.scale ? statistics[next++] : undefined;
  const beta = normalization.center ? statistics[next++] : undefined;
  const mean = statistics[next++];
  const variance = statistics[next++];
  if (mean?.length !== channels || variance?.length !== channels) {
    throw new Error(`${batchNorm.name}: expected moving statistics of ${channels} channels to fold`);
  }
  const channelScale = new Float64Array(channels);
  const foldedBias = new Float32Array(channels);
  const convolutionBias = bias?.dataSync();
  for (let c = 0; c < channels; c++) {
    const normalize = (gamma?.[c] ?? 1) / Math.sqrt((variance[c] ?? 1) + normalization.epsilon);
    channelScale[c] = normalize * scale;
    foldedBias[c] = (((convolutionBias?.[c] ?? 0) - (mean[c] ?? 0)) * normalize + (beta?.[c] ?? 0)) * scale;
  }
  const weights = kernel.dataSync();
  const foldedKernel = new Float32Array(weights.length);
  for (let i = 0; i < weights.length; i++) foldedKernel[i] = (weights[i] ?? 0) * (channelScale[i % channels] ?? 1);
  return [tf.tensor(foldedKernel, kernel.shape), tf.tensor1d(foldedBias)];
}

/** Runs `use` on a folded inference copy of `model` (see `foldBatchNorm`) and disposes the copy after. */
export async function withFoldedModel<T>(
  model: tfl.LayersModel,
  use: (inference: tfl.LayersModel) => Promise<T>,
): Promise<T> {
  const { model: inference } = await foldBatchNorm(model);
  try {
    return await use(inference);
  } finally {
    inference.dispose();
  }
}
