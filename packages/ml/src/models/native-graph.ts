import {
  createInferenceGraph,
  type GraphLayer,
  type InferenceGraph,
  type InferenceGraphSpec,
} from '@noisystudent/kernels';
import type * as tfl from '@tensorflow/tfjs-layers';

/** Layer classes that are the identity at inference. */
const IDENTITIES = new Set(['Dropout', 'NoiseDropout', 'SpatialDropout1D', 'GaussianNoise', 'GaussianDropout']);

type Compiled = { ok: true; spec: InferenceGraphSpec } | { ok: false; reason: string };

interface LayerConfig {
  filters?: number;
  kernelSize?: number[];
  strides?: number[];
  padding?: string;
  dataFormat?: string;
  dilationRate?: number | number[];
  activation?: string;
  units?: number;
  maxValue?: number | null;
  negativeSlope?: number;
  threshold?: number;
  axis?: number;
  keepDims?: boolean;
}

class Unsupported extends Error {}

/**
 * The layers of `model` as a native inference graph: convolutions (channels last, any kernel,
 * stride and 'same'/'valid' padding, linear or ReLU), a residual Add (and a ReLU after it) fused
 * into the convolution that feeds it, global average pooling, dense layers with linear, ReLU or
 * softmax activation, and layers that are the identity at inference. Meant for the inference copy
 * `foldBatchNorm` makes (no batch normalisation left). Anything else: not compiled, with the layer
 * named in the reason.
 */
export function compileInferenceGraph(model: tfl.LayersModel): Compiled {
  try {
    return { ok: true, spec: compile(model) };
  } catch (error) {
    if (error instanceof Unsupported) return { ok: false, reason: error.message };
    throw error;
  }
}

/**
 * `model` compiled and built natively, or the reason it runs on tfjs instead (a layer the graph
 * does not have, or no oneDNN). The graph holds its own copy of the weights.
 */
export function nativeInferenceGraph(
  model: tfl.LayersModel,
): { ok: true; graph: InferenceGraph } | { ok: false; reason: string } {
  const compiled = compileInferenceGraph(model);
  if (!compiled.ok) return compiled;
  return createInferenceGraph(compiled.spec);
}

