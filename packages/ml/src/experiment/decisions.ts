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

/** A student replaces its teacher when it is strictly better on eval. */
export function promotesStudent(student: HeldOutAccuracy, teacher: HeldOutAccuracy): boolean {
  return student.eval > teacher.eval;
}
