import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/** What a checkpoint restores: every model weight (moving statistics too) and the optimizer's state. */
interface Manifest {
  format: 'noisystudent-checkpoint-1';
  /** Identifies the run; a checkpoint of another run is refused rather than silently resumed. */
  runKey: string;
  step: number;
  tensors: Array<{
    group: 'model' | 'optimizer';
    name: string;
    shape: number[];
    dtype: 'float32' | 'int32';
    offset: number;
  }>;
}

/** Writes the state after `step` steps atomically (temporary file, then rename). */
export async function saveCheckpoint(
  path: string,
  runKey: string,
  step: number,
  model: tfl.LayersModel,
  optimizer: tf.Optimizer,
): Promise<void> {
  const named: Array<{ group: 'model' | 'optimizer'; name: string; tensor: tf.Tensor }> = [
    ...model.weights.map((weight) => ({ group: 'model' as const, name: weight.originalName, tensor: weight.read() })),
    ...(await optimizer.getWeights()).map((entry) => ({
      group: 'optimizer' as const,
      name: entry.name,
      tensor: entry.tensor,
    })),
  ];
  const tensors: Manifest['tensors'] = [];
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const { group, name, tensor } of named) {
    if (tensor.dtype !== 'float32' && tensor.dtype !== 'int32')
      throw new Error(`checkpoint: ${name} has unsupported dtype ${tensor.dtype}`);
    const data = await tensor.data();
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
    tensors.push({ group, name, shape: tensor.shape, dtype: tensor.dtype, offset });
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  const manifest: Manifest = { format: 'noisystudent-checkpoint-1', runKey, step, tensors };
  const header = new TextEncoder().encode(JSON.stringify(manifest));
  const length = new Uint8Array(4);
  new DataView(length.buffer).setUint32(0, header.byteLength, true);
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.tmp-${process.pid}`;
  await writeFile(temporary, Buffer.concat([length, header, ...chunks]));
  await rename(temporary, path);
}

/**
 * Restores a checkpoint written by `saveCheckpoint` for the same run; returns the step to go
 * on from, or 0 when there is no checkpoint. A corrupt file or one from another run is an error.
 */
export async function loadCheckpoint(
  path: string,
  runKey: string,
  model: tfl.LayersModel,
  optimizer: tf.Optimizer,
  /** What a checkpoint of another run does: an error, or ignored (the run starts over and overwrites it). @default 'throw' */
  onOtherRun: 'throw' | 'start-over' = 'throw',
): Promise<number> {
  let file: Buffer;
  try {
    file = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
  if (file.byteLength < 4) throw new Error(`${path}: truncated checkpoint`);
  const headerLength = file.readUInt32LE(0);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(file.subarray(4, 4 + headerLength).toString('utf8')) as Manifest;
  } catch {
    throw new Error(`${path}: corrupt checkpoint header`);
  }
  if (manifest.format !== 'noisystudent-checkpoint-1') throw new Error(`${path}: not a noisystudent checkpoint`);
  if (manifest.runKey !== runKey) {
    if (onOtherRun === 'start-over') return 0;
    throw new Error(
      `${path}: checkpoint of another run (${manifest.runKey}); expected ${runKey}. Delete it or choose another path`,
    );
  }
  const body = file.subarray(4 + headerLength);
  const read = (entry: Manifest['tensors'][number]): tf.Tensor => {
    const count = entry.shape.reduce((product, dim) => product * dim, 1);
    const end = entry.offset + count * 4;
    if (end > body.byteLength) throw new Error(`${path}: truncated at ${entry.group} weight ${entry.name}`);
    const bytes = body.subarray(entry.offset, end);
    const aligned = new Uint8Array(bytes).buffer;
    const values = entry.dtype === 'int32' ? new Int32Array(aligned) : new Float32Array(aligned);
    return tf.tensor(values, entry.shape, entry.dtype);
  };
  const modelEntries = manifest.tensors.filter((entry) => entry.group === 'model');
  if (modelEntries.length !== model.weights.length) {
    throw new Error(`${path}: ${modelEntries.length} model weights, the model has ${model.weights.length}`);
  }
  const weights = modelEntries.map(read);
  model.setWeights(weights);
  tf.dispose(weights);
  const optimizerWeights = manifest.tensors
    .filter((entry) => entry.group === 'optimizer')
    .map((entry) => ({ name: entry.name, tensor: read(entry) }));
  await optimizer.setWeights(optimizerWeights);
  // setWeights keeps copies as variables; the read tensors are ours to free.
  tf.dispose(optimizerWeights.map((entry) => entry.tensor));
  return manifest.step;
}
