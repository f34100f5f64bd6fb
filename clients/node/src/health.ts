// grpc.health.v1.Health/Check with its two messages encoded by hand: the client carries no
// .proto loader, and the messages have one field each (grpc/health/v1/health.proto):
//   HealthCheckRequest  { string service = 1; }
//   HealthCheckResponse { ServingStatus status = 1; }  UNKNOWN 0, SERVING 1, NOT_SERVING 2, SERVICE_UNKNOWN 3
import type { UnaryMethod } from './connection.js';

export type HealthStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

const STATUSES: readonly HealthStatus[] = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

/** Field 1, wire type 2 (length-delimited) / wire type 0 (varint). */
const SERVICE_KEY = (1 << 3) | 2;
const STATUS_KEY = (1 << 3) | 0;

export const HEALTH_CHECK: UnaryMethod<string, HealthStatus> = {
  path: '/grpc.health.v1.Health/Check',
  requestSerialize: encodeHealthCheckRequest,
  responseDeserialize: decodeHealthCheckResponse,
};

/** HealthCheckRequest { service } ('' is the whole server, and encodes to no bytes). */
export function encodeHealthCheckRequest(service: string): Buffer {
  if (service === '') return Buffer.alloc(0);
  const name = Buffer.from(service, 'utf8');
  return Buffer.concat([Buffer.from([SERVICE_KEY]), encodeVarint(name.length), name]);
}

/** HealthCheckResponse's status; a value this client does not know reads as 'UNKNOWN'. */
export function decodeHealthCheckResponse(bytes: Buffer): HealthStatus {
  let value = 0;
  let offset = 0;
  while (offset < bytes.length) {
    const key = readVarint(bytes, offset);
    offset = key.next;
    const wireType = key.value % 8;
    if (key.value === STATUS_KEY) {
      const status = readVarint(bytes, offset);
      value = status.value;
      offset = status.next;
    } else if (wireType === 0) {
      offset = readVarint(bytes, offset).next;
    } else if (wireType === 1) {
      offset += 8;
    } else if (wireType === 2) {
      const length = readVarint(bytes, offset);
      offset = length.next + length.value;
    } else if (wireType === 5) {
      offset += 4;
    } else {
      throw new Error(`HealthCheckResponse: unsupported wire type ${wireType} at byte ${offset}`);
    }
  }
  if (offset > bytes.length) throw new Error(`HealthCheckResponse: truncated (${bytes.length} bytes)`);
  return STATUSES[value] ?? 'UNKNOWN';
}

function encodeVarint(value: number): Buffer {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

/** A varint from `offset` (up to 10 bytes; values past 2^53 lose precision, which no field here reaches). */
function readVarint(bytes: Buffer, offset: number): { value: number; next: number } {
  let value = 0;
  let scale = 1;
  for (let index = offset; index < offset + 10; index++) {
    const byte = bytes[index];
    if (byte === undefined) throw new Error(`HealthCheckResponse: truncated varint at byte ${offset}`);
    value += (byte & 0x7f) * scale;
    scale *= 0x80;
    if (byte < 0x80) return { value, next: index + 1 };
  }
  throw new Error(`HealthCheckResponse: varint longer than 10 bytes at byte ${offset}`);
}
