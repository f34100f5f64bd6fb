import { status, type ServerDuplexStream, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { InvalidArgument } from '@noisystudent/core';
import {
  GetModelInfoResponse,
  type GetModelInfoRequest,
  type PredictRequest,
  type PredictResponse,
  type PredictStreamRequest,
  type PredictStreamResponse,
  type TeacherServer,
} from '@noisystudent/proto';
import { serveBoundedDuplex, toGrpcStatus, toServiceError, type Logger } from '@noisystudent/runtime';

import { JobDropped } from './batcher.js';
import type { TeacherMetrics } from './metrics.js';
import type { ModelSlot } from './model-slot.js';
import { toClassProbabilities } from './predictions.js';
import { checkImageCount, type Predictor } from './predictor.js';

export interface ServerLimits {
  maxImagesPerRequest: number;
  /** Requests one PredictStream may have unanswered before the server stops reading it. */
  maxStreamInFlight: number;
}

interface Parts {
  predictor: Predictor;
  slot: ModelSlot;
  metrics: TeacherMetrics;
  limits: ServerLimits;
  log: Logger;
}

/**
 * The Teacher RPCs: thin handlers that check the request, call the predictor and map the result
 * (docs/architecture.md §8).
 */
export function teacherHandlers(parts: Parts): TeacherServer {
  const { predictor, slot, metrics, limits, log } = parts;
  const outcome = (rpc: string, error?: unknown): void => {
    const code = error === undefined ? status.OK : toGrpcStatus(error).code;
    metrics.requests.inc({ rpc, outcome: status[code].toLowerCase() });
    if (error !== undefined && toGrpcStatus(error).code === status.INTERNAL)
      log.error({ err: error, rpc }, 'request failed');
  };

  return {
    predict(call: ServerUnaryCall<PredictRequest, PredictResponse>, callback: sendUnaryData<PredictResponse>): void {
      const controller = new AbortController();
      // grpc-js cancels a call whose deadline passed too: count it as what it is. The caller's
      // timer and ours both start from the deadline, and either may fire a little early.
      call.on('cancelled', () =>
        controller.abort(
          Date.now() >= deadlineOf(call) - DEADLINE_SLACK_MS
            ? new JobDropped('DeadlineExceeded', 'deadline: passed while the request waited in the queue')
            : 'cancelled by the caller',
        ),
      );
      const run = async (): Promise<PredictResponse> => {
        const { images, topK } = call.request;
        checkImageCount(images.length, limits.maxImagesPerRequest);
        checkTopK(topK, slot.require().classCount, 'top_k');
        const { rows, model } = await predictor.predict(images, {
          signal: controller.signal,
          deadline: deadlineOf(call),
        });
        metrics.images.inc(rows.length);
        return {
          predictions: rows.map((row) => toClassProbabilities(row, model.classNames, topK)),
          modelVersion: model.version,
        };
      };
      run().then(
        (response) => {
          outcome('Predict');
          callback(null, response);
        },
        (error: unknown) => {
          outcome('Predict', error);
          callback(toServiceError(error));
        },
      );
    },

    predictStream(call: ServerDuplexStream<PredictStreamRequest, PredictStreamResponse>): void {
      serveBoundedDuplex(call, {
        maxInFlight: limits.maxStreamInFlight,
        answer: async (request, signal): Promise<PredictStreamResponse> => {
          try {
            if (request.id === '') throw new InvalidArgument('id', 'expected a non-empty request id, got ""');
            checkTopK(request.topK, slot.require().classCount, 'top_k');
            const { rows, model } = await predictor.predict([request.image], {
              signal,
              deadline: deadlineOf(call),
              field: 'image',
            });
            metrics.images.inc(rows.length);
            outcome('PredictStream');
            const row = rows[0] ?? new Float32Array();
            return {
              id: request.id,
              result: { $case: 'prediction', value: toClassProbabilities(row, model.classNames, request.topK) },
              modelVersion: model.version,
            };
          } catch (error) {
            outcome('PredictStream', error);
            const { code, details } = toGrpcStatus(error);
            return {
              id: request.id,
              result: { $case: 'error', value: { code, message: details } },
              modelVersion: slot.model?.version ?? '',
            };
          }
        },
        onFlow: (event, state) => {
          if (event === 'paused') {
            metrics.streamReadPauses.inc({ reason: state.writeBlocked ? 'caller_not_reading' : 'in_flight' });
          }
        },
      });
    },

    getModelInfo(
      _call: ServerUnaryCall<GetModelInfoRequest, GetModelInfoResponse>,
      callback: sendUnaryData<GetModelInfoResponse>,
    ): void {
      try {
        const model = slot.require();
        outcome('GetModelInfo');
        callback(null, GetModelInfoResponse.fromPartial({ metadata: model.metadata, sha256: model.sha256 }));
      } catch (error) {
        outcome('GetModelInfo', error);
        callback(toServiceError(error));
      }
    },
  };
}

/** How close to its deadline a cancelled call counts as having run out of time, ms. */
const DEADLINE_SLACK_MS = 50;

function checkTopK(topK: number, classCount: number, field: string): void {
  if (topK > classCount)
    throw new InvalidArgument(field, `expected at most ${classCount} (the model's outputs), got ${topK}`);
}

/** The call's deadline in ms since the epoch (Infinity when the caller set none). */
function deadlineOf(call: { getDeadline(): Date | number }): number {
  const deadline = call.getDeadline();
  return deadline instanceof Date ? deadline.getTime() : deadline;
}
