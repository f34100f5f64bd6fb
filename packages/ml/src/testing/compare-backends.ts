import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/** Runs `compute` on the named backend and returns its outputs as plain arrays (tensors disposed). */
export async function runOn(backendName: string, compute: () => tf.Tensor | tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backendName);
  const outputs = tf.tidy(compute);
  const list = Array.isArray(outputs) ? outputs : [outputs];
  const values = await Promise.all(list.map(async (tensor) => new Float32Array(await tensor.data())));
  tf.dispose(list);
  return values;
}

/** Largest |a − b| divided by max(1, largest |reference|): the error "relative to scale". */
export function scaledMaxError(actual: Float32Array, reference: Float32Array): number {
  if (actual.length !== reference.length) {
    throw new Error(`length mismatch: got ${actual.length}, expected ${reference.length}`);
  }
  let largestDifference = 0;
  let scale = 1;
  for (let i = 0; i < reference.length; i++) {
    const expected = reference[i] ?? 0;
    const difference = Math.abs((actual[i] ?? Number.NaN) - expected);
    if (!(difference <= largestDifference)) largestDifference = difference; // NaN wins
    scale = Math.max(scale, Math.abs(expected));
  }
  return largestDifference / scale;
}

/** The loss, then the gradient of every trainable weight of `model`, in the model's own order. */
export function lossAndWeightGradients(model: tfl.LayersModel, loss: () => tf.Scalar): tf.Tensor[] {
  const { value, grads } = tf.variableGrads(loss);
  const ordered = model.trainableWeights.map((weight) => {
    const gradient = grads[(weight.read() as tf.Variable).name];
    if (gradient === undefined) throw new Error(`no gradient for ${weight.name}`);
    return gradient;
  });
  return [value, ...ordered];
}

/** Fails naming every output whose scaled error exceeds `tolerance`, not just the first. */
export function outputsOverTolerance(
  actual: Float32Array[],
  reference: Float32Array[],
  tolerance: number,
): Array<{ output: number; error: number }> {
  if (actual.length !== reference.length) throw new Error(`got ${actual.length} outputs, expected ${reference.length}`);
  return reference
    .map((expected, output) => ({ output, error: scaledMaxError(actual[output] ?? new Float32Array(), expected) }))
    .filter(({ error }) => !(error <= tolerance));
}
