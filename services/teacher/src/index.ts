export { DynamicBatcher, JobDropped, type BatcherOptions, type QueuedJob, type SubmitOptions } from './batcher.js';
export { TEACHER_ENV_PREFIX, teacherConfig, teacherConfigSchema, type TeacherConfig } from './config.js';
export { startTeacher, TEACHER_SERVICE_NAME, type Teacher } from './teacher.js';
