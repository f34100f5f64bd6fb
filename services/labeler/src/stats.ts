import type { GetStatsResponse, VersionStats } from '@noisystudent/proto';

import { emptyWindowCounts, type WindowCounts } from './shards.js';

interface VersionTotals extends WindowCounts {
  shards: number;
}

const RATE_WINDOW_MS = 60_000;

/**
 * This replica's accounting since it started (pure bookkeeping, no I/O): images stored or
 * refused at ingest, and per teacher version what labeling made of every image.
 */
export class LabelerStats {
  ingested = 0;
  ingestDuplicates = 0;
  ingestRejected = 0;
  private readonly versions = new Map<string, VersionTotals>();
  /** (time, images) of recent windows, for the labeling rate. */
  private readonly recent: Array<{ at: number; images: number }> = [];
  private readonly startedAt: number;

  constructor(private readonly now: () => number = Date.now) {
    this.startedAt = now();
  }

  stored(duplicate: boolean): void {
    if (duplicate) this.ingestDuplicates++;
    else this.ingested++;
  }

  rejected(): void {
    this.ingestRejected++;
  }

  window(version: string, counts: WindowCounts, shards: number): void {
    const totals = this.versions.get(version) ?? { ...emptyWindowCounts(0), shards: 0 };
    totals.labeled += counts.labeled;
    totals.inShards += counts.inShards;
    totals.copies += counts.copies;
    totals.cutByBalancing += counts.cutByBalancing;
    totals.belowThreshold += counts.belowThreshold;
    totals.rejected += counts.rejected;
    totals.confidenceSum += counts.confidenceSum;
    counts.copiesPerClass.forEach(
      (copies, label) => (totals.copiesPerClass[label] = (totals.copiesPerClass[label] ?? 0) + copies),
    );
    totals.shards += shards;
    this.versions.set(version, totals);
    this.recent.push({ at: this.now(), images: counts.labeled });
  }

  /**
   * Images labeled per second over the last minute (or since this replica started, if later). A
   * window's images count when it finishes, so the span is the minute, not the time since the
   * oldest window in it: that one's images were labeled before it.
   */
  labeledPerSecond(): number {
    const now = this.now();
    while ((this.recent[0]?.at ?? now) <= now - RATE_WINDOW_MS) this.recent.shift();
    const images = this.recent.reduce((sum, entry) => sum + entry.images, 0);
    return images / (Math.max(1_000, Math.min(RATE_WINDOW_MS, now - this.startedAt)) / 1000);
  }

  versionStats(): VersionStats[] {
    return [...this.versions].map(([teacherVersion, totals]) => {
      const aboveThreshold = totals.inShards + totals.cutByBalancing;
      return {
        teacherVersion,
        labeled: totals.labeled,
        inShards: totals.inShards,
        copies: totals.copies,
        cutByBalancing: totals.cutByBalancing,
        belowThreshold: totals.belowThreshold,
        rejected: totals.rejected,
        shards: totals.shards,
        copiesPerClass: Array.from(totals.copiesPerClass, (copies) => copies ?? 0),
        acceptanceRate: totals.labeled === 0 ? 0 : aboveThreshold / totals.labeled,
        meanConfidence: aboveThreshold === 0 ? 0 : totals.confidenceSum / aboveThreshold,
      };
    });
  }

  response(teacherVersion: string, unlabeledStored: number, unlabeledPending: number): GetStatsResponse {
    return {
      teacherVersion,
      ingested: this.ingested,
      ingestDuplicates: this.ingestDuplicates,
      ingestRejected: this.ingestRejected,
      versions: this.versionStats(),
      labeledPerSecond: this.labeledPerSecond(),
      unlabeledStored,
      unlabeledPending,
    };
  }
}
