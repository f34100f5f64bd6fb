import {
  checkVersion,
  FailedPrecondition,
  InvalidArgument,
  natsNames,
  retryTransient,
  type NatsNames,
} from '@noisystudent/core';
import type { TeacherPointer } from '@noisystudent/proto';
import type { NatsConnection } from 'nats';

import { ArtifactStore } from './artifact-store.js';
import { fromNatsError } from './nats-errors.js';
import { checkRevision, TeacherPointerStore } from './teacher-pointer.js';
import type {
  ArtifactInfo,
  PromotionCandidate,
  Registry,
  RegistryOptions,
  TeacherRecord,
  TeacherWatch,
} from './types.js';

const DEFAULT_HISTORY = 64;
/** The most values per key a JetStream KV bucket keeps. */
const MAX_HISTORY = 64;

/**
 * Opens the registry on `nc`, creating its Object Store and KV bucket when missing. Uses only what
 * nats-server 2.9 supports (no stream metadata, compression or multi-subject filters).
 */
export async function openRegistry(nc: NatsConnection, options: RegistryOptions = {}): Promise<Registry> {
  const names = natsNames(options.prefix);
  const history = options.history ?? DEFAULT_HISTORY;
  if (!Number.isInteger(history) || history < 1 || history > MAX_HISTORY) {
    throw new InvalidArgument('history', `expected an integer from 1 to ${MAX_HISTORY}, got ${history}`);
  }
  const replicas = options.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) {
    throw new InvalidArgument('replicas', `expected an integer from 1 to 5, got ${replicas}`);
  }
  try {
    const views = nc.jetstream().views;
    // A cluster still electing leaders, or with a node restarting, may time out: ask again.
    const objectStore = await retryTransient(() =>
      views.os(names.modelsBucket, {
        replicas,
        description: 'Noisy Student model artifacts: model-<version>, encoded ModelArtifact protobuf',
      }),
    );
    const kv = await retryTransient(() =>
      views.kv(names.registryBucket, {
        history,
        replicas,
        // Reads go to the stream leader: a direct get may be answered by a replica still catching up
        // after a restart, which would show an old teacher (docs/architecture.md: cluster mode).
        allow_direct: false,
        description:
          'Noisy Student registry: the teacher pointer (TeacherPointer protobuf), written by compare-and-set',
      }),
    );
    return new NatsRegistry(
      names,
      new ArtifactStore(objectStore, names.modelsBucket),
      new TeacherPointerStore(kv, names.teacherKey),
    );
  } catch (error) {
    throw fromNatsError(error, `registry ${names.prefix}: opening ${names.modelsBucket} and ${names.registryBucket}`);
  }
}

class NatsRegistry implements Registry {
  constructor(
    readonly names: NatsNames,
    private readonly artifacts: ArtifactStore,
    private readonly teacher: TeacherPointerStore,
  ) {}

  putArtifact(bytes: Uint8Array, version: string): Promise<ArtifactInfo> {
    return guard(`storing artifact ${version}`, () => this.artifacts.put(bytes, version));
  }

  getArtifact(version: string, expectedSha256?: string): Promise<{ bytes: Uint8Array; info: ArtifactInfo }> {
    return guard(`loading artifact ${version}`, () => this.artifacts.get(version, expectedSha256));
  }

  listVersions(): Promise<ArtifactInfo[]> {
    return guard('listing artifacts', () => this.artifacts.list());
  }

  readTeacher(): Promise<TeacherRecord | undefined> {
    return guard('reading the teacher pointer', () => this.teacher.read());
  }

  promote(candidate: PromotionCandidate, expectedRevision: number): Promise<TeacherRecord> {
    return guard(`promoting ${candidate.version}`, () => this.promoteNow(candidate, expectedRevision));
  }

  rollback(toVersion: string, expectedRevision: number, promotedBy: string): Promise<TeacherRecord> {
    return guard(`rolling back to ${toVersion}`, async () => {
      checkVersion(toVersion, 'toVersion');
      checkRevision(expectedRevision);
      const records = await this.teacher.history();
      const current = records.at(-1);
      if (!records.some((record) => record.pointer.version === toVersion)) {
        const kept = records.map((record) => record.pointer.version).join(', ') || 'none';
        throw new FailedPrecondition(
          `toVersion: ${toVersion} was never teacher in the kept history (${kept}); promote it instead`,
        );
      }
      if (current?.pointer.version === toVersion && current.revision === expectedRevision) {
        throw new FailedPrecondition(`toVersion: ${toVersion} is the current teacher; nothing to roll back`);
      }
      return this.promoteNow({ version: toVersion, promotedBy, reason: `rollback to ${toVersion}` }, expectedRevision);
    });
  }

  history(): Promise<TeacherRecord[]> {
    return guard('reading the teacher history', () => this.teacher.history());
  }

  watchTeacher(): TeacherWatch {
    return this.teacher.watch();
  }

  private async promoteNow(candidate: PromotionCandidate, expectedRevision: number): Promise<TeacherRecord> {
    checkVersion(candidate.version);
    checkRevision(expectedRevision);
    if (candidate.promotedBy.trim() === '') {
      throw new InvalidArgument('promotedBy', 'expected the name of the promoting service or user, got ""');
    }
    if (candidate.reason.trim() === '') {
      throw new InvalidArgument('reason', 'expected why the model is promoted, e.g. "student beat teacher", got ""');
    }
    const artifact = await this.artifacts.info(candidate.version);
    const current = await this.teacher.read();
    // The parent is the pointer being replaced; if that is not the one at expectedRevision the
    // write would fail anyway, so fail now with the same Conflict.
    if ((current?.revision ?? 0) !== expectedRevision) throw await this.teacher.conflict(expectedRevision);
    const pointer: TeacherPointer = {
      version: candidate.version,
      artifactName: artifact.name,
      sha256: artifact.sha256,
      metrics: candidate.metrics,
      parentVersion: current?.pointer.version ?? '',
      promotedAt: new Date(),
      promotedBy: candidate.promotedBy,
      reason: candidate.reason,
    };
    return this.teacher.compareAndSet(pointer, expectedRevision);
  }
}

async function guard<T>(doing: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw fromNatsError(error, doing);
  }
}
