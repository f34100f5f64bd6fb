/** The labeler's JetStream names (DESIGN.md §4), all derived from one prefix (default `ns`). */
export interface LabelerNames {
  prefix: string;
  /** Stream of unlabeled images: `NS_UNLABELED` for prefix `ns`. */
  unlabeledStream: string;
  /** Subjects of the unlabeled stream: `ns.unlabeled.>`; a producer publishes to `ns.unlabeled.<source>`. */
  unlabeledSubjects: string;
  /** Stream of shards: `NS_SHARDS`. */
  shardsStream: string;
  /** `ns.shards.>`; a version's shards go to `ns.shards.<teacherVersion>`. */
  shardsSubjects: string;
}

export function labelerNames(prefix = 'ns'): LabelerNames {
  if (!/^[A-Za-z0-9_-]+$/.test(prefix)) {
    throw new Error(`prefix: expected letters, digits, '-' or '_', got ${JSON.stringify(prefix)}`);
  }
  const upper = prefix.toUpperCase().replace(/-/g, '_');
  return {
    prefix,
    unlabeledStream: `${upper}_UNLABELED`,
    unlabeledSubjects: `${prefix}.unlabeled.>`,
    shardsStream: `${upper}_SHARDS`,
    shardsSubjects: `${prefix}.shards.>`,
  };
}

/** Subject an unlabeled image is stored under: `<prefix>.unlabeled.<source>` (a token: no dots, spaces or wildcards). */
export function unlabeledSubject(names: LabelerNames, source: string): string {
  return `${names.prefix}.unlabeled.${subjectToken(source)}`;
}

/** Subject of a teacher version's shards. */
export function shardSubject(names: LabelerNames, teacherVersion: string): string {
  return `${names.prefix}.shards.${subjectToken(teacherVersion)}`;
}

/** Durable consumer labeling NS_UNLABELED for one teacher version (shared by every replica). */
export function labelingConsumer(teacherVersion: string): string {
  return `labeler_${subjectToken(teacherVersion)}`;
}

function subjectToken(value: string): string {
  return value.replace(/[^A-Za-z0-9_-]/g, '_') || '_';
}
