import { describe, expect, it } from 'vitest';

import { chooseTeacherRecipe, promotesStudent } from './decisions.js';

describe('chooseTeacherRecipe', () => {
  it('takes the recipe better on eval even when the other is better on test', () => {
    expect(
      chooseTeacherRecipe({
        supervised: { eval: 0.6, test: 0.8 },
        supervised_noised: { eval: 0.65, test: 0.5 },
      }),
    ).toBe('supervised_noised');
    expect(
      chooseTeacherRecipe({
        supervised: { eval: 0.7, test: 0.5 },
        supervised_noised: { eval: 0.69, test: 0.9 },
      }),
    ).toBe('supervised');
  });

  it('takes the plain recipe on an eval tie, whatever test says', () => {
    expect(
      chooseTeacherRecipe({
        supervised: { eval: 0.6, test: 0.5 },
        supervised_noised: { eval: 0.6, test: 0.7 },
      }),
    ).toBe('supervised');
  });
});

describe('promotesStudent', () => {
  it('promotes a student better on eval though worse on test', () => {
    expect(promotesStudent({ eval: 0.71, test: 0.6 }, { eval: 0.7, test: 0.8 })).toBe(true);
  });

  it('keeps the teacher when the student is better on test only, or ties on eval', () => {
    expect(promotesStudent({ eval: 0.69, test: 0.9 }, { eval: 0.7, test: 0.6 })).toBe(false);
    expect(promotesStudent({ eval: 0.7, test: 0.9 }, { eval: 0.7, test: 0.6 })).toBe(false);
  });

  it('asks for the margin when one is set: at least minImprovement better, and never a tie', () => {
    const teacher = { eval: 0.8, test: 0.8 };
    expect(promotesStudent({ eval: 0.805, test: 0 }, teacher, 0.01)).toBe(false);
    expect(promotesStudent({ eval: 0.8125, test: 0 }, teacher, 0.0125)).toBe(true);
    expect(promotesStudent({ eval: 0.8, test: 0 }, teacher, 0)).toBe(false);
    expect(() => promotesStudent({ eval: 0.9, test: 0 }, teacher, 1.5)).toThrow(
      'minImprovement: expected a number from -1 to 1',
    );
  });

  it('lets a student at most -minImprovement worse through when the margin is negative (tests, forced rollouts)', () => {
    const teacher = { eval: 0.8, test: 0.8 };
    expect(promotesStudent({ eval: 0.8, test: 0 }, teacher, -0.05)).toBe(true);
    expect(promotesStudent({ eval: 0.76, test: 0 }, teacher, -0.05)).toBe(true);
    expect(promotesStudent({ eval: 0.74, test: 0 }, teacher, -0.05)).toBe(false);
  });
});
