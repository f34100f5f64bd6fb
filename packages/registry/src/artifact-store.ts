import {
  artifactName,
  checkVersion,
  Conflict,
  FailedPrecondition,
  InvalidArgument,
  isSha256Hex,
  NotFound,
  sha256Hex,
  versionOfArtifactName,
} from '@noisystudent/core';
import { headers, type ObjectInfo, type ObjectStore } from 'nats';

import { isWrongLastSequence } from './nats-errors.js';
import type { ArtifactInfo } from './types.js';

/** Object header recording the sha256 (lower-case hex) of the bytes as they were put. */
export const SHA256_HEADER = 'Ns-Sha256';

/**
 * Artifact bytes in a JetStream Object Store, one object per version (`model-<version>`), each
 * carrying the sha256 of its bytes in a header. Versions are immutable: a version is written once,
 * by a publish that expects the object's metadata subject to be empty, so two writers racing on
 * one version cannot both win.
 */
export class ArtifactStore {
  constructor(
    private readonly objectStore: ObjectStore,
    private readonly bucket: string,
  ) {}

  async put(bytes: Uint8Array, version: string): Promise<ArtifactInfo> {
    checkVersion(version);
    if (bytes.byteLength === 0) {
      throw new InvalidArgument('bytes', 'expected an encoded ModelArtifact, got 0 bytes');
    }
    const sha256 = sha256Hex(bytes);
    const name = artifactName(version);
    const existing = await this.objectStore.info(name);
    if (existing !== null && !existing.deleted) return this.sameOrConflict(existing, version, sha256);
    const objectHeaders = headers();
    objectHeaders.set(SHA256_HEADER, sha256);
    try {
      const stored = await this.objectStore.putBlob(
        { name, description: `ModelArtifact ${version}`, headers: objectHeaders },
        bytes,
        // The metadata subject must still be where we saw it (empty, or at the deleted entry).
        { previousRevision: existing?.revision ?? 0 },
      );
      return toArtifactInfo(stored, version, sha256);
    } catch (error) {
      if (!isWrongLastSequence(error)) throw error;
      // Someone stored this version between our look and our write; theirs stands.
      const winner = await this.objectStore.info(name);
      if (winner === null || winner.deleted) throw error;
      return this.sameOrConflict(winner, version, sha256);
    }
  }

  async get(version: string, expectedSha256?: string): Promise<{ bytes: Uint8Array; info: ArtifactInfo }> {
    checkVersion(version);
    if (expectedSha256 !== undefined && !isSha256Hex(expectedSha256)) {
      throw new InvalidArgument('expectedSha256', `expected 64 hex digits, got ${JSON.stringify(expectedSha256)}`);
    }
    const name = artifactName(version);
    const result = await this.objectStore.get(name);
    if (result === null) throw this.notFound(version);
    const recorded = recordedSha256(result.info);
    if (recorded === undefined) {
      throw new FailedPrecondition(
        `version ${version}: object ${name} in ${this.bucket} has no ${SHA256_HEADER} header; it was not stored by the registry`,
      );
    }
    let bytes: Uint8Array;
    try {
      bytes = await readAll(result.data);
    } catch (error) {
      // nats.js checks the Object Store's own digest while streaming and fails the stream on a mismatch.
      throw new FailedPrecondition(
        `version ${version}: expected sha256 ${recorded}, but reading ${name} failed: ${messageOf(error)}`,
        { cause: error },
      );
    }
    const actual = sha256Hex(bytes);
    if (actual !== recorded) {
      throw new FailedPrecondition(
        `version ${version}: expected sha256 ${recorded} (recorded when stored), got ${actual}: the stored artifact is corrupt`,
      );
    }
    if (expectedSha256 !== undefined && actual !== expectedSha256.toLowerCase()) {
      throw new FailedPrecondition(
        `version ${version}: expected sha256 ${expectedSha256.toLowerCase()}, got ${actual}: the stored artifact is not the one expected`,
      );
    }
    return { bytes, info: toArtifactInfo(result.info, version, actual) };
  }

  /** The stored artifact of a version, without its bytes; `NotFound` when there is none. */
  async info(version: string): Promise<ArtifactInfo> {
    checkVersion(version);
    const info = await this.objectStore.info(artifactName(version));
    if (info === null || info.deleted) throw this.notFound(version);
    const sha256 = recordedSha256(info);
    if (sha256 === undefined) {
      throw new FailedPrecondition(
        `version ${version}: object ${info.name} in ${this.bucket} has no ${SHA256_HEADER} header; it was not stored by the registry`,
      );
    }
    return toArtifactInfo(info, version, sha256);
  }

  /** Every artifact the registry stored, oldest first; other objects in the bucket are left out. */
  async list(): Promise<ArtifactInfo[]> {
    const artifacts: ArtifactInfo[] = [];
    for (const object of await this.objectStore.list()) {
      const version = versionOfArtifactName(object.name);
      const sha256 = recordedSha256(object);
      if (object.deleted || version === undefined || sha256 === undefined) continue;
      artifacts.push(toArtifactInfo(object, version, sha256));
    }
    return artifacts.sort(
      (a, b) => a.storedAt.getTime() - b.storedAt.getTime() || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
    );
  }

  private sameOrConflict(existing: ObjectInfo, version: string, sha256: string): ArtifactInfo {
    const recorded = recordedSha256(existing);
    if (recorded !== sha256) {
      throw new Conflict(
        `version: ${version} is already stored with sha256 ${recorded ?? '(none recorded)'}, not ${sha256}; ` +
          'versions are immutable, store the new bytes under a new version',
      );
    }
    return toArtifactInfo(existing, version, sha256);
  }

  private notFound(version: string): NotFound {
    return new NotFound(`version: no artifact ${artifactName(version)} in ${this.bucket}`);
  }
}

function toArtifactInfo(object: ObjectInfo, version: string, sha256: string): ArtifactInfo {
  return { name: object.name, version, sha256, size: object.size, storedAt: new Date(object.mtime) };
}

/**
 * The recorded sha256 of an object. `ObjectStore.info` and `get` hand out headers as `MsgHdrs`, but
 * `ObjectStore.list` hands out the JSON as stored, where headers are a record of value arrays.
 */
function recordedSha256(object: ObjectInfo): string | undefined {
  const objectHeaders: unknown = object.headers;
  let value: unknown;
  if (isMsgHdrsLike(objectHeaders)) {
    value = objectHeaders.get(SHA256_HEADER);
  } else if (typeof objectHeaders === 'object' && objectHeaders !== null) {
    const values: unknown = (objectHeaders as Record<string, unknown>)[SHA256_HEADER];
    value = Array.isArray(values) ? values[0] : undefined;
  }
  return typeof value === 'string' && isSha256Hex(value) ? value.toLowerCase() : undefined;
}

function isMsgHdrsLike(value: unknown): value is { get(key: string): string } {
  return typeof value === 'object' && value !== null && typeof (value as { get?: unknown }).get === 'function';
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of stream) {
    chunks.push(chunk);
    length += chunk.byteLength;
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
