import { selectPseudoLabels, type PseudoLabelPolicy } from '@noisystudent/ml';
import { LabelMode, PseudoLabeledExample, Shard, type Image, type RejectedImage } from '@noisystudent/proto';

/** One unlabeled image of a window and what the teacher made of it. */
export interface LabeledImage {
  sourceId: string;
  image: Image | undefined;
  outcome: { kind: 'prediction'; probabilities: Float32Array } | { kind: 'rejected'; reason: string };
}

/** What one window added, per outcome (the labeler's accounting, docs/architecture.md §5). */
export interface WindowCounts {
  labeled: number;
  /** Images in the shard with a copy count ≥ 1, and the sum of their copies. */
  inShards: number;
  copies: number;
  cutByBalancing: number;
  belowThreshold: number;
  rejected: number;
  /** Sum of top probabilities of the images above the threshold and counted there (in shards or cut by balancing). */
  confidenceSum: number;
  copiesPerClass: number[];
}

export interface ShardOptions {
  teacherVersion: string;
  classes: number;
  policy: PseudoLabelPolicy;
  /** Names the window in shard ids (`<version>.<windowId>.<part>`): the same window gives the same ids, so a republish is deduplicated. */
  windowId: string;
  /** The NATS server's max payload: every part's encoded size stays under it. */
  maxPayloadBytes: number;
  createdAt: Date;
}

/** Bytes kept free in every part for the fields other than examples. */
const PART_OVERHEAD_BYTES = 1024;

/**
 * Applies the pseudo-label policy (the one @noisystudent/ml module every part uses) to a window
 * and writes the result as shard parts: kept images with their targets and copy counts, and the
 * ids of the others with their outcome, so every image of the window is in exactly one part, in
 * exactly one list. An image too large for any part is rejected with the reason. What the parts
 * hold, per outcome, is `countParts`.
 */
export function buildShards(window: readonly LabeledImage[], options: ShardOptions): Shard[] {
  const { classes } = options;
  const predicted = window.filter((item) => item.outcome.kind === 'prediction');
  const rejected: RejectedImage[] = window.flatMap((item) =>
    item.outcome.kind === 'rejected' ? [{ sourceId: item.sourceId, reason: item.outcome.reason }] : [],
  );
  const rows = predicted.map((item) =>
    item.outcome.kind === 'prediction' ? item.outcome.probabilities : new Float32Array(),
  );
  const selection = selectPseudoLabels(rows, classes, options.policy);
  const applied = selection.policy;
  const mode = applied.mode === 'soft' ? LabelMode.SOFT : LabelMode.HARD;
  const budget = options.maxPayloadBytes - PART_OVERHEAD_BYTES;

  // Each kept example with its encoded size (+ the field's tag and length), measured once.
  const examples: Array<{ example: PseudoLabeledExample; size: number }> = [];
  selection.kept.forEach((row, index) => {
    const item = predicted[row];
    if (item === undefined) return;
    const example: PseudoLabeledExample = {
      sourceId: item.sourceId,
      image: item.image,
      softLabel:
        mode === LabelMode.SOFT ? Array.from(selection.targets.subarray(index * classes, (index + 1) * classes)) : [],
      hardLabel: selection.labels[index] ?? 0,
      confidence: selection.confidences[index] ?? 0,
      copyCount: selection.copies[index] ?? 1,
    };
    const size = PseudoLabeledExample.encode(example).finish().byteLength + 8;
    if (size > budget) {
      rejected.push({
        sourceId: item.sourceId,
        reason: `image: ${size} bytes as a shard example, over the ${options.maxPayloadBytes}-byte NATS max payload`,
      });
    } else {
      examples.push({ example, size });
    }
  });
  const copiesPerClass = new Array<number>(classes).fill(0);
  for (const { example } of examples) {
    copiesPerClass[example.hardLabel] = (copiesPerClass[example.hardLabel] ?? 0) + example.copyCount;
  }

  const base = {
    teacherVersion: options.teacherVersion,
    policy: {
      confidenceThreshold: applied.threshold,
      labelMode: mode,
      temperature: applied.temperature,
      targetCountPerClass: applied.targetPerClass ?? 0,
      windowSize: window.length,
      seed: applied.seed,
    },
    createdAt: options.createdAt,
    classCounts: copiesPerClass,
    windowId: options.windowId,
  };
  // The id lists go into the first part; examples fill parts up to the budget.
  const first = Shard.fromPartial({
    ...base,
    belowThresholdIds: selection.belowThreshold.map((row) => predicted[row]?.sourceId ?? ''),
    cutByBalancingIds: selection.cutByBalancing.map((row) => predicted[row]?.sourceId ?? ''),
    rejected,
  });
  const parts: Shard[] = [first];
  let current = first;
  let used = Shard.encode(first).finish().byteLength;
  for (const { example, size } of examples) {
    if (used + size > budget && current.examples.length > 0) {
      current = Shard.fromPartial({ ...base });
      parts.push(current);
      used = Shard.encode(current).finish().byteLength;
    }
    current.examples.push(example);
    used += size;
  }
  parts.forEach((part, index) => {
    part.part = index;
    part.partCount = parts.length;
    part.shardId = `${options.teacherVersion}.${options.windowId}.${index}`;
  });

  return parts;
}

