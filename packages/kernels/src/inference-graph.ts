import { loadAddon } from './addon.js';

/** One layer of an inference graph. Tensor 0 is the input; layer i writes tensor i + 1. */
export type GraphLayer =
  | {
      /** relu?(conv(tensor[input], weights) + bias + tensor[skip]); weights HWIO, padding explicit. */
      op: 'conv';
      input: number;
      skip?: number;
      relu: boolean;
      kernel: [number, number];
      strides: [number, number];
      /** top, left, bottom, right */
      pads: [number, number, number, number];
      inChannels: number;
      outChannels: number;
      weights: Float32Array;
      bias?: Float32Array;
    }
  | { /** Mean over height and width: [n, c]. */ op: 'pool'; input: number }
  | {
      /** activation(tensor[input] · weights + bias); weights [in, out]. */
      op: 'dense';
      input: number;
      inChannels: number;
      outChannels: number;
      activation: 'linear' | 'relu' | 'softmax';
      weights: Float32Array;
      bias?: Float32Array;
    };

export interface InferenceGraphSpec {
  /** [height, width, channels] of one input image (NHWC). */
  input: [number, number, number];
  layers: GraphLayer[];
}

/** A model compiled to one native call per batch: oneDNN primitives built once per batch size. */
export interface InferenceGraph {
  /** Values per image the last layer gives. */
  readonly outputWidth: number;
  /** `batch` NHWC images in, `batch × outputWidth` values out. */
  run(input: Float32Array, batch: number): Float32Array;
}

interface NativeGraph {
  readonly outputWidth: number;
  run(input: Float32Array, batch: number, output: Float32Array): void;
}

type NativeGraphClass = new (spec: { input: number[]; nodes: GraphLayer[] }) => NativeGraph;

/**
 * Builds `spec` as a native inference graph, or says why it cannot (no addon, an addon built
 * without oneDNN, NS_NATIVE_GRAPH=0). Shapes and weights are checked here: a bad spec throws a
 * TypeError naming the layer.
 */
export function createInferenceGraph(
  spec: InferenceGraphSpec,
): { ok: true; graph: InferenceGraph } | { ok: false; reason: string } {
  if (process.env['NS_NATIVE_GRAPH'] === '0') return { ok: false, reason: 'disabled by NS_NATIVE_GRAPH=0' };
  const load = loadAddon();
  if (!load.ok) return { ok: false, reason: load.reason };
  const native = (load.addon as unknown as { InferenceGraph?: NativeGraphClass }).InferenceGraph;
  if (native === undefined) return { ok: false, reason: 'the native kernels were built without oneDNN (libdnnl-dev)' };
  const graph = new native({ input: spec.input, nodes: spec.layers });
  return {
    ok: true,
    graph: {
      outputWidth: graph.outputWidth,
      run(input, batch) {
        const output = new Float32Array(batch * graph.outputWidth);
        graph.run(input, batch, output);
        return output;
      },
    },
  };
}
