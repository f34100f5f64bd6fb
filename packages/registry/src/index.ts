// @noisystudent/registry: model versions on NATS JetStream (docs/architecture.md §4–§5).
export { openRegistry } from './registry.js';
export { followTeacher, type FollowTeacherOptions, type TeacherFollowing } from './follow-teacher.js';
export { fileTeacherSource, fixedTeacherWatch, type TeacherSource } from './teacher-source.js';
export { SHA256_HEADER } from './artifact-store.js';
export type {
  ArtifactInfo,
  PromotionCandidate,
  Registry,
  RegistryOptions,
  TeacherRecord,
  TeacherWatch,
} from './types.js';
