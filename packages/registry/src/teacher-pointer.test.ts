// The history read checked against the leader: a cluster may answer it from a replica that is
// still catching up after a restart (seen on a 3-node cluster: [v1] while the leader had v1, v2).
import { TeacherPointer } from '@noisystudent/proto';
import type { KV, KvEntry } from 'nats';
import { describe, expect, it } from 'vitest';

import { TeacherPointerStore } from './teacher-pointer.js';

function entry(version: string, revision: number): KvEntry {
  const value = TeacherPointer.encode(TeacherPointer.fromPartial({ version })).finish();
  return { bucket: 'b', key: 'teacher', value, revision, operation: 'PUT', length: value.length } as unknown as KvEntry;
}

/** A KV whose history answers from a lagging replica `staleReads` times, then from one caught up. */
function laggingKv(staleReads: number): { kv: KV; historyReads: () => number } {
  const full = [entry('v1', 1), entry('v2', 2)];
  let reads = 0;
  const kv = {
    history: async () => {
      reads++;
      const entries = reads <= staleReads ? full.slice(0, 1) : full;
      return (async function* () {
        yield* entries;
      })();
    },
    get: async () => full[1],
  } as unknown as KV;
  return { kv, historyReads: () => reads };
}

describe('TeacherPointerStore.history', () => {
  it('reads again until the history reaches the leader’s last revision', async () => {
    const { kv, historyReads } = laggingKv(2);
    const records = await new TeacherPointerStore(kv, 'teacher').history();
    expect(records.map((record) => record.pointer.version)).toEqual(['v1', 'v2']);
    expect(historyReads()).toBe(3);
  });

  it('says Unavailable when the replica does not catch up', async () => {
    const { kv } = laggingKv(Infinity);
    await expect(new TeacherPointerStore(kv, 'teacher').history()).rejects.toMatchObject({
      name: 'Unavailable',
      message: expect.stringContaining('the history read ends at revision 1, the leader is at 2') as unknown,
    });
  }, 20_000);
});
