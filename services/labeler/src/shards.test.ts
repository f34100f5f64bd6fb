import { LabelMode, Shard } from '@noisystudent/proto';
import { describe, expect, it } from 'vitest';

import { buildShards, countParts, withoutImages, type LabeledImage } from './shards.js';

const CLASSES = 3;

function image(bytes: number): LabeledImage['image'] {
  return { content: { $case: 'encoded', value: Buffer.alloc(bytes, 1) } };
}

function predicted(sourceId: string, probabilities: number[], bytes = 100): LabeledImage {
  return {
    sourceId,
    image: image(bytes),
    outcome: { kind: 'prediction', probabilities: Float32Array.from(probabilities) },
  };
}

const options = {
  teacherVersion: 'v2',
  classes: CLASSES,
  policy: { threshold: 0.5, mode: 'soft' as const },
  windowId: 'w1-6',
  maxPayloadBytes: 1024 * 1024,
  createdAt: new Date(0),
};

/** Every source id of the parts, by list. */
function outcomes(parts: Shard[]) {
  return {
    examples: parts.flatMap((part) => part.examples.map((example) => example.sourceId)),
    below: parts.flatMap((part) => part.belowThresholdIds),
    cut: parts.flatMap((part) => part.cutByBalancingIds),
    rejected: parts.flatMap((part) => part.rejected.map((entry) => entry.sourceId)),
  };
}

describe('buildShards', () => {
  it('puts every image of the window in exactly one list, with the policy recorded', () => {
    const window = [
      predicted('a', [0.9, 0.05, 0.05]),
      predicted('b', [0.2, 0.4, 0.4]),
      predicted('c', [0.1, 0.8, 0.1]),
      {
        sourceId: 'd',
        image: undefined,
        outcome: { kind: 'rejected', reason: 'image.tensor.shape: expected [28, 28, 1]' },
      },
      predicted('e', [0.05, 0.05, 0.9]),
    ] satisfies LabeledImage[];
    const parts = buildShards(window, options);
    const counts = countParts(parts, window, CLASSES);
    expect(parts).toHaveLength(1);
    const [shard] = parts;
    expect(shard?.shardId).toBe('v2.w1-6.0');
    expect(shard?.teacherVersion).toBe('v2');
    expect(shard?.policy).toMatchObject({ confidenceThreshold: 0.5, labelMode: LabelMode.SOFT, windowSize: 5 });
    expect(outcomes(parts)).toEqual({ examples: ['a', 'c', 'e'], below: ['b'], cut: [], rejected: ['d'] });
    expect(shard?.rejected[0]?.reason).toBe('image.tensor.shape: expected [28, 28, 1]');
    expect(shard?.examples[0]).toMatchObject({ hardLabel: 0, copyCount: 1 });
    expect(shard?.examples[0]?.softLabel[0]).toBeCloseTo(0.9, 6);
    expect(shard?.classCounts).toEqual([1, 1, 1]);
    expect(counts).toMatchObject({
      labeled: 5,
      inShards: 3,
      copies: 3,
      cutByBalancing: 0,
      belowThreshold: 1,
      rejected: 1,
    });
    expect(counts.confidenceSum).toBeCloseTo(0.9 + 0.8 + 0.9, 5);
  });

  it('balances: duplicates scarce classes by copy count and lists the cut ones', () => {
    const window = [
      predicted('x1', [0.9, 0.05, 0.05]),
      predicted('x2', [0.8, 0.1, 0.1]),
      predicted('x3', [0.7, 0.2, 0.1]),
      predicted('y1', [0.1, 0.9, 0]),
    ];
    const parts = buildShards(window, {
      ...options,
      policy: { threshold: 0.5, mode: 'hard', targetPerClass: 2 },
    });
    const counts = countParts(parts, window, CLASSES);
    const result = outcomes(parts);
    expect(result.cut).toEqual(['x3']);
    expect(result.examples.sort()).toEqual(['x1', 'x2', 'y1']);
    const y1 = parts[0]?.examples.find((example) => example.sourceId === 'y1');
    expect(y1?.copyCount).toBe(2);
    expect(y1?.softLabel).toEqual([]);
    expect(parts[0]?.classCounts).toEqual([2, 2, 0]);
    expect(counts).toMatchObject({ inShards: 3, copies: 4, cutByBalancing: 1 });
  });

  it('splits a window over parts that each fit the max payload, same ids for the same window', () => {
    const window = Array.from({ length: 40 }, (_, index) => predicted(`img-${index}`, [0.9, 0.05, 0.05], 10_000));
    const small = { ...options, maxPayloadBytes: 64 * 1024 };
    const parts = buildShards(window, small);
    expect(parts.length).toBeGreaterThan(5);
    for (const part of parts) {
      expect(Shard.encode(part).finish().byteLength).toBeLessThanOrEqual(small.maxPayloadBytes);
      expect(part.partCount).toBe(parts.length);
      expect(part.classCounts).toEqual([40, 0, 0]);
    }
    expect(parts.map((part) => part.shardId)).toEqual(parts.map((_, index) => `v2.w1-6.${index}`));
    expect(outcomes(parts).examples).toEqual(window.map((item) => item.sourceId));
    expect(buildShards(window, small).map((part) => part.shardId)).toEqual(parts.map((part) => part.shardId));
  });

  it('rejects an image too large for any part, naming the limit', () => {
    const window = [predicted('huge', [1, 0, 0], 70_000), predicted('ok', [1, 0, 0])];
    const parts = buildShards(window, { ...options, maxPayloadBytes: 64 * 1024 });
    const counts = countParts(parts, window, CLASSES);
    expect(outcomes(parts)).toEqual({ examples: ['ok'], below: [], cut: [], rejected: ['huge'] });
    expect(parts[0]?.rejected[0]?.reason).toMatch(
      /^image: \d+ bytes as a shard example, over the 65536-byte NATS max payload$/,
    );
    expect(counts).toMatchObject({ labeled: 2, inShards: 1, rejected: 1 });
  });
});

describe('withoutImages and countParts', () => {
  it('leaves out the outcomes of the given images, and the counts follow the parts', () => {
    const window = [
      predicted('a', [0.9, 0.05, 0.05]),
      predicted('b', [0.2, 0.4, 0.4]),
      predicted('c', [0.1, 0.8, 0.1]),
      { sourceId: 'd', image: undefined, outcome: { kind: 'rejected', reason: 'image: none' } },
    ] satisfies LabeledImage[];
    const [part] = buildShards(window, options);
    const kept = withoutImages(part as Shard, new Set(['a', 'b']));
    expect(outcomes(kept === null ? [] : [kept])).toEqual({ examples: ['c'], below: [], cut: [], rejected: ['d'] });
    expect(part?.examples).toHaveLength(2);
    const counts = countParts(kept === null ? [] : [kept], window, CLASSES);
    expect(counts).toMatchObject({ labeled: 2, inShards: 1, copies: 1, belowThreshold: 0, rejected: 1 });
    expect(counts.copiesPerClass).toEqual([0, 1, 0]);
    expect(counts.confidenceSum).toBeCloseTo(0.8, 5);
    expect(withoutImages(part as Shard, new Set(['a', 'b', 'c', 'd']))).toBeNull();
  });
});
