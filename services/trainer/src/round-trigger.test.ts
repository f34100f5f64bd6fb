import { describe, expect, it } from 'vitest';

import { checkRoundTrigger, roundDue } from './round-trigger.js';

const T0 = Date.UTC(2026, 11, 3, 12);

describe('roundDue', () => {
  it('starts once enough examples are held', () => {
    const trigger = { minPseudoLabeled: 1_000 };
    expect(roundDue({ examples: 999, images: 0, firstShardAt: T0 }, trigger, T0 + 3_600_000)).toEqual({
      due: false,
      waitingFor: '1 more examples',
    });
    expect(roundDue({ examples: 1_000, images: 0, firstShardAt: T0 }, trigger, T0)).toEqual({
      due: true,
      reason: '1000 pseudo-labeled examples (at least 1000)',
    });
  });

  it('starts after the longest wait with whatever is held, never with nothing', () => {
    const trigger = { minPseudoLabeled: 1_000, maxWaitSeconds: 60 };
    expect(roundDue({ examples: 10, images: 0, firstShardAt: T0 }, trigger, T0 + 59_999).due).toBe(false);
    expect(roundDue({ examples: 10, images: 0, firstShardAt: T0 }, trigger, T0 + 60_000)).toEqual({
      due: true,
      reason: '60 s since the first shard (at most 60), 10 examples',
    });
    expect(roundDue({ examples: 0, images: 0, firstShardAt: undefined }, { maxWaitSeconds: 60 }, T0 + 10 ** 9)).toEqual(
      {
        due: false,
        waitingFor: 'a first shard',
      },
    );
  });

  it('starts once the shards report on enough images, if any was kept', () => {
    const trigger = { minImages: 500 };
    expect(roundDue({ examples: 40, images: 499, firstShardAt: T0 }, trigger, T0)).toEqual({
      due: false,
      waitingFor: '1 more images labeled',
    });
    expect(roundDue({ examples: 40, images: 500, firstShardAt: T0 }, trigger, T0)).toEqual({
      due: true,
      reason: '500 images labeled (at least 500), 40 examples',
    });
    expect(roundDue({ examples: 0, images: 900, firstShardAt: T0 }, trigger, T0).due).toBe(false);
  });

  it('refuses a trigger that can never fire, naming the setting', () => {
    expect(() => checkRoundTrigger({})).toThrow('minPseudoLabeled, minImages, maxWaitSeconds: expected at least one');
    expect(() => checkRoundTrigger({ minImages: 1.5 })).toThrow('minImages: expected a positive integer');
    expect(() => checkRoundTrigger({ minPseudoLabeled: 0 })).toThrow('minPseudoLabeled: expected a positive integer');
    expect(() => checkRoundTrigger({ maxWaitSeconds: -1 })).toThrow('maxWaitSeconds: expected a number > 0');
    expect(() => checkRoundTrigger({ minPseudoLabeled: 5, maxWaitSeconds: 30 })).not.toThrow();
  });
});