function compile(model: tfl.LayersModel): InferenceGraphSpec {
  if (model.inputs.length !== 1 || model.outputs.length !== 1)
    throw new Unsupported('expected one input and one output');
  const [, height, width, channels] = model.inputs[0]?.shape ?? [];
  if (typeof height !== 'number' || typeof width !== 'number' || typeof channels !== 'number') {
    throw new Unsupported('expected an input of fixed height, width and channels');
  }
  // How many layers read each layer's output: a fused layer must have one reader.
  const readers = new Map<string, number>();
  for (const layer of model.layers) {
    if (layer.inboundNodes.length > 1) throw new Unsupported(`layer ${layer.name} is called more than once`);
    for (const inbound of layer.inboundNodes[0]?.inboundLayers ?? []) {
      readers.set(inbound.name, (readers.get(inbound.name) ?? 0) + 1);
    }
  }
  const layers: GraphLayer[] = [];
  /** Tensor id of each layer's output (layers fused or skipped share their source's). */
  const tensorOf = new Map<string, number>();
  /** The layers that wrote each tensor id: its writer and the layers fused into it. */
  const writers = new Map<number, Set<string>>();
  const write = (id: number, name: string): void => {
    writers.set(id, (writers.get(id) ?? new Set()).add(name));
    tensorOf.set(name, id);
  };
  /** The layer that writes a tensor id (index into `layers`), for fusing into it. */
  const writer = (id: number): GraphLayer | undefined => layers[id - 1];
  const inboundOf = (layer: tfl.layers.Layer): Array<{ id: number; name: string }> =>
    (layer.inboundNodes[0]?.inboundLayers ?? []).map((inbound) => {
      const id = tensorOf.get(inbound.name);
      if (id === undefined) throw new Unsupported(`layer ${layer.name}: its input ${inbound.name} comes later`);
      return { id, name: inbound.name };
    });
  /** True when the layer read through `inbound` can take the reader in: it wrote that tensor, and nothing else reads it. */
  const fusable = (inbound: { id: number; name: string } | undefined): boolean =>
    inbound !== undefined && readers.get(inbound.name) === 1 && (writers.get(inbound.id)?.has(inbound.name) ?? false);

  for (const layer of model.layers) {
    const className = layer.getClassName();
    const config = layer.getConfig() as LayerConfig;
    const what = `layer ${layer.name} (${className})`;
    if (className === 'InputLayer') {
      write(0, layer.name);
      continue;
    }
    const inbound = inboundOf(layer);
    const inputs = inbound.map((entry) => entry.id);
    const [input = 0] = inputs;
    const flattensFeatures = className === 'Flatten' && ['pool', 'dense'].includes(writer(input)?.op ?? '');
    if (IDENTITIES.has(className) || flattensFeatures) {
      tensorOf.set(layer.name, input);
      continue;
    }
    switch (className) {
      case 'Conv2D': {
        if (config.dataFormat !== 'channelsLast') throw new Unsupported(`${what}: expected channels last`);
        const dilation = [config.dilationRate ?? 1].flat();
        if (dilation.some((rate) => rate !== 1)) throw new Unsupported(`${what}: dilation`);
        if (config.activation !== 'linear' && config.activation !== 'relu') {
          throw new Unsupported(`${what}: activation ${config.activation}`);
        }
        const [kernel, bias] = layer.getWeights();
        const [kh = 0, kw = 0, ci = 0, co = 0] = kernel?.shape ?? [];
        const [inHeight = 0, inWidth = 0] =
          (layer.inboundNodes[0]?.inputShapes as number[] | undefined)?.slice(1) ?? [];
        const [sh = 1, sw = 1] = config.strides ?? [1, 1];
        const [padTop, padBottom] = padding(config.padding, inHeight, kh, sh);
        const [padLeft, padRight] = padding(config.padding, inWidth, kw, sw);
        layers.push({
          op: 'conv',
          input,
          relu: config.activation === 'relu',
          kernel: [kh, kw],
          strides: [sh, sw],
          pads: [padTop, padLeft, padBottom, padRight],
          inChannels: ci,
          outChannels: co,
          weights: kernel?.dataSync() as Float32Array,
          ...(bias === undefined ? {} : { bias: bias.dataSync() as Float32Array }),
        });
        write(layers.length, layer.name);
        break;
      }
      case 'Add': {
        // Fused into the later of its two convolutions: conv(x) + bias + skip in one pass.
        if (inputs.length !== 2) throw new Unsupported(`${what}: expected two inputs`);
        const [first = 0, second = 0] = inputs;
        const [convId, skipId] = first > second ? [first, second] : [second, first];
        const conv = writer(convId);
        if (
          conv?.op !== 'conv' ||
          conv.relu ||
          conv.skip !== undefined ||
          !fusable(inbound.find((entry) => entry.id === convId))
        ) {
          throw new Unsupported(`${what}: expected to follow a convolution without activation that only it reads`);
        }
        conv.skip = skipId;
        write(convId, layer.name);
        break;
      }
      case 'ReLU':
      case 'Activation': {
        const relu =
          className === 'ReLU'
            ? config.maxValue == null && !config.negativeSlope && !config.threshold
            : config.activation === 'relu';
        const softmax = className === 'Activation' && config.activation === 'softmax';
        const source = writer(input);
        if (relu && source?.op === 'conv' && !source.relu && fusable(inbound[0])) {
          source.relu = true;
        } else if (
          (relu || softmax) &&
          source?.op === 'dense' &&
          source.activation === 'linear' &&
          fusable(inbound[0])
        ) {
          source.activation = relu ? 'relu' : 'softmax';
        } else {
          throw new Unsupported(`${what}: expected to follow a convolution or dense layer without activation`);
        }
        write(input, layer.name);
        break;
      }
      case 'Softmax': {
        const source = writer(input);
        if (
          // After a dense layer the tensor is [n, features]: its last axis is -1 or 1.
          ![-1, 1].includes(config.axis ?? -1) ||
          source?.op !== 'dense' ||
          source.activation !== 'linear' ||
          !fusable(inbound[0])
        ) {
          throw new Unsupported(`${what}: expected softmax over the last axis of a dense layer`);
        }
        source.activation = 'softmax';
        write(input, layer.name);
        break;
      }
      case 'GlobalAveragePooling2D': {
        if (config.dataFormat !== 'channelsLast' || config.keepDims === true) {
          throw new Unsupported(`${what}: expected channels last, dims not kept`);
        }
        layers.push({ op: 'pool', input });
        write(layers.length, layer.name);
        break;
      }
      case 'Dense': {
        const activation = config.activation ?? 'linear';
        if (activation !== 'linear' && activation !== 'relu' && activation !== 'softmax') {
          throw new Unsupported(`${what}: activation ${activation}`);
        }
        const [kernel, bias] = layer.getWeights();
        const [inputs = 0, units = 0] = kernel?.shape ?? [];
        layers.push({
          op: 'dense',
          input,
          inChannels: inputs,
          outChannels: units,
          activation,
          weights: kernel?.dataSync() as Float32Array,
          ...(bias === undefined ? {} : { bias: bias.dataSync() as Float32Array }),
        });
        write(layers.length, layer.name);
        break;
      }
      default:
        throw new Unsupported(`${what} has no native graph layer`);
    }
  }
  const output = model.outputs[0]?.sourceLayer.name ?? '';
  if (tensorOf.get(output) !== layers.length || layers.length === 0) {
    throw new Unsupported(`the output layer ${output} is not the graph's last layer`);
  }
  return { input: [height, width, channels], layers };
}

/** TensorFlow's padding of one axis: [before, after]. */
function padding(mode: string | undefined, size: number, kernel: number, stride: number): [number, number] {
  if (mode === 'valid') return [0, 0];
  if (mode !== 'same') throw new Unsupported(`padding ${mode}`);
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}
