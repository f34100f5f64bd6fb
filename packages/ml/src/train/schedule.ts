/** Learning rate over training: constant, or linear warm-up then cosine decay. */
export type LearningRateSchedule =
  | { kind: 'constant'; learningRate: number }
  | {
      kind: 'cosine';
      learningRate: number;
      /** Steps of linear warm-up from 0. @default 0 */
      warmupSteps?: number;
      /** The rate at the last step, as a fraction of `learningRate`. @default 0 */
      finalFraction?: number;
    };

/** The learning rate at `step` (0-based) of `totalSteps`. */
export function learningRateAt(schedule: LearningRateSchedule, step: number, totalSteps: number): number {
  if (!(schedule.learningRate > 0))
    throw new Error(`learningRate: expected a positive number, got ${schedule.learningRate}`);
  if (schedule.kind === 'constant') return schedule.learningRate;
  const warmup = schedule.warmupSteps ?? 0;
  if (step < warmup) return (schedule.learningRate * (step + 1)) / warmup;
  const finalFraction = schedule.finalFraction ?? 0;
  const progress = totalSteps - warmup <= 1 ? 1 : (step - warmup) / (totalSteps - warmup - 1);
  const cosine = 0.5 * (1 + Math.cos(Math.PI * Math.min(Math.max(progress, 0), 1)));
  return schedule.learningRate * (finalFraction + (1 - finalFraction) * cosine);
}
