import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';

/** An idx array (the MNIST file format): unsigned bytes with their dimensions. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const UNSIGNED_BYTE = 0x08;

/**
 * Parses an idx file of unsigned bytes: two zero bytes, type 0x08, the number of dimensions,
 * then each dimension as a big-endian uint32, then the values. `source` names the file in errors.
 */
export function parseIdx(bytes: Uint8Array, source: string, expectedRank?: number): IdxArray {
  if (bytes.length < 4)
    throw new Error(`${source}: truncated idx file: ${bytes.length} bytes, expected at least a 4-byte header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const rank = bytes[3] ?? 0;
  if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== UNSIGNED_BYTE || rank === 0) {
    throw new Error(
      `${source}: not an idx file of unsigned bytes: magic number 0x${magic.toString(16).padStart(8, '0')}`,
    );
  }
  if (expectedRank !== undefined && rank !== expectedRank) {
    const expectedMagic = (UNSIGNED_BYTE << 8) | expectedRank;
    throw new Error(
      `${source}: wrong magic number 0x${magic.toString(16)}: expected 0x${expectedMagic.toString(16)} (${expectedRank}-d unsigned bytes)`,
    );
  }
  const headerLength = 4 + 4 * rank;
  if (bytes.length < headerLength)
    throw new Error(`${source}: truncated idx header: ${bytes.length} bytes, expected ${headerLength}`);
  const dims = Array.from({ length: rank }, (_, axis) => view.getUint32(4 + 4 * axis));
  const valueCount = dims.reduce((product, dim) => product * dim, 1);
  const actual = bytes.length - headerLength;
  if (actual !== valueCount) {
    const shape = dims.join('×');
    throw new Error(
      actual < valueCount
        ? `${source}: truncated: header promises ${shape} = ${valueCount} values, file holds ${actual}`
        : `${source}: ${actual - valueCount} unexpected bytes after the ${shape} values`,
    );
  }
  return { dims, data: bytes.subarray(headerLength) };
}

/** Reads an idx file, gunzipping it when it starts with the gzip signature. */
export async function readIdxFile(path: string, expectedRank?: number): Promise<IdxArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`${path}: cannot read idx file: ${reason}`);
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`${path}: corrupt or truncated gzip: ${reason}`);
    }
  }
  return parseIdx(bytes, path, expectedRank);
}
