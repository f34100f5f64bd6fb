// What `nsctl report` gathers from a running stack and writes as report.json; index.html is
// rendered from exactly this (render-html.ts), so the JSON is the report's whole content.

/** Accuracies of one model on the eval split (decides) and the test split (reported), 0–1. */
export interface SplitAccuracy {
  eval: number;
  test: number;
  /** Per-class top-1 accuracy on test, in class order (empty when the record has none). */
  testPerClass: number[];
}

export interface ReportRound {
  round: number;
  teacherVersion: string;
  studentVersion: string;
  decision: 'promoted' | 'rejected' | 'failed';
  reason: string;
  /** ISO times. */
  startedAt: string;
  finishedAt: string;
  teacher: SplitAccuracy;
  /** Absent when the round failed before evaluating its student. */
  student?: SplitAccuracy;
  /** Same-budget supervised baselines' test accuracy (absent when the trainer ran without --baselines). */
  baselines: { supervised?: number; supervisedNoised?: number };
  shards: number;
  pseudoLabeledExamples: number;
  labeledExamples: number;
  /** Pseudo-labeled copies per class that trained the student (after balancing). */
  examplesPerClass: number[];
  steps: number;
}

/** One teacher in the registry's history, oldest first. */
export interface ReportPromotion {
  version: string;
  parentVersion: string;
  promotedAt: string;
  promotedBy: string;
  reason: string;
  /** The version's eval accuracy as recorded with the pointer (0–1), when it has one. */
  evalAccuracy?: number;
}

/** What the labeler did with the images of one teacher version. */
export interface ReportLabeling {
  teacherVersion: string;
  labeled: number;
  inShards: number;
  copies: number;
  cutByBalancing: number;
  belowThreshold: number;
  rejected: number;
  /** Share of labeled images whose confidence passed the threshold, 0–1. */
  acceptanceRate: number;
  meanConfidence: number;
  copiesPerClass: number[];
}

/** The served teacher measured through Predict on labeled test images. */
export interface ReportServedModel {
  version: string;
  images: number;
  accuracy: number;
  perClassAccuracy: number[];
  /** confusion[true][predicted] = image count. */
  confusion: number[][];
}

/** One pseudo-labeled image from a shard. */
export interface ReportSample {
  teacherVersion: string;
  sourceId: string;
  labelIndex: number;
  label: string;
  confidence: number;
  /** A PNG of the image, base64 (no data: prefix). */
  pngBase64: string;
}

export interface Report {
  /** ISO time the report was written. */
  generatedAt: string;
  title: string;
  classNames: string[];
  /** The teacher the registry points at when the report was written. */
  teacherVersion: string;
  /** Free-form settings worth showing (preset, threshold, noise…), name → value. */
  settings: Record<string, string | number | boolean>;
  rounds: ReportRound[];
  promotions: ReportPromotion[];
  labeling: ReportLabeling[];
  /** Absent when no labeled test images were available to measure it. */
  served?: ReportServedModel;
  samples: ReportSample[];
}
