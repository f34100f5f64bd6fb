import type { NatsNames } from '@noisystudent/core';
import type { EvaluationMetrics, TeacherPointer } from '@noisystudent/proto';

export interface RegistryOptions {
  /**
   * Prefix of every NATS name the registry uses: Object Store `<prefix>_models`, KV bucket
   * `<prefix>_registry`. Letters, digits, `-` and `_`.
   * @default 'ns'
   */
  prefix?: string;
  /**
   * Teacher pointers the KV bucket keeps (the history, and what `rollback` can go back to); from
   * 1 to 64, the KV limit. Applies when the bucket is created; an existing bucket keeps its own.
   * @default 64
   */
  history?: number;
  /**
   * Replicas of the Object Store and the KV bucket when this creates them (3 on a 3-node JetStream
   * cluster). An existing bucket keeps its own.
   * @default 1
   */
  replicas?: number;
}

/** What the registry knows about one stored artifact. */
export interface ArtifactInfo {
  /** Object Store name: `model-<version>`. */
  name: string;
  version: string;
  /** Lower-case hex sha256 of the stored bytes, recorded at put time. */
  sha256: string;
  /** Size in bytes. */
  size: number;
  storedAt: Date;
}

/** A teacher pointer and the KV revision it was written at (the revision to pass to the next CAS). */
export interface TeacherRecord {
  pointer: TeacherPointer;
  revision: number;
}

/** A model to make the teacher. The artifact must already be stored under `version`. */
export interface PromotionCandidate {
  version: string;
  /** The held-out evaluation that justified the promotion. */
  metrics?: EvaluationMetrics;
  /** Who promotes: a service or user name, kept in the history. */
  promotedBy: string;
  /** Why, e.g. "bootstrap", "student beat teacher". */
  reason: string;
}

/** A running watch of the teacher pointer. Whoever starts it calls `stop()`. */
export interface TeacherWatch {
  /** The current pointer (if any), then every new one, in revision order. Ends after `stop()`. */
  updates: AsyncIterable<TeacherRecord>;
  /** Ends `updates` and releases the server-side consumer. Safe to call more than once. */
  stop(): void;
}

/**
 * Model versions on NATS JetStream (docs/architecture.md §4–§5): artifact bytes in an Object Store, the
 * teacher pointer in a KV bucket, written only by compare-and-set on the KV revision.
 */
export interface Registry {
  /** The NATS names this registry uses. */
  readonly names: NatsNames;
  /**
   * Stores an encoded ModelArtifact as `model-<version>`. Storing the same bytes again returns the
   * stored info; different bytes under a stored version throw `Conflict`.
   */
  putArtifact(bytes: Uint8Array, version: string): Promise<ArtifactInfo>;
  /**
   * Downloads an artifact and checks its sha256 against the one recorded at put time and, when
   * given, `expectedSha256` (e.g. from the teacher pointer). `NotFound` when missing,
   * `FailedPrecondition` on any mismatch.
   */
  getArtifact(version: string, expectedSha256?: string): Promise<{ bytes: Uint8Array; info: ArtifactInfo }>;
  /** Every stored artifact, oldest first. */
  listVersions(): Promise<ArtifactInfo[]>;
  /** The current teacher pointer, or undefined when there is none yet. */
  readTeacher(): Promise<TeacherRecord | undefined>;
  /**
   * Makes `candidate` the teacher if the pointer is still at `expectedRevision` (0: no teacher
   * yet). A stale revision throws `Conflict`: re-read, decide again, retry.
   */
  promote(candidate: PromotionCandidate, expectedRevision: number): Promise<TeacherRecord>;
  /**
   * Promotes, by the same compare-and-set, a version that was teacher before (it must be in the
   * kept history and not be the current teacher), with reason `rollback to <version>`.
   */
  rollback(toVersion: string, expectedRevision: number, promotedBy: string): Promise<TeacherRecord>;
  /** Every kept teacher pointer, oldest first. */
  history(): Promise<TeacherRecord[]>;
  /** Watches the teacher pointer: the current one first, then every promotion. */
  watchTeacher(): TeacherWatch;
}
