/** The two supervised recipes a teacher can come from. */
export type Recipe = 'supervised' | 'supervised_noised';

/**
 * Top-1 of one model, 0–1, on the eval split (held out from the training images; it decides) and
 * on the test split (only reported: a choice made on test would make the reported test accuracy
 * an optimistic estimate).
 */
export interface HeldOutAccuracy {
  eval: number;
  test: number;
}

/** The teacher's recipe: the one better on eval; the plain recipe on a tie (it is the cheaper one). */
export function chooseTeacherRecipe(candidates: Record<Recipe, HeldOutAccuracy>): Recipe {
  return candidates.supervised.eval >= candidates.supervised_noised.eval ? 'supervised' : 'supervised_noised';
}

/**
 * A student replaces its teacher when it is better on eval by at least `minImprovement` (top-1,
 * −1 to 1). With a margin ≥ 0 it must be strictly better: a tie keeps the teacher. A negative
 * margin lets a student up to −minImprovement worse through (tests, or rolling out a larger model
 * on purpose). The experiment and the trainer service both decide with this.
 */
export function promotesStudent(student: HeldOutAccuracy, teacher: HeldOutAccuracy, minImprovement = 0): boolean {
  if (!(minImprovement >= -1 && minImprovement <= 1)) {
    throw new Error(`minImprovement: expected a number from -1 to 1, got ${minImprovement}`);
  }
  const margin = student.eval - teacher.eval;
  // Accuracies are ratios of counts: a margin met exactly must not fail on rounding (0.8125 − 0.8).
  return margin >= minImprovement - 1e-9 && (minImprovement < 0 || margin > 0);
}
