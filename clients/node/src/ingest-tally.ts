import { status } from '@grpc/grpc-js';
import type { IngestResponse } from '@noisystudent/proto';

import { codeName } from './errors.js';

/** Rejections listed one by one in the summary; the rest are only counted. */
export const LISTED_REJECTIONS = 100;
/** Distinct rejection reasons counted apart; further ones count under OTHER_REASONS. */
export const COUNTED_REASONS = 100;
export const OTHER_REASONS = '(other reasons)';

/** How far an ingest is, as onProgress sees it. */
export interface IngestProgress {
  /** Images taken from the input and sent (each counted once, however often it was resent). */
  sent: number;
  /** Newly stored by this ingest. */
  stored: number;
  /** Already stored before (an earlier ingest sent the same source id). */
  duplicates: number;
  rejected: number;
  /** Sent and not answered yet. */
  inFlight: number;
  /** Requests sent again after a reconnect. */
  resent: number;
  /** Since the ingest started. */
  seconds: number;
}

export interface IngestRejection {
  sourceId: string;
  /** The gRPC status code number (3 INVALID_ARGUMENT, 8 RESOURCE_EXHAUSTED, 14 UNAVAILABLE). */
  code: number;
  codeName: string;
  /** Names the field and what was expected. */
  reason: string;
}

/** The final accounting of an ingest: sent = stored + duplicates + rejected. */
export interface IngestSummary {
  sent: number;
  stored: number;
  duplicates: number;
  rejected: number;
  /** Rejections per reason (the first 100 distinct reasons; the rest under '(other reasons)'). */
  reasons: Record<string, number>;
  /** The first 100 rejections. */
  rejections: IngestRejection[];
  /** Requests sent again after a reconnect (not counted in `sent`). */
  resent: number;
  seconds: number;
}

/**
 * Counts an ingest's answers. A resent image answered as a duplicate counts as stored: its first
 * send reached the labeler, which stored it, and the answer was lost with the stream. (An image
 * that an earlier ingest had stored and whose answer here was lost the same way counts as stored
 * too: the labeler's answer cannot tell the two apart.)
 */
export class IngestTally {
  private sentCount = 0;
  private resentCount = 0;
  private storedCount = 0;
  private duplicateCount = 0;
  private rejectedCount = 0;
  private readonly reasons: Record<string, number> = {};
  private readonly rejections: IngestRejection[] = [];

  /** A request went out; `resent` after a reconnect. */
  sent(resent: boolean): void {
    if (resent) this.resentCount++;
    else this.sentCount++;
  }

  /** The answer to a request; `resent` when that request had been sent again after a reconnect. */
  answered(response: IngestResponse, resent: boolean): void {
    const result = response.result;
    if (result?.$case === 'stored') {
      if (result.value.duplicate && !resent) this.duplicateCount++;
      else this.storedCount++;
      return;
    }
    const code = result?.$case === 'rejected' ? result.value.code : status.INTERNAL;
    const reason = result?.$case === 'rejected' ? result.value.reason : 'the labeler sent an answer with no result';
    this.rejectedCount++;
    const key = reason in this.reasons || Object.keys(this.reasons).length < COUNTED_REASONS ? reason : OTHER_REASONS;
    this.reasons[key] = (this.reasons[key] ?? 0) + 1;
    if (this.rejections.length < LISTED_REJECTIONS) {
      this.rejections.push({ sourceId: response.sourceId, code, codeName: codeName(code), reason });
    }
  }

  progress(seconds: number): IngestProgress {
    const answered = this.storedCount + this.duplicateCount + this.rejectedCount;
    return {
      sent: this.sentCount,
      stored: this.storedCount,
      duplicates: this.duplicateCount,
      rejected: this.rejectedCount,
      inFlight: this.sentCount - answered,
      resent: this.resentCount,
      seconds,
    };
  }

  summary(seconds: number): IngestSummary {
    return {
      sent: this.sentCount,
      stored: this.storedCount,
      duplicates: this.duplicateCount,
      rejected: this.rejectedCount,
      reasons: { ...this.reasons },
      rejections: this.rejections.map((rejection) => ({ ...rejection })),
      resent: this.resentCount,
      seconds,
    };
  }
}
