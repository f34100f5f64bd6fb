import { readFile } from 'node:fs/promises';

import { InvalidArgument, NotFound, sha256Hex } from '@noisystudent/core';
import { ModelArtifact, TeacherPointer } from '@noisystudent/proto';

import type { TeacherRecord, TeacherWatch } from './types.js';

/**
 * Where a service finds "the teacher": its pointer, followed with `followTeacher`, and the
 * artifact of each version. The registry is one; `fileTeacherSource` serves one artifact file.
 */
export interface TeacherSource {
  watchTeacher(): TeacherWatch;
  getArtifact(version: string, expectedSha256?: string): Promise<{ bytes: Uint8Array }>;
}

/**
 * One artifact file as the teacher's model source (`--model-file`): serving without NATS, e.g. on
 * a laptop or behind an app that ships its model. It reports one pointer, for the file's version.
 */
export async function fileTeacherSource(path: string): Promise<TeacherSource> {
  const bytes = new Uint8Array(await readFile(path));
  let version: string;
  try {
    version = ModelArtifact.decode(bytes).metadata?.version ?? '';
  } catch (error) {
    throw new InvalidArgument('modelFile', `expected an encoded ModelArtifact, ${path} did not decode`, {
      cause: error,
    });
  }
  const pointer = TeacherPointer.fromPartial({ version, sha256: sha256Hex(bytes), reason: `file ${path}` });
  return {
    watchTeacher: () => fixedTeacherWatch([{ pointer, revision: 0 }]),
    getArtifact: (requested) =>
      requested === version
        ? Promise.resolve({ bytes: bytes.slice() })
        : Promise.reject(new NotFound(`version: ${requested} is not in ${path} (it holds ${version})`)),
  };
}

/** A watch that reports `records`, then nothing more until stopped: a pointer that never moves. */
export function fixedTeacherWatch(records: readonly TeacherRecord[]): TeacherWatch {
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  return {
    updates: (async function* () {
      yield* records;
      await stopped;
    })(),
    stop: () => stop(),
  };
}
