import { Conflict, FailedPrecondition, InvalidArgument, Unavailable } from '@noisystudent/core';
import { TeacherPointer } from '@noisystudent/proto';
import type { KV, KvEntry, QueuedIterator } from 'nats';

import { fromNatsError, isWrongLastSequence } from './nats-errors.js';
import type { TeacherRecord, TeacherWatch } from './types.js';

/** Reads of a history that lags the leader before giving up (about 10 s in all). */
const HISTORY_ATTEMPTS = 8;

/**
 * The teacher pointer: one KV key holding a protobuf `TeacherPointer`. The KV revision of the key is
 * its version for compare-and-set: every write names the revision it replaces, and the server
 * refuses a write whose revision is stale ("wrong last sequence"), so concurrent promoters cannot
 * both win and none overwrites a pointer it has not seen.
 */
export class TeacherPointerStore {
  constructor(
    private readonly kv: KV,
    private readonly key: string,
  ) {}

  async read(): Promise<TeacherRecord | undefined> {
    const entry = await this.kv.get(this.key);
    return entry === null ? undefined : this.toRecord(entry);
  }

  /**
   * Writes `pointer` if the key is at `expectedRevision` (0: no pointer yet), else throws `Conflict`
   * naming the revision and version it is at now.
   */
  async compareAndSet(pointer: TeacherPointer, expectedRevision: number): Promise<TeacherRecord> {
    checkRevision(expectedRevision);
    const value = TeacherPointer.encode(pointer).finish();
    try {
      const revision =
        expectedRevision === 0
          ? await this.kv.create(this.key, value)
          : await this.kv.update(this.key, value, expectedRevision);
      return { pointer, revision };
    } catch (error) {
      if (!isWrongLastSequence(error)) throw error;
      throw await this.conflict(expectedRevision, error);
    }
  }

  /** `Conflict` for a writer that expected `expectedRevision`, describing where the pointer is now. */
  async conflict(expectedRevision: number, cause?: unknown): Promise<Conflict> {
    const current = await this.read();
    const expected = expectedRevision === 0 ? 'revision 0 (no teacher yet)' : `revision ${expectedRevision}`;
    const actual =
      current === undefined
        ? 'there is no teacher yet'
        : `the pointer is at revision ${current.revision} (${current.pointer.version})`;
    return new Conflict(`${this.key}: expected ${expected}, but ${actual}; re-read and retry`, { cause });
  }

  /**
   * Every kept pointer, oldest first (deletions left out). The history is read through a consumer
   * that a cluster may place on a replica still catching up after a restart: it is checked against
   * the leader's last revision of the key and read again until it reaches it.
   */
  async history(): Promise<TeacherRecord[]> {
    for (let attempt = 1; ; attempt++) {
      const records: TeacherRecord[] = [];
      let lastSeen = 0;
      const entries = await this.kv.history({ key: this.key });
      for await (const entry of entries) {
        lastSeen = Math.max(lastSeen, entry.revision);
        const record = this.toRecord(entry);
        if (record !== undefined) records.push(record);
      }
      const last = (await this.kv.get(this.key))?.revision ?? 0;
      if (lastSeen >= last) return records;
      if (attempt === HISTORY_ATTEMPTS) {
        throw new Unavailable(
          `${this.key}: the history read ends at revision ${lastSeen}, the leader is at ${last} (a replica is still catching up); retry`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
    }
  }

  watch(): TeacherWatch {
    let stopped = false;
    // The default watch delivers the key's last value, then every change after it.
    const watcher = this.kv.watch({ key: this.key });
    // Failing to start surfaces from `updates`; until someone iterates, it must not be unhandled.
    watcher.catch(() => undefined);
    const toRecord = (entry: KvEntry): TeacherRecord | undefined => this.toRecord(entry);
    async function* updates(): AsyncGenerator<TeacherRecord> {
      let entries: QueuedIterator<KvEntry>;
      try {
        entries = await watcher;
      } catch (error) {
        throw fromNatsError(error, 'watching the teacher pointer');
      }
      try {
        if (stopped) return;
        for await (const entry of entries) {
          const record = toRecord(entry);
          if (record !== undefined) yield record;
          if (stopped) return;
        }
      } catch (error) {
        throw fromNatsError(error, 'watching the teacher pointer');
      } finally {
        entries.stop();
      }
    }
    return {
      updates: updates(),
      stop: () => {
        stopped = true;
        watcher.then(
          (entries) => entries.stop(),
          () => undefined,
        );
      },
    };
  }

  private toRecord(entry: KvEntry): TeacherRecord | undefined {
    if (entry.operation !== 'PUT') return undefined;
    let pointer: TeacherPointer;
    try {
      pointer = TeacherPointer.decode(entry.value);
    } catch (error) {
      throw new FailedPrecondition(
        `${this.key}: revision ${entry.revision} of ${entry.bucket} is not a TeacherPointer protobuf (${entry.length} bytes)`,
        { cause: error },
      );
    }
    return { pointer, revision: entry.revision };
  }
}

/** Throws `InvalidArgument` unless `expectedRevision` can be a KV revision (0: no pointer yet). */
export function checkRevision(expectedRevision: number): void {
  if (!Number.isSafeInteger(expectedRevision) || expectedRevision < 0) {
    throw new InvalidArgument(
      'expectedRevision',
      `expected the pointer's KV revision (an integer ≥ 0, 0 when there is no teacher yet), got ${expectedRevision}`,
    );
  }
}
