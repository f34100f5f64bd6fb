import { status } from '@grpc/grpc-js';
import {
  TeacherService,
  type ClassProbabilities,
  type EvaluationMetrics,
  type Preprocessing,
  type PredictStreamRequest,
  type PredictStreamResponse,
  type TrainingConfig,
} from '@noisystudent/proto';

import { ServiceConnection } from './connection.js';
import { codeName, InputError } from './errors.js';
import { checkHealth, type HealthOptions } from './health-check.js';
import type { HealthStatus } from './health.js';
import { toImage, type ImageInput } from './images.js';
import { callMetadata, deadlineAt, type CallOptions, type ConnectOptions } from './options.js';
import { windowedStream } from './windowed-stream.js';

export const TEACHER_ADDRESS = '127.0.0.1:50051';
export const TEACHER_SERVICE = 'noisystudent.v1.Teacher';

/** One of the k most probable classes. */
export interface ClassProbability {
  labelIndex: number;
  label: string;
  probability: number;
}

/** The model's answer for one image. */
export interface Prediction {
  /** The most probable class (the lowest index on a tie), its name and probability. */
  labelIndex: number;
  label: string;
  confidence: number;
  /** The `topK` most probable classes, most probable first; empty when none were asked for. */
  topK: ClassProbability[];
  /** One probability per class, summing to 1 up to rounding. */
  probabilities: number[];
}

export interface PredictResult {
  /** The model version that computed every prediction here. */
  modelVersion: string;
  /** One per image, in the order given. */
  predictions: Prediction[];
}

export interface PredictOptions extends CallOptions {
  /** Also return the k most probable classes (at most the number of classes). @default 0 */
  topK?: number;
}

/** An image for predictMany, with the id its answer will carry (default: its index, as a string). */
export type PredictManyItem = ImageInput | { id: string; image: ImageInput };

export interface PredictManyOptions extends CallOptions {
  /** @default 0 */
  topK?: number;
  /** Requests sent and not yet answered, at most. @default 64 */
  window?: number;
}

/** predictMany's answer for one item: a prediction, or why that item failed (the stream goes on). */
export interface StreamPrediction {
  id: string;
  /** The model version that answered; '' for an error raised before any model. */
  modelVersion: string;
  prediction?: Prediction;
  error?: { code: number; codeName: string; message: string };
}

/** What the serving model expects and how it scored (GetModelInfo). */
export interface ModelInfo {
  version: string;
  /** The teacher whose pseudo labels trained it; '' for the bootstrap teacher. */
  parentVersion: string;
  architecture: string;
  classNames: string[];
  /** [height, width, channels] */
  inputShape: number[];
  preprocessing: Preprocessing | undefined;
  trainingConfig: TrainingConfig | undefined;
  /** On the eval split (which decides promotions). */
  metrics: EvaluationMetrics | undefined;
  /** On the test split (reported only). */
  testMetrics: EvaluationMetrics | undefined;
  createdAt: Date | undefined;
  /** sha256 of the artifact being served. */
  sha256: string;
}

/** A client of the Teacher service; `close()` when done. */
export class TeacherConnection {
  private readonly connection: ServiceConnection;

  constructor(options?: string | readonly string[] | ConnectOptions) {
    this.connection = new ServiceConnection('teacher', options, TEACHER_ADDRESS);
  }

  /** The address as given (a list joined with commas). */
  get address(): string {
    return this.connection.address;
  }

  /**
   * Predict: one image or several (at most the server's max_images_per_request, 256 by default),
   * one prediction each, in order, all from one model version. Retried on UNAVAILABLE.
   * @throws InputError for an image that cannot be sent (before any call)
   * @throws ClientError
   */
  async predict(images: ImageInput | readonly ImageInput[], options: PredictOptions = {}): Promise<PredictResult> {
    const list: readonly ImageInput[] = Array.isArray(images) ? images : [images as ImageInput];
    if (list.length === 0) throw new InputError('images', 'expected at least one image, got none');
    const topK = checkTopK(options.topK);
    const field = Array.isArray(images) ? (index: number) => `images[${index}]` : () => 'image';
    const encoded = await Promise.all(list.map((image, index) => toImage(image, field(index))));
    const response = await this.connection.unary(TeacherService.predict, { images: encoded, topK }, options);
    return { modelVersion: response.modelVersion, predictions: response.predictions.map(toPrediction) };
  }

