import { setMaxListeners } from 'node:events';

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
import { toGrpcStatus, toServiceError, type Logger } from '@noisystudent/runtime';

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

/** The Teacher RPCs: thin handlers that check the request, call the predictor and map the result (STYLE.md). */
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
      call.on('cancelled', () => controller.abort('cancelled by the caller'));
      const run = async (): Promise<PredictResponse> => {
        const { images, topK } = call.request;
        checkImageCount(images.length, limits.maxImagesPerRequest);
        checkTopK(topK, slot.require().classNames.length, 'top_k');
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
      const controller = new AbortController();
      // Every queued request of the stream listens to this one signal.
      setMaxListeners(0, controller.signal);
      let unanswered = 0;
      let paused = false;
      let ended = false;
      call.on('cancelled', () => controller.abort('stream cancelled by the caller'));
      const finishIfDone = (): void => {
        if (ended && unanswered === 0) call.end();
      };
      const answer = async (request: PredictStreamRequest): Promise<PredictStreamResponse> => {
        try {
          if (request.id === '') throw new InvalidArgument('id', 'expected a non-empty request id, got ""');
          checkTopK(request.topK, slot.require().classNames.length, 'top_k');
          const { rows, model } = await predictor.predict([request.image], {
            signal: controller.signal,
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
      };
      call.on('data', (request: PredictStreamRequest) => {
        unanswered++;
        if (!paused && unanswered >= limits.maxStreamInFlight) {
          paused = true;
          call.pause();
        }
        void answer(request).then((response) => {
          unanswered--;
          if (!call.cancelled && !call.destroyed) call.write(response);
          if (paused && unanswered <= limits.maxStreamInFlight / 2) {
            paused = false;
            call.resume();
          }
          finishIfDone();
        });
      });
      call.on('end', () => {
        ended = true;
        finishIfDone();
      });
      call.on('error', (error) => log.debug({ err: error }, 'PredictStream ended with an error'));
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

function checkTopK(topK: number, classes: number, field: string): void {
  if (topK > classes)
    throw new InvalidArgument(field, `expected at most ${classes} (the model's classes), got ${topK}`);
}

/** The call's deadline in ms since the epoch (Infinity when the caller set none). */
function deadlineOf(call: { getDeadline(): Date | number }): number {
  const deadline = call.getDeadline();
  return deadline instanceof Date ? deadline.getTime() : deadline;
}
