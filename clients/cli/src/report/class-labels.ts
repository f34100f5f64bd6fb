import type { Report } from './report-data.js';

/**
 * One display label per class index, as long as the longest per-class array in the report.
 * A missing name reads `class 7`; a repeated name gets its index appended, because charts key
 * their axes by label and two classes must not share a row.
 */
export function classLabels(report: Report): string[] {
  const count = Math.max(
    report.classNames.length,
    report.served?.perClassAccuracy.length ?? 0,
    report.served?.confusion.length ?? 0,
    ...report.rounds.flatMap((round) => [
      round.teacher.testPerClass.length,
      round.student?.testPerClass.length ?? 0,
      round.examplesPerClass.length,
    ]),
    ...report.labeling.map((labeling) => labeling.copiesPerClass.length),
  );
  const seen = new Set<string>();
  const labels: string[] = [];
  for (let classIndex = 0; classIndex < count; classIndex++) {
    const name = report.classNames[classIndex]?.trim() || `class ${classIndex}`;
    const label = seen.has(name) ? `${name} (${classIndex})` : name;
    seen.add(label);
    labels.push(label);
  }
  return labels;
}
