import { describe, expect, it } from 'vitest';

import { decodeHealthCheckResponse, encodeHealthCheckRequest } from './health.js';

describe('the hand-encoded health messages', () => {
  it('encode HealthCheckRequest.service as field 1', () => {
    expect(encodeHealthCheckRequest('')).toEqual(Buffer.alloc(0));
    expect(encodeHealthCheckRequest('noisystudent.v1.Teacher')).toEqual(
      Buffer.concat([Buffer.from([0x0a, 23]), Buffer.from('noisystudent.v1.Teacher')]),
    );
    const long = 'x'.repeat(300);
    expect(encodeHealthCheckRequest(long).subarray(0, 3)).toEqual(Buffer.from([0x0a, 0xac, 0x02]));
  });

  it('decode HealthCheckResponse.status, skipping fields they do not know', () => {
    expect(decodeHealthCheckResponse(Buffer.alloc(0))).toBe('UNKNOWN');
    expect(decodeHealthCheckResponse(Buffer.from([0x08, 1]))).toBe('SERVING');
    expect(decodeHealthCheckResponse(Buffer.from([0x08, 2]))).toBe('NOT_SERVING');
    expect(decodeHealthCheckResponse(Buffer.from([0x08, 3]))).toBe('SERVICE_UNKNOWN');
    expect(decodeHealthCheckResponse(Buffer.from([0x08, 9]))).toBe('UNKNOWN');
    // field 2 (string "ab"), field 3 (fixed32), then status.
    expect(decodeHealthCheckResponse(Buffer.from([0x12, 2, 0x61, 0x62, 0x1d, 0, 0, 0, 0, 0x08, 1]))).toBe('SERVING');
    expect(() => decodeHealthCheckResponse(Buffer.from([0x08]))).toThrow(/truncated varint/);
  });
});
