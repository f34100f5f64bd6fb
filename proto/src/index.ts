// The noisystudent.v1 wire contracts (noisystudent/v1/*.proto), as ts-proto generates them into ./gen.
// Each message is an interface plus a value of the same name with encode, decode, fromJSON, toJSON, create and
// fromPartial. Enums drop their value prefix (Dtype.FLOAT32 is DTYPE_FLOAT32 on the wire and in JSON).

export { protobufPackage, type DeepPartial, type MessageFns } from './gen/noisystudent/v1/tensor.js';

export { Dtype, dtypeFromJSON, dtypeToJSON, Image, Tensor } from './gen/noisystudent/v1/tensor.js';

export {
  ColorMode,
  colorModeFromJSON,
  colorModeToJSON,
  EvaluationMetrics,
  ModelArtifact,
  ModelMetadata,
  NoiseConfig,
  Preprocessing,
  Rescale,
  ResizeMethod,
  resizeMethodFromJSON,
  resizeMethodToJSON,
  Standardize,
  TrainingConfig,
  WeightSpec,
} from './gen/noisystudent/v1/model.js';

export { ClassProbabilities, TopKEntry } from './gen/noisystudent/v1/prediction.js';

export {
  BalancingPolicy,
  LabelMode,
  labelModeFromJSON,
  labelModeToJSON,
  PseudoLabeledExample,
  RejectedImage,
  Shard,
} from './gen/noisystudent/v1/shard.js';

export { TeacherPointer } from './gen/noisystudent/v1/registry.js';

export {
  GetModelInfoRequest,
  GetModelInfoResponse,
  PredictRequest,
  PredictResponse,
  PredictStreamRequest,
  PredictStreamResponse,
  RequestError,
  TeacherClient,
  TeacherService,
  type TeacherServer,
} from './gen/noisystudent/v1/teacher.js';

export {
  GetStatsRequest,
  GetStatsResponse,
  IngestRejection,
  IngestRequest,
  IngestResponse,
  IngestStored,
  LabelerClient,
  LabelerService,
  UnlabeledImage,
  VersionStats,
  type LabelerServer,
} from './gen/noisystudent/v1/labeler.js';

export {
  GetStatusRequest,
  GetStatusResponse,
  ListRoundsRequest,
  ListRoundsResponse,
  RoundDecision,
  roundDecisionToJSON,
  RoundRecord,
  RoundStarted,
  TrainerClient,
  TrainerEvent,
  TrainerPhase,
  trainerPhaseToJSON,
  TrainerService,
  type TrainerServer,
} from './gen/noisystudent/v1/trainer.js';

/** The folder holding noisystudent/v1/*.proto, for tools that load the .proto files (server reflection). */
export const PROTO_DIR = new URL('..', import.meta.url).pathname;

/** Every .proto file of the contract, relative to PROTO_DIR. */
export const PROTO_FILES = [
  'noisystudent/v1/tensor.proto',
  'noisystudent/v1/model.proto',
  'noisystudent/v1/prediction.proto',
  'noisystudent/v1/shard.proto',
  'noisystudent/v1/registry.proto',
  'noisystudent/v1/teacher.proto',
  'noisystudent/v1/labeler.proto',
  'noisystudent/v1/trainer.proto',
] as const;
