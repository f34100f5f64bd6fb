// @noisystudent/client: typed Node clients of the Teacher, Labeler and Trainer services, with
// deadlines, retries, TLS and metadata, taking images as files, bytes or pixels and answering
// with plain objects. Runtime dependencies: @grpc/grpc-js and @noisystudent/proto only.

export {
  connectTeacher,
  TEACHER_ADDRESS,
  TEACHER_SERVICE,
  TeacherConnection,
  type ClassProbability,
  type ModelInfo,
  type Prediction,
  type PredictManyItem,
  type PredictManyOptions,
  type PredictOptions,
  type PredictResult,
  type StreamPrediction,
} from './teacher.js';

export {
  connectLabeler,
  LABELER_ADDRESS,
  LABELER_SERVICE,
  LabelerConnection,
  type IngestItem,
  type IngestOptions,
  type LabelerStats,
} from './labeler.js';
export type { IngestProgress, IngestRejection, IngestSummary } from './ingest-tally.js';

export {
  connectTrainer,
  TRAINER_ADDRESS,
  TRAINER_SERVICE,
  TrainerConnection,
  type Round,
  type RoundDecisionName,
  type RoundsOptions,
  type TrainerPhaseName,
  type TrainerStatus,
} from './trainer.js';

export type { HealthStatus } from './health.js';
export type { HealthOptions } from './health-check.js';
export { toImage, rawImageTensor, type ImageInput, type PixelDtype, type RawImage } from './images.js';
export { ClientError, codeName, InputError, type ServiceName } from './errors.js';
export { DEFAULT_RETRY, type RetryEvent, type RetryOptions } from './retry.js';
export { DEFAULT_DEADLINE_MS, type CallOptions, type ConnectOptions, type TlsOptions } from './options.js';
export { channelTarget, type ChannelTarget } from './address.js';
