import type { TeacherRecord, TeacherWatch } from './types.js';

export interface FollowTeacherOptions {
  /** Pause before watching again after a watch ended on its own or failed (NATS down). @default 1000 */
  retryDelayMs?: number;
  /** Told why a watch ended before it is started again. */
  onWatchError?: (error: unknown) => void;
}

/** A running `followTeacher`; `stop()` ends it after the record being handled. */
export interface TeacherFollowing {
  stop(): Promise<void>;
}

/**
 * Calls `onRecord` with the current teacher pointer and every later one, one at a time, until
 * `stop()`: what a service that serves or labels with "the teacher" runs. A watch that ends or
 * fails is started again after a pause, so a NATS outage only delays the next version.
 */
export function followTeacher(
  source: { watchTeacher(): TeacherWatch },
  onRecord: (record: TeacherRecord) => Promise<void>,
  options: FollowTeacherOptions = {},
): TeacherFollowing {
  let stopped = false;
  let watcher: TeacherWatch | undefined;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    while (!stopped) {
      watcher = source.watchTeacher();
      try {
        for await (const record of watcher.updates) {
          if (stopped) break;
          await onRecord(record);
        }
      } catch (error) {
        options.onWatchError?.(error);
      }
      watcher.stop();
      if (!stopped) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, options.retryDelayMs ?? 1_000);
        });
      }
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      watcher?.stop();
      wake?.();
      await loop;
    },
  };
}