  /**
   * PredictStream: every item through one stream, at most `window` unanswered at a time, answers
   * as they come (in any order; match them by id). An item the server refuses comes back with
   * `error` and the stream goes on. If the stream fails with UNAVAILABLE it reconnects (the
   * connection's retry policy) and resends what was unanswered.
   * @throws InputError for an item that cannot be sent (when it is reached)
   * @throws ClientError when the stream fails for good
   */
  async *predictMany(
    items: Iterable<PredictManyItem> | AsyncIterable<PredictManyItem>,
    options: PredictManyOptions = {},
  ): AsyncGenerator<StreamPrediction, void, undefined> {
    const topK = checkTopK(options.topK);
    const deadlineMs = options.deadlineMs ?? this.connection.settings.streamDeadlineMs;
    const deadline = deadlineAt(deadlineMs);
    const metadata = callMetadata(this.connection.settings.metadata, options.metadata);
    const answers = windowedStream<PredictManyItem, PredictStreamRequest, PredictStreamResponse>({
      open: () => this.connection.openStream(TeacherService.predictStream, deadline, metadata),
      items,
      toRequest: async (item, index) => {
        const { id, image, field } = streamItem(item, index);
        return { id, image: await toImage(image, field), topK };
      },
      requestId: (request) => request.id,
      responseId: (response) => response.id,
      window: options.window ?? 64,
      retry: this.connection.settings.retry,
      // An image the teacher could not take just now (no model loaded yet, a swap) is sent again later.
      retryAnswer: (response) =>
        response.result?.$case === 'error' && response.result.value.code === status.UNAVAILABLE,
      deadline,
      signal: options.signal,
      context: { service: 'teacher', address: this.address, method: 'PredictStream', deadlineMs },
    });
    for await (const { response } of answers) yield toStreamPrediction(response);
  }

  /** GetModelInfo: the serving model's metadata. Retried on UNAVAILABLE. @throws ClientError */
  async modelInfo(options: CallOptions = {}): Promise<ModelInfo> {
    const { metadata, sha256 } = await this.connection.unary(TeacherService.getModelInfo, {}, options);
    return {
      version: metadata?.version ?? '',
      parentVersion: metadata?.parentVersion ?? '',
      architecture: metadata?.architecture ?? '',
      classNames: metadata?.classNames ?? [],
      inputShape: metadata?.inputShape ?? [],
      preprocessing: metadata?.preprocessing,
      trainingConfig: metadata?.trainingConfig,
      metrics: metadata?.metrics,
      testMetrics: metadata?.testMetrics,
      createdAt: metadata?.createdAt,
      sha256,
    };
  }

  /** grpc.health.v1 Check of the Teacher (SERVING once a model is loaded). @throws ClientError */
  health(options: HealthOptions = {}): Promise<HealthStatus> {
    return checkHealth(this.connection, TEACHER_SERVICE, options);
  }

  close(): void {
    this.connection.close();
  }
}

/** A client of the Teacher at `options` (an address, or ConnectOptions). Connects on the first call. */
export function connectTeacher(options?: string | readonly string[] | ConnectOptions): TeacherConnection {
  return new TeacherConnection(options);
}

export function toPrediction(probabilities: ClassProbabilities): Prediction {
  return {
    labelIndex: probabilities.labelIndex,
    label: probabilities.labelName,
    confidence: probabilities.confidence,
    topK: probabilities.topK.map((entry) => ({
      labelIndex: entry.labelIndex,
      label: entry.labelName,
      probability: entry.probability,
    })),
    probabilities: Array.from(probabilities.probabilities),
  };
}

function toStreamPrediction(response: PredictStreamResponse): StreamPrediction {
  const answer: StreamPrediction = { id: response.id, modelVersion: response.modelVersion };
  if (response.result?.$case === 'prediction') answer.prediction = toPrediction(response.result.value);
  else if (response.result?.$case === 'error') {
    const { code, message } = response.result.value;
    answer.error = { code, codeName: codeName(code), message };
  } else {
    const code = status.INTERNAL;
    answer.error = { code, codeName: codeName(code), message: 'the teacher sent an answer with no result' };
  }
  return answer;
}

/** An item's id and image, and how messages name its image. */
function streamItem(item: PredictManyItem, index: number): { id: string; image: ImageInput; field: string } {
  if (typeof item !== 'object' || item === null || item instanceof Uint8Array || !('image' in item)) {
    return { id: String(index), image: item, field: `items[${index}]` };
  }
  if (typeof item.id !== 'string' || item.id === '') {
    throw new InputError(`items[${index}].id`, `expected a non-empty string, got ${JSON.stringify(item.id)}`);
  }
  return { id: item.id, image: item.image, field: `items[${index}].image` };
}

function checkTopK(topK: number | undefined): number {
  const value = topK ?? 0;
  if (!Number.isInteger(value) || value < 0) {
    throw new InputError('topK', `expected an integer ≥ 0 (classes to list), got ${value}`);
  }
  return value;
}
