import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { pathInside, type AllowedRoots } from '@noisystudent/core';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

interface LayersModelJson {
  modelTopology?: unknown;
  weightsManifest?: Array<{ paths?: string[]; weights?: tf.io.WeightsManifestEntry[] }>;
}

/**
 * Loads a tfjs Layers model saved as a folder (`model.json` and the weight files its manifest
 * names), as `model.save('file://…')` or the Keras converter writes it, without a file IO
 * handler: the files are read here and handed to tfjs from memory. Errors name the file. The
 * manifest's paths must stay inside the folder; with `roots`, every file's real path must lie in them.
 */
export async function loadLayersModelFolder(folder: string, roots?: AllowedRoots): Promise<tfl.LayersModel> {
  const modelPath = join(folder, 'model.json');
  const readable = (field: string, path: string): Promise<string> =>
    roots === undefined ? Promise.resolve(path) : roots.readable(field, path);
  const modelFile = await readable('model.json', modelPath);
  let json: LayersModelJson;
  try {
    json = JSON.parse(await readFile(modelFile, 'utf8')) as LayersModelJson;
  } catch (error) {
    throw new Error(
      `${modelPath}: expected a tfjs Layers model.json (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  if (typeof json.modelTopology !== 'object' || json.modelTopology === null) {
    throw new Error(`${modelPath}: modelTopology: expected the Keras model config, got none`);
  }
  if (!Array.isArray(json.weightsManifest)) {
    throw new Error(`${modelPath}: weightsManifest: expected a list of weight groups, got none`);
  }
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  for (const [group, entry] of json.weightsManifest.entries()) {
    if (!Array.isArray(entry.paths) || !Array.isArray(entry.weights)) {
      throw new Error(`${modelPath}: weightsManifest[${group}]: expected paths and weights`);
    }
    weightSpecs.push(...entry.weights);
    for (const [index, path] of entry.paths.entries()) {
      const field = `${modelPath}: weightsManifest[${group}].paths[${index}]`;
      buffers.push(await readFile(await readable(field, pathInside(field, folder, String(path)))));
    }
  }
  const joined = Buffer.concat(buffers);
  const weightData = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength);
  return tfl.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology as tf.io.ModelJSON['modelTopology'],
      weightSpecs,
      weightData,
    }),
  );
}
