import { TeacherPointer } from '@noisystudent/proto';
import { describe, expect, it } from 'vitest';

import { followTeacher } from './follow-teacher.js';
import type { TeacherRecord, TeacherWatch } from './types.js';

const record = (version: string, revision: number): TeacherRecord => ({
  pointer: TeacherPointer.fromPartial({ version }),
  revision,
});

describe('followTeacher', () => {
  it('hands over every record in order, watches again after a failed watch, and stops', async () => {
    const watches: string[] = [];
    let stopped = 0;
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    const source = {
      watchTeacher: (): TeacherWatch => {
        watches.push(`watch ${watches.length + 1}`);
        const first = watches.length === 1;
        return {
          updates: (async function* () {
            if (first) {
              yield record('v1', 1);
              throw new Error('connection lost');
            }
            yield record('v2', 2);
            await released;
          })(),
          stop: () => {
            stopped++;
            release();
          },
        };
      },
    };
    const seen: string[] = [];
    const errors: string[] = [];
    let secondSeen: () => void = () => undefined;
    const second = new Promise<void>((resolve) => (secondSeen = resolve));
    const following = followTeacher(
      source,
      async ({ pointer, revision }) => {
        seen.push(`${pointer.version}@${revision}`);
        if (pointer.version === 'v2') secondSeen();
      },
      { retryDelayMs: 1, onWatchError: (error) => errors.push(String(error)) },
    );
    await second;
    await following.stop();
    expect(seen).toEqual(['v1@1', 'v2@2']);
    expect(errors).toEqual(['Error: connection lost']);
    expect(watches).toEqual(['watch 1', 'watch 2']);
    expect(stopped).toBeGreaterThanOrEqual(2);
  });
});
