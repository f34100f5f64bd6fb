import type { ClassProbabilities } from '@noisystudent/proto';

/**
 * One image's answer from its row of probabilities: argmax (lowest index on a tie), its name and
 * confidence, and the `topK` most probable classes, most probable first (prediction.proto).
 */
export function toClassProbabilities(
  row: Float32Array,
  classNames: readonly string[],
  topK: number,
): ClassProbabilities {
  let labelIndex = 0;
  for (let index = 1; index < row.length; index++) {
    if ((row[index] ?? 0) > (row[labelIndex] ?? 0)) labelIndex = index;
  }
  const order = topK === 0 ? [] : Array.from(row.keys()).sort((a, b) => (row[b] ?? 0) - (row[a] ?? 0) || a - b);
  return {
    probabilities: Array.from(row),
    labelIndex,
    labelName: classNames[labelIndex] ?? '',
    confidence: row[labelIndex] ?? 0,
    topK: order.slice(0, topK).map((index) => ({
      labelIndex: index,
      labelName: classNames[index] ?? '',
      probability: row[index] ?? 0,
    })),
  };
}
