// @noisystudent/registry: model versions on NATS JetStream (DESIGN.md §4–§5).
export { openRegistry } from './registry.js';
export { followTeacher, type FollowTeacherOptions, type TeacherFollowing } from './follow-teacher.js';
export { DEFAULT_PREFIX, TEACHER_KEY, artifactName, registryNames } from './names.js';
export { SHA256_HEADER } from './artifact-store.js';
export type {
  ArtifactInfo,
  PromotionCandidate,
  Registry,
  RegistryNames,
  RegistryOptions,
  TeacherRecord,
  TeacherWatch,
} from './types.js';
