/** When a round starts (the trainer's `minPseudoLabeled` and `maxWaitSeconds` settings). */
export interface RoundTrigger {
  /** Start once this many pseudo-labeled examples (copies counted) of the current teacher are held. */
  minPseudoLabeled?: number;
  /** Start once shards report on this many unlabeled images (kept or not) labeled by the current teacher. */
  minImages?: number;
  /** Start this long after the first shard of the current teacher arrived, with whatever is held. */
  maxWaitSeconds?: number;
}

/** What the collector holds for the current teacher version. */
export interface Holding {
  examples: number;
  /** Unlabeled images the held shards report on. */
  images: number;
  /** When its first shard was kept, ms since the epoch; undefined before any. */
  firstShardAt: number | undefined;
}

export type RoundDue = { due: true; reason: string } | { due: false; waitingFor: string };

/** Throws, naming the setting, unless `trigger` can ever fire. */
export function checkRoundTrigger(trigger: RoundTrigger): void {
  const { minPseudoLabeled, minImages, maxWaitSeconds } = trigger;
  if (minPseudoLabeled === undefined && minImages === undefined && maxWaitSeconds === undefined) {
    throw new Error('minPseudoLabeled, minImages, maxWaitSeconds: expected at least one of them, got none');
  }
  for (const [name, value] of [
    ['minPseudoLabeled', minPseudoLabeled],
    ['minImages', minImages],
  ] as const) {
    if (value !== undefined && !(Number.isInteger(value) && value >= 1)) {
      throw new Error(`${name}: expected a positive integer, got ${value}`);
    }
  }
  if (maxWaitSeconds !== undefined && !(maxWaitSeconds > 0)) {
    throw new Error(`maxWaitSeconds: expected a number > 0, got ${maxWaitSeconds}`);
  }
}

/**
 * Whether a round starts now: enough examples held, or (with examples held at all) the longest
 * wait since the first shard has passed — whichever comes first. Pure: the caller passes `now`.
 */
export function roundDue(holding: Holding, trigger: RoundTrigger, now: number): RoundDue {
  const { minPseudoLabeled, minImages, maxWaitSeconds } = trigger;
  if (minPseudoLabeled !== undefined && holding.examples >= minPseudoLabeled) {
    return { due: true, reason: `${holding.examples} pseudo-labeled examples (at least ${minPseudoLabeled})` };
  }
  if (minImages !== undefined && holding.images >= minImages && holding.examples > 0) {
    return {
      due: true,
      reason: `${holding.images} images labeled (at least ${minImages}), ${holding.examples} examples`,
    };
  }
  if (maxWaitSeconds !== undefined && holding.examples > 0 && holding.firstShardAt !== undefined) {
    const waitedSeconds = (now - holding.firstShardAt) / 1000;
    if (waitedSeconds >= maxWaitSeconds) {
      return {
        due: true,
        reason: `${waitedSeconds.toFixed(0)} s since the first shard (at most ${maxWaitSeconds}), ${holding.examples} examples`,
      };
    }
  }
  const waiting = [
    ...(minPseudoLabeled === undefined ? [] : [`${minPseudoLabeled - holding.examples} more examples`]),
    ...(minImages === undefined ? [] : [`${Math.max(0, minImages - holding.images)} more images labeled`]),
    ...(maxWaitSeconds === undefined
      ? []
      : [holding.firstShardAt === undefined ? 'a first shard' : `${maxWaitSeconds} s since the first shard`]),
  ];
  return { due: false, waitingFor: waiting.join(' or ') };
}
