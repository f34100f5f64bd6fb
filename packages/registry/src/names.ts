import { MODEL_VERSION_PATTERN } from '@noisystudent/ml';
import { InvalidArgument } from '@noisystudent/ml/errors';

import type { RegistryNames } from './types.js';

export const DEFAULT_PREFIX = 'ns';
export const TEACHER_KEY = 'teacher';
const ARTIFACT_NAME_PREFIX = 'model-';

/** JetStream bucket names allow letters, digits, `-` and `_`; the prefix is the start of one. */
const PREFIX_PATTERN = /^[A-Za-z0-9_-]+$/;

export function registryNames(prefix: string = DEFAULT_PREFIX): RegistryNames {
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new InvalidArgument('prefix', `expected letters, digits, '-' or '_', got ${JSON.stringify(prefix)}`);
  }
  return {
    prefix,
    modelsBucket: `${prefix}_models`,
    registryBucket: `${prefix}_registry`,
    teacherKey: TEACHER_KEY,
  };
}

/** Throws `InvalidArgument` naming `field` unless `version` can name a model (ModelMetadata.version). */
export function checkVersion(version: string, field = 'version'): void {
  if (!MODEL_VERSION_PATTERN.test(version)) {
    throw new InvalidArgument(
      field,
      `expected a model version of letters, digits, '-' or '_' (e.g. "v3"), got ${JSON.stringify(version)}`,
    );
  }
}

/** The Object Store name of a version's artifact. */
export function artifactName(version: string): string {
  return `${ARTIFACT_NAME_PREFIX}${version}`;
}

/** The version an Object Store name holds, or undefined for a name the registry did not write. */
export function versionOfArtifactName(name: string): string | undefined {
  if (!name.startsWith(ARTIFACT_NAME_PREFIX)) return undefined;
  const version = name.slice(ARTIFACT_NAME_PREFIX.length);
  return MODEL_VERSION_PATTERN.test(version) ? version : undefined;
}
