import { describe, expect, it } from 'vitest';

import { buildShards, countParts, emptyWindowCounts, type LabeledImage, type WindowCounts } from './shards.js';
import { LabelerStats } from './stats.js';

/** A clock the test moves: milliseconds since the replica started. */
function testClock(): { now: () => number; at(ms: number): void } {
  let current = 1_700_000_000_000;
  const start = current;
  return { now: () => current, at: (ms) => (current = start + ms) };
}

function counts(partial: Partial<WindowCounts>): WindowCounts {
  return { ...emptyWindowCounts(0), ...partial };
}

/** A window of `images` images, all below the threshold: what matters to the rate is the count. */
const window = (images: number): WindowCounts => counts({ labeled: images, belowThreshold: images });

describe('LabelerStats.labeledPerSecond', () => {
  it('is 0 before any window', () => {
    const clock = testClock();
    const stats = new LabelerStats(clock.now);
    clock.at(30_000);
    expect(stats.labeledPerSecond()).toBe(0);
  });

  it('is the images of the windows finished in the last minute over that minute', () => {
    const clock = testClock();
    const stats = new LabelerStats(clock.now);
    // 100 images every 10 s: 10 images/s.
    for (let second = 10; second <= 120; second += 10) {
      clock.at(second * 1000);
      stats.window('v1', window(100), 1);
    }
    clock.at(120_000);
    expect(stats.labeledPerSecond()).toBe(10);
    // The minute is (now − 60 s, now]: at 130 s the window finished at 70 s has left it, 5 are in it.
    clock.at(129_999);
    expect(stats.labeledPerSecond()).toBe(10);
    clock.at(130_000);
    expect(stats.labeledPerSecond()).toBeCloseTo(500 / 60, 12);
    // A minute after the last window, nothing.
    clock.at(180_000);
    expect(stats.labeledPerSecond()).toBe(0);
  });

  it('counts from the start of the replica while it is younger than a minute', () => {
    const clock = testClock();
    const stats = new LabelerStats(clock.now);
    // 100 images every 10 s, the first window finishing 10 s after the start: 10 images/s.
    for (let second = 10; second <= 60; second += 10) {
      clock.at(second * 1000);
      stats.window('v1', window(100), 1);
    }
    expect(stats.labeledPerSecond()).toBe(10);
  });

  it('does not report a whole window as one second of work right after it finishes', () => {
    const clock = testClock();
    const stats = new LabelerStats(clock.now);
    // The first window: 1,024 images labeled over the 8 s since the start.
    clock.at(8_000);
    stats.window('v1', window(1024), 1);
    expect(stats.labeledPerSecond()).toBe(128);
    clock.at(16_000);
    expect(stats.labeledPerSecond()).toBe(64);
  });

  it('divides by at least one second', () => {
    const clock = testClock();
    const stats = new LabelerStats(clock.now);
    clock.at(200);
    stats.window('v1', window(50), 1);
    clock.at(500);
    expect(stats.labeledPerSecond()).toBe(50);
  });
});

describe('LabelerStats per version', () => {
  it('sums windows per version; acceptance is (in shards + cut) / labeled, mean confidence over those', () => {
    const stats = new LabelerStats(testClock().now);
    stats.window(
      'v1',
      counts({
        labeled: 10,
        inShards: 5,
        copies: 7,
        cutByBalancing: 1,
        belowThreshold: 3,
        rejected: 1,
        confidenceSum: 4.8,
        copiesPerClass: [4, 3],
      }),
      2,
    );
    stats.window(
      'v1',
      counts({
        labeled: 6,
        inShards: 2,
        copies: 2,
        cutByBalancing: 0,
        belowThreshold: 4,
        confidenceSum: 1.8,
        copiesPerClass: [0, 1, 1],
      }),
      1,
    );
    stats.window('v2', counts({ labeled: 4, rejected: 4 }), 1);
    const [v1, v2] = stats.versionStats();
    expect(v1).toEqual({
      teacherVersion: 'v1',
      labeled: 16,
      inShards: 7,
      copies: 9,
      cutByBalancing: 1,
      belowThreshold: 7,
      rejected: 1,
      shards: 3,
      copiesPerClass: [4, 4, 1],
      acceptanceRate: 0.5,
      meanConfidence: expect.closeTo(6.6 / 8, 12),
    });
    // Nothing above the threshold: both rates are 0, not NaN.
    expect(v2).toMatchObject({ teacherVersion: 'v2', labeled: 4, rejected: 4, acceptanceRate: 0, meanConfidence: 0 });
  });

  it('keeps the mean confidence over the images it counts when one is too large for a shard', () => {
    const image = (bytes: number): LabeledImage['image'] => ({
      content: { $case: 'encoded', value: Buffer.alloc(bytes, 1) },
    });
    const labeled: LabeledImage[] = [
      { sourceId: 'huge', image: image(70_000), outcome: { kind: 'prediction', probabilities: Float32Array.of(1, 0) } },
      {
        sourceId: 'ok',
        image: image(100),
        outcome: { kind: 'prediction', probabilities: Float32Array.of(0.75, 0.25) },
      },
      {
        sourceId: 'unsure',
        image: image(100),
        outcome: { kind: 'prediction', probabilities: Float32Array.of(0.5, 0.5) },
      },
    ];
    const parts = buildShards(labeled, {
      teacherVersion: 'v1',
      classes: 2,
      policy: { threshold: 0.6, mode: 'hard' },
      windowId: 'w1-3-3',
      maxPayloadBytes: 64 * 1024,
      createdAt: new Date(0),
    });
    const windowCounts = countParts(parts, labeled, 2);
    const stats = new LabelerStats(testClock().now);
    stats.window('v1', windowCounts, 1);
    // 'huge' is rejected (over the max payload), 'unsure' below the threshold: 'ok' alone is accepted.
    expect(stats.versionStats()[0]).toMatchObject({
      labeled: 3,
      inShards: 1,
      belowThreshold: 1,
      rejected: 1,
      acceptanceRate: 1 / 3,
      meanConfidence: 0.75,
    });
  });
});

describe('LabelerStats.response', () => {
  it('carries the ingest counts, the versions, the rate and the stream counts', () => {
    const clock = testClock();
    const stats = new LabelerStats(clock.now);
    stats.stored(false);
    stats.stored(false);
    stats.stored(true);
    stats.rejected();
    clock.at(4_000);
    stats.window('v1', window(20), 1);
    expect(stats.response('v1', 3, 1)).toEqual({
      teacherVersion: 'v1',
      ingested: 2,
      ingestDuplicates: 1,
      ingestRejected: 1,
      versions: stats.versionStats(),
      labeledPerSecond: 5,
      unlabeledStored: 3,
      unlabeledPending: 1,
    });
  });
});
