import type { TeacherRecord, TeacherWatch } from './types.js';

export interface FollowTeacherOptions {
  /** Pause before watching again after a watch ended on its own or failed (NATS down). @default 1000 */
  retryDelayMs?: number;
  /**
   * Pause before handing the latest record to `onRecord` again after it returned false (it could
   * not act on it: the registry was unreachable, say). A newer record cancels the retry.
   * @default 5000
   */
  retryFailedAfterMs?: number;
  /** Told why a watch ended before it is started again. */
  onWatchError?: (error: unknown) => void;
  /** Told when `onRecord` threw (the record is then retried as if it returned false). */
  onRecordError?: (error: unknown) => void;
}

/** A running `followTeacher`; `stop()` ends it after the record being handled. */
export interface TeacherFollowing {
  stop(): Promise<void>;
}

/**
 * Calls `onRecord` with the current teacher pointer and every later one, one call at a time,
 * until `stop()`: what a service that serves or labels with "the teacher" runs. A watch that ends
 * or fails is started again after a pause, so a NATS outage only delays the next version. When
 * `onRecord` returns false it is called again with the same record after `retryFailedAfterMs`,
 * unless a newer record came meanwhile: a transient failure never leaves a service on an old
 * version until the next promotion.
 */
export function followTeacher(
  source: { watchTeacher(): TeacherWatch },
  onRecord: (record: TeacherRecord) => Promise<boolean | void>,
  options: FollowTeacherOptions = {},
): TeacherFollowing {
  let stopped = false;
  let watcher: TeacherWatch | undefined;
  let wake: (() => void) | undefined;
  let latest: TeacherRecord | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  // Records are handled one at a time, in order; a retry queues behind whatever is running.
  let handling: Promise<void> = Promise.resolve();

  const handle = (record: TeacherRecord): Promise<void> => {
    clearTimeout(retryTimer);
    handling = handling.then(async () => {
      if (stopped || record !== latest) return;
      let handled: boolean | void;
      try {
        handled = await onRecord(record);
      } catch (error) {
        // A handler that throws is one that could not act: retried like `false`, never a dead follower.
        options.onRecordError?.(error);
        handled = false;
      }
      if (handled === false && !stopped && record === latest) {
        retryTimer = setTimeout(() => void handle(record), options.retryFailedAfterMs ?? 5_000);
      }
    });
    return handling;
  };

  const loop = (async () => {
    while (!stopped) {
      watcher = source.watchTeacher();
      try {
        for await (const record of watcher.updates) {
          if (stopped) break;
          latest = record;
          await handle(record);
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
      clearTimeout(retryTimer);
      watcher?.stop();
      wake?.();
      await loop;
      await handling;
    },
  };
}
