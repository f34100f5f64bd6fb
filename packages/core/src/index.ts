// @noisystudent/core: dependency-free basics every package shares (docs/architecture.md §2).
export {
  Conflict,
  FailedPrecondition,
  InvalidArgument,
  NotFound,
  NsError,
  ResourceExhausted,
  Unavailable,
  isNsError,
  type NsErrorCode,
} from './errors.js';
export {
  DEFAULT_PREFIX,
  MODEL_VERSION_PATTERN,
  NAME_PREFIX_PATTERN,
  TEACHER_KEY,
  artifactName,
  checkVersion,
  eventsSubject,
  labelingConsumer,
  natsNames,
  shardSubject,
  trainingConsumer,
  unlabeledSubject,
  versionOfArtifactName,
  type NatsNames,
} from './names.js';
export {
  AllowedRoots,
  SYSTEM_DATASETS_ROOT,
  defaultAllowedRoots,
  parseAllowedRoots,
  pathInside,
} from './allowed-roots.js';
export { isSha256Hex, sha256Hex } from './sha256.js';
export { isTransientNatsError, retryTransient } from './transient.js';
export { hashToken, newToken, ROLES, TokenTable, type Role, type TokenEntry } from './tokens.js';
export {
  NATS_USERS,
  natsAuthorizationConfig,
  natsPermissions,
  type NatsPermissions,
  type NatsUser,
} from './nats-permissions.js';
