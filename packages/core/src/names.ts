import { InvalidArgument } from './errors.js';

/**
 * A model version (ModelMetadata.version): it appears in NATS names (`ns.shards.<version>`,
 * `model-<version>`), so letters, digits, `-` and `_` only (model.proto's rule).
 */
export const MODEL_VERSION_PATTERN = /^[A-Za-z0-9_-]+$/;

/** The prefix of every NATS name: JetStream stream and bucket names allow letters, digits, `-` and `_`. */
export const NAME_PREFIX_PATTERN = /^[A-Za-z0-9_-]+$/;

/** @default prefix of every NATS name */
export const DEFAULT_PREFIX = 'ns';

/** The KV key of the current teacher pointer. */
export const TEACHER_KEY = 'teacher';

const ARTIFACT_NAME_PREFIX = 'model-';

/** Throws `InvalidArgument` naming `field` unless `version` can name a model. */
export function checkVersion(version: string, field = 'version'): void {
  if (!MODEL_VERSION_PATTERN.test(version)) {
    throw new InvalidArgument(
      field,
      `expected a model version of letters, digits, '-' or '_' (e.g. "v3"), got ${JSON.stringify(version)}`,
    );
  }
}

/** Every JetStream name of one deployment (docs/architecture.md §4), derived from one prefix. */
export interface NatsNames {
  prefix: string;
  /** Stream of unlabeled images: `NS_UNLABELED` for prefix `ns`. */
  unlabeledStream: string;
  /** `ns.unlabeled.>`; a producer publishes to `ns.unlabeled.<source>`. */
  unlabeledSubjects: string;
  /** Stream of pseudo-labeled shards: `NS_SHARDS`. */
  shardsStream: string;
  /** `ns.shards.>`; a teacher version's shards go to `ns.shards.<teacherVersion>`. */
  shardsSubjects: string;
  /** Object Store of model artifacts: `ns_models`. */
  modelsBucket: string;
  /** KV bucket of the teacher pointer: `ns_registry`. */
  registryBucket: string;
  /** Key of the teacher pointer in `registryBucket`. */
  teacherKey: string;
}

/** The names for `prefix`; a prefix that cannot start a stream or bucket name is an `InvalidArgument`. */
export function natsNames(prefix: string = DEFAULT_PREFIX): NatsNames {
  if (!NAME_PREFIX_PATTERN.test(prefix)) {
    throw new InvalidArgument('prefix', `expected letters, digits, '-' or '_', got ${JSON.stringify(prefix)}`);
  }
  const upper = prefix.toUpperCase().replace(/-/g, '_');
  return {
    prefix,
    unlabeledStream: `${upper}_UNLABELED`,
    unlabeledSubjects: `${prefix}.unlabeled.>`,
    shardsStream: `${upper}_SHARDS`,
    shardsSubjects: `${prefix}.shards.>`,
    modelsBucket: `${prefix}_models`,
    registryBucket: `${prefix}_registry`,
    teacherKey: TEACHER_KEY,
  };
}

/** Subject an unlabeled image is stored under: `<prefix>.unlabeled.<source>`, the source made one token. */
export function unlabeledSubject(names: NatsNames, source: string): string {
  return `${names.prefix}.unlabeled.${subjectToken(source)}`;
}

/** Subject of a teacher version's shards: `<prefix>.shards.<teacherVersion>`. */
export function shardSubject(names: NatsNames, teacherVersion: string): string {
  return `${names.prefix}.shards.${subjectToken(teacherVersion)}`;
}

/** Subject of a service's events: `<prefix>.events.<service>`. */
export function eventsSubject(names: NatsNames, service: string): string {
  return `${names.prefix}.events.${subjectToken(service)}`;
}

/** Durable consumer labeling NS_UNLABELED for one teacher version (shared by every labeler replica). */
export function labelingConsumer(teacherVersion: string): string {
  return `labeler_${subjectToken(teacherVersion)}`;
}

/** Durable consumer of NS_SHARDS collecting one teacher version's shards for the trainer. */
export function trainingConsumer(teacherVersion: string): string {
  return `trainer_${subjectToken(teacherVersion)}`;
}

/** The Object Store name of a version's artifact: `model-<version>`. */
export function artifactName(version: string): string {
  return `${ARTIFACT_NAME_PREFIX}${version}`;
}

/** The version an Object Store name holds, or undefined for a name the registry did not write. */
export function versionOfArtifactName(name: string): string | undefined {
  if (!name.startsWith(ARTIFACT_NAME_PREFIX)) return undefined;
  const version = name.slice(ARTIFACT_NAME_PREFIX.length);
  return MODEL_VERSION_PATTERN.test(version) ? version : undefined;
}

/** `value` as one subject token: no dots, spaces or wildcards (each becomes `_`), never empty. */
function subjectToken(value: string): string {
  return value.replace(/[^A-Za-z0-9_-]/g, '_') || '_';
}