/** Counts of nothing yet, with `classes` zero copies per class. */
export function emptyWindowCounts(classes: number): WindowCounts {
  return {
    labeled: 0,
    inShards: 0,
    copies: 0,
    cutByBalancing: 0,
    belowThreshold: 0,
    rejected: 0,
    confidenceSum: 0,
    copiesPerClass: new Array<number>(classes).fill(0),
  };
}

/**
 * What `parts` hold of `window`, per outcome: the window's accounting from the parts themselves,
 * so a window stored without some of its images (another replica gave them an outcome first)
 * counts only what it stored.
 */
export function countParts(parts: readonly Shard[], window: readonly LabeledImage[], classes: number): WindowCounts {
  const topProbability = new Map<string, number>();
  for (const item of window) {
    if (item.outcome.kind === 'prediction') topProbability.set(item.sourceId, Math.max(...item.outcome.probabilities));
  }
  const counts = emptyWindowCounts(classes);
  for (const part of parts) {
    counts.inShards += part.examples.length;
    counts.cutByBalancing += part.cutByBalancingIds.length;
    counts.belowThreshold += part.belowThresholdIds.length;
    counts.rejected += part.rejected.length;
    for (const example of part.examples) {
      counts.copies += example.copyCount;
      counts.copiesPerClass[example.hardLabel] = (counts.copiesPerClass[example.hardLabel] ?? 0) + example.copyCount;
    }
    // Over the images counted as accepted (in shards or cut): one too large for a shard is rejected.
    for (const id of [...part.examples.map((example) => example.sourceId), ...part.cutByBalancingIds]) {
      counts.confidenceSum += topProbability.get(id) ?? 0;
    }
  }
  counts.labeled = counts.inShards + counts.cutByBalancing + counts.belowThreshold + counts.rejected;
  return counts;
}

/** `part` without the outcomes of the images in `ids` (null when nothing is left). */
export function withoutImages(part: Shard, ids: ReadonlySet<string>): Shard | null {
  const kept: Shard = {
    ...part,
    examples: part.examples.filter((example) => !ids.has(example.sourceId)),
    belowThresholdIds: part.belowThresholdIds.filter((id) => !ids.has(id)),
    cutByBalancingIds: part.cutByBalancingIds.filter((id) => !ids.has(id)),
    rejected: part.rejected.filter((entry) => !ids.has(entry.sourceId)),
  };
  return shardImageIds(kept).length > 0 ? kept : null;
}

/** Every source id `shard` gives an outcome. */
export function shardImageIds(shard: Shard): string[] {
  return [
    ...shard.examples.map((example) => example.sourceId),
    ...shard.belowThresholdIds,
    ...shard.cutByBalancingIds,
    ...shard.rejected.map((entry) => entry.sourceId),
  ];
}
