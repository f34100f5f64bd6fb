import { createHash } from 'node:crypto';

/** Lower-case hex sha256 of `bytes`: the name of an artifact in the registry. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

/** True for 64 hex digits (either case): the form `sha256Hex` returns. */
export function isSha256Hex(value: string): boolean {
  return SHA256_HEX.test(value);
}
