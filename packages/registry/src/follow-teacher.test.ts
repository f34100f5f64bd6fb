import { TeacherPointer } from '@noisystudent/proto';
import { describe, expect, it } from 'vitest';

import { followTeacher } from './follow-teacher.js';
import { fixedTeacherWatch } from './teacher-source.js';
import type { TeacherRecord, TeacherWatch } from './types.js';

/** A pointer source whose watch hands out `records`, then waits until stopped. */
const sourceOf = (records: TeacherRecord[]): { watchTeacher(): TeacherWatch } => ({
  watchTeacher: () => fixedTeacherWatch(records),
});

const record = (version: string, revision: number): TeacherRecord => ({
  pointer: TeacherPointer.fromPartial({ version }),
  revision,
});

describe('followTeacher', () => {
  it('hands a record again after its handler failed (false or a throw), until it succeeds', async () => {
    const calls: string[] = [];
    const errors: unknown[] = [];
    let done: () => void = () => undefined;
    const handled = new Promise<void>((resolve) => (done = resolve));
    const following = followTeacher(
      sourceOf([record('v1', 1)]),
      async ({ pointer }) => {
        calls.push(pointer.version);
        if (calls.length === 1) return false;
        if (calls.length === 2) throw new Error('registry unreachable');
        done();
        return true;
      },
      { retryFailedAfterMs: 10, onRecordError: (error) => errors.push(error) },
    );
    await handled;
    await following.stop();
    expect(calls).toEqual(['v1', 'v1', 'v1']);
    expect(errors).toHaveLength(1);
  });

  it('drops a pending retry when a newer record arrives', async () => {
    const calls: string[] = [];
    let done: () => void = () => undefined;
    const handled = new Promise<void>((resolve) => (done = resolve));
    const following = followTeacher(
      sourceOf([record('v1', 1), record('v2', 2)]),
      async ({ pointer }) => {
        calls.push(pointer.version);
        if (pointer.version === 'v2') done();
        return pointer.version === 'v2';
      },
      { retryFailedAfterMs: 60_000 },
    );
    await handled;
    await following.stop();
    expect(calls).toEqual(['v1', 'v2']);
  });
});
