import { Metadata, status } from '@grpc/grpc-js';
import {
  Conflict,
  FailedPrecondition,
  InvalidArgument,
  NotFound,
  ResourceExhausted,
  Unavailable,
  type NsError,
} from '@noisystudent/core';
import { describe, expect, it } from 'vitest';

import { toGrpcStatus, toServiceError } from './grpc-errors.js';

describe('toGrpcStatus', () => {
  it.each<[string, NsError, status]>([
    ['InvalidArgument', new InvalidArgument('images[3]', 'expected 28×28×1, got 32×32×3'), status.INVALID_ARGUMENT],
    ['NotFound', new NotFound('artifact model-v7: not stored'), status.NOT_FOUND],
    ['Conflict', new Conflict('teacher pointer: revision 4 is stale, now 5'), status.ABORTED],
    ['Unavailable', new Unavailable('teacher: no model yet'), status.UNAVAILABLE],
    ['ResourceExhausted', new ResourceExhausted('queue: full'), status.RESOURCE_EXHAUSTED],
    ['FailedPrecondition', new FailedPrecondition('artifact: sha256 mismatch'), status.FAILED_PRECONDITION],
  ])('maps %s to its code and keeps the message', (_, error, code) => {
    expect(toGrpcStatus(error)).toEqual({ code, details: error.message });
  });

  it('names the field of an InvalidArgument first', () => {
    expect(toGrpcStatus(new InvalidArgument('images[3]', 'expected 28×28×1, got 32×32×3'))).toEqual({
      code: status.INVALID_ARGUMENT,
      details: 'images[3]: expected 28×28×1, got 32×32×3',
    });
  });

  it('maps an abort to CANCELLED: the reason of an aborted signal and any error named AbortError', () => {
    const controller = new AbortController();
    controller.abort();
    expect(toGrpcStatus(controller.signal.reason)).toEqual({
      code: status.CANCELLED,
      details: 'This operation was aborted',
    });
    const named = Object.assign(new Error('cancelled: the caller went away'), { name: 'AbortError' });
    expect(toGrpcStatus(named)).toEqual({ code: status.CANCELLED, details: 'cancelled: the caller went away' });
  });

  it('maps an error named DeadlineExceeded to DEADLINE_EXCEEDED', () => {
    const expired = Object.assign(new Error('deadline: passed while the request waited in the queue'), {
      name: 'DeadlineExceeded',
    });
    expect(toGrpcStatus(expired)).toEqual({
      code: status.DEADLINE_EXCEEDED,
      details: 'deadline: passed while the request waited in the queue',
    });
  });

  it('maps anything else to INTERNAL with its message', () => {
    expect(toGrpcStatus(new TypeError("Cannot read properties of undefined (reading 'shape')"))).toEqual({
      code: status.INTERNAL,
      details: "internal error: Cannot read properties of undefined (reading 'shape')",
    });
    expect(toGrpcStatus('worker exited')).toEqual({ code: status.INTERNAL, details: 'internal error: worker exited' });
    expect(toGrpcStatus(undefined)).toEqual({ code: status.INTERNAL, details: 'internal error: undefined' });
    // A plain object with a code is not one of ours: its code is not trusted.
    expect(toGrpcStatus({ code: 'NOT_FOUND', message: 'look-alike' })).toEqual({
      code: status.INTERNAL,
      details: 'internal error: [object Object]',
    });
  });
});

describe('toServiceError', () => {
  it('carries the code, the message as details and message, and empty metadata', () => {
    const error = toServiceError(new NotFound('artifact model-v7: not stored'));
    expect(error).toMatchObject({
      code: status.NOT_FOUND,
      details: 'artifact model-v7: not stored',
      message: 'artifact model-v7: not stored',
    });
    expect(error.metadata).toBeInstanceOf(Metadata);
    expect(error.metadata?.getMap()).toEqual({});
    expect(toServiceError(new Error('boom'))).toMatchObject({ code: status.INTERNAL, details: 'internal error: boom' });
  });
});
