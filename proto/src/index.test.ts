import { describe, expect, it } from 'vitest';
import * as entry from './index.js';
import * as labeler from './gen/noisystudent/v1/labeler.js';
import * as model from './gen/noisystudent/v1/model.js';
import * as prediction from './gen/noisystudent/v1/prediction.js';
import * as registry from './gen/noisystudent/v1/registry.js';
import * as shard from './gen/noisystudent/v1/shard.js';
import * as teacher from './gen/noisystudent/v1/teacher.js';
import * as tensor from './gen/noisystudent/v1/tensor.js';

// protobufFileName differs per file and says nothing a consumer needs.
const perFileOnly = new Set(['protobufFileName']);

describe('package entry', () => {
  it.each([
    ['tensor', tensor],
    ['model', model],
    ['prediction', prediction],
    ['shard', shard],
    ['registry', registry],
    ['teacher', teacher],
    ['labeler', labeler],
  ])('re-exports every message, enum and enum helper of %s.proto', (_file, generated) => {
    const exported: Record<string, unknown> = entry;
    const expected = Object.entries(generated).filter(([name]) => !perFileOnly.has(name));

    expect(expected.filter(([name, value]) => exported[name] !== value).map(([name]) => name)).toEqual([]);
  });
});

describe('PROTO_FILES', () => {
  it('lists every .proto file under PROTO_DIR', async () => {
    const { readdir } = await import('node:fs/promises');
    const onDisk = (await readdir(`${entry.PROTO_DIR}/noisystudent/v1`)).filter((name) => name.endsWith('.proto'));
    expect([...entry.PROTO_FILES].sort()).toEqual(onDisk.map((name) => `noisystudent/v1/${name}`).sort());
  });
});
