import type { TopLevelSpec } from 'vega-lite';

import {
  CONFUSION_DARK,
  CONFUSION_LIGHT,
  MODEL_COLORS,
  OUTCOME_COLORS,
  TEXT_COLOR,
  type LabelingOutcome,
  type ModelSeries,
} from './chart-theme.js';
import type { Report, ReportRound } from './report-data.js';

// The report's charts as Vega-Lite specs, pure functions of the Report. Each returns undefined
// when the report has nothing to draw, so the page can say what is missing instead of drawing
// empty axes. Data is inline: the page must render without network access.

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** Per-class bar charts show this many series at most (the newest), so bars stay readable. */
export const MAX_PER_CLASS_SERIES = 6;

const TEST_PANEL = 'Test accuracy';
const EVAL_PANEL = 'Eval accuracy (decides promotion)';

function modelColor(present: Iterable<ModelSeries>) {
  const wanted = new Set(present);
  const domain = (Object.keys(MODEL_COLORS) as ModelSeries[]).filter((series) => wanted.has(series));
  return { domain, range: domain.map((series) => MODEL_COLORS[series]) };
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

interface AccuracyPoint {
  round: number;
  panel: string;
  model: ModelSeries;
  version: string;
  accuracy: number;
}

/** Teacher, student and the same-budget baselines per round: test accuracy beside eval accuracy. */
export function accuracyPerRoundChart(report: Report): TopLevelSpec | undefined {
  const points: AccuracyPoint[] = [];
  const add = (round: ReportRound, panel: string, model: ModelSeries, version: string, accuracy: unknown) => {
    if (isFiniteNumber(accuracy)) points.push({ round: round.round, panel, model, version, accuracy });
  };
  for (const round of report.rounds) {
    add(round, TEST_PANEL, 'Teacher', round.teacherVersion, round.teacher.test);
    add(round, TEST_PANEL, 'Student', round.studentVersion, round.student?.test);
    add(round, TEST_PANEL, 'Supervised', 'baseline', round.baselines.supervised);
    add(round, TEST_PANEL, 'Supervised + noise', 'baseline', round.baselines.supervisedNoised);
    add(round, EVAL_PANEL, 'Teacher', round.teacherVersion, round.teacher.eval);
    add(round, EVAL_PANEL, 'Student', round.studentVersion, round.student?.eval);
  }
  if (points.length === 0) return undefined;
  const panels = [TEST_PANEL, EVAL_PANEL].filter((panel) => points.some((point) => point.panel === panel));
  return {
    $schema: SCHEMA,
    data: { values: points },
    facet: { column: { field: 'panel', type: 'nominal', sort: panels, title: null } },
    spec: {
      width: 380,
      height: 240,
      encoding: {
        x: { field: 'round', type: 'ordinal', title: 'Round', axis: { labelAngle: 0 } },
        y: {
          field: 'accuracy',
          type: 'quantitative',
          title: 'Accuracy',
          scale: { zero: false, nice: true, padding: 12 },
          axis: { format: '.1~%' },
        },
        color: {
          field: 'model',
          type: 'nominal',
          title: null,
          scale: modelColor(points.map((point) => point.model)),
          legend: { orient: 'top', direction: 'horizontal' },
        },
      },
      layer: [
        { mark: { type: 'line', strokeWidth: 2 } },
        { mark: { type: 'point', filled: true, size: 64, opacity: 1 } },
      ],
    },
    resolve: { scale: { y: 'shared' } },
  };
}

interface ClassAccuracy {
  className: string;
  model: ModelSeries;
  accuracy: number;
}

/** The round whose teacher (and student) per-class test accuracy the per-class chart shows. */
export function perClassRound(report: Report): ReportRound | undefined {
  return report.rounds.findLast((round) => round.teacher.testPerClass.length > 0);
}

/** Per-class test accuracy: the last measured round's teacher vs student, and the served model. */
export function perClassAccuracyChart(report: Report, classes: string[]): TopLevelSpec | undefined {
  const rows: ClassAccuracy[] = [];
  const add = (model: ModelSeries, accuracies: number[] | undefined) => {
    accuracies?.forEach((accuracy, classIndex) => {
      const className = classes[classIndex];
      if (className !== undefined && isFiniteNumber(accuracy)) rows.push({ className, model, accuracy });
    });
  };
  const round = perClassRound(report);
  add('Teacher', round?.teacher.testPerClass);
  add('Student', round?.student?.testPerClass);
  add('Served', report.served?.perClassAccuracy);
  if (rows.length === 0) return undefined;
  const color = modelColor(rows.map((row) => row.model));
  const drawnClasses = classes.filter((className) => rows.some((row) => row.className === className));
  return {
    $schema: SCHEMA,
    data: { values: rows },
    width: 720,
    height: drawnClasses.length * (color.domain.length * 9 + 8),
    mark: { type: 'bar', cornerRadiusEnd: 2 },
    encoding: {
      y: { field: 'className', type: 'nominal', title: null, sort: drawnClasses, axis: { labelLimit: 160 } },
      yOffset: { field: 'model', type: 'nominal', sort: color.domain },
      x: {
        field: 'accuracy',
        type: 'quantitative',
        title: 'Test accuracy',
        scale: { domain: [0, 1] },
        axis: { format: '.0%' },
      },
      color: { field: 'model', type: 'nominal', title: null, scale: color, legend: { orient: 'top' } },
    },
  };
}

/** The served model's confusion matrix: counts as text, color as the share of the true class. */
export function confusionChart(report: Report, classes: string[]): TopLevelSpec | undefined {
  const confusion = report.served?.confusion ?? [];
  const cells: { trueClass: string; predictedClass: string; count: number; share: number }[] = [];
  confusion.forEach((row, trueIndex) => {
    const trueClass = classes[trueIndex];
    if (trueClass === undefined) return;
    const rowTotal = row.reduce((sum, count) => sum + (isFiniteNumber(count) ? count : 0), 0);
    row.forEach((count, predictedIndex) => {
      const predictedClass = classes[predictedIndex];
      if (predictedClass === undefined || !isFiniteNumber(count)) return;
      cells.push({ trueClass, predictedClass, count, share: rowTotal > 0 ? count / rowTotal : 0 });
    });
  });
  if (cells.length === 0) return undefined;
  const axisClasses = classes.slice(0, Math.max(confusion.length, ...confusion.map((row) => row.length)));
  const cellSize = 42;
  return {
    $schema: SCHEMA,
    data: { values: cells },
    width: axisClasses.length * cellSize,
    height: axisClasses.length * cellSize,
    encoding: {
      x: {
        field: 'predictedClass',
        type: 'nominal',
        title: 'Predicted class',
        sort: axisClasses,
        axis: { orient: 'top', labelAngle: -40, labelAlign: 'left', labelLimit: 120, domain: false, ticks: false },
      },
      y: {
        field: 'trueClass',
        type: 'nominal',
        title: 'True class',
        sort: axisClasses,
        axis: { labelLimit: 120, domain: false, ticks: false },
      },
    },
    layer: [
      {
        mark: { type: 'rect', stroke: 'white', strokeWidth: 1 },
        encoding: {
          color: {
            field: 'share',
            type: 'quantitative',
            title: 'Share of true class',
            // sqrt: the few-percent confusions off the diagonal would be invisible on a linear
            // scale. The served model's color, from near-white (no images) to dark.
            scale: { type: 'sqrt', domain: [0, 1], range: [CONFUSION_LIGHT, CONFUSION_DARK], interpolate: 'hcl' },
            legend: { format: '.0%', values: [0, 0.05, 0.2, 0.5, 1], gradientLength: 220, titleLimit: 260 },
          },
        },
      },
      {
        transform: [{ filter: 'datum.count > 0' }],
        mark: { type: 'text', fontSize: 11 },
        encoding: {
          text: { field: 'count', type: 'quantitative', format: ',d' },
          color: { condition: { test: 'datum.share > 0.35', value: 'white' }, value: TEXT_COLOR },
        },
      },
    ],
  };
}

/** What the labeler did with each teacher version's images, stacked. */
export function labelingOutcomeChart(report: Report): TopLevelSpec | undefined {
  const outcomes = Object.keys(OUTCOME_COLORS) as LabelingOutcome[];
  const rows: { version: string; outcome: LabelingOutcome; order: number; images: number }[] = [];
  for (const labeling of report.labeling) {
    const counts: Record<LabelingOutcome, number> = {
      'In shards': labeling.inShards,
      'Cut by balancing': labeling.cutByBalancing,
      'Below threshold': labeling.belowThreshold,
      Rejected: labeling.rejected,
    };
    outcomes.forEach((outcome, order) => {
      const images = counts[outcome];
      if (isFiniteNumber(images) && images > 0) rows.push({ version: labeling.teacherVersion, outcome, order, images });
    });
  }
  if (rows.length === 0) return undefined;
  return {
    $schema: SCHEMA,
    data: { values: rows },
    width: { step: 88 },
    height: 260,
    mark: { type: 'bar' },
    encoding: {
      x: {
        field: 'version',
        type: 'nominal',
        title: 'Teacher version',
        sort: report.labeling.map((labeling) => labeling.teacherVersion),
        axis: { labelAngle: 0 },
      },
      y: { field: 'images', type: 'quantitative', title: 'Images', stack: 'zero', axis: { format: ',~f' } },
      color: {
        field: 'outcome',
        type: 'nominal',
        title: null,
        scale: { domain: outcomes, range: outcomes.map((outcome) => OUTCOME_COLORS[outcome]) },
        legend: { orient: 'right' },
      },
      order: { field: 'order', type: 'quantitative' },
    },
  };
}

interface ClassCount {
  series: string;
  className: string;
  count: number;
}

function perClassCountChart(
  rows: ClassCount[],
  seriesOrder: string[],
  classes: string[],
  seriesTitle: string | null,
  countTitle: string,
): TopLevelSpec | undefined {
  if (rows.length === 0) return undefined;
  return {
    $schema: SCHEMA,
    data: { values: rows },
    width: 860,
    height: 200,
    mark: { type: 'bar', cornerRadiusEnd: 1 },
    encoding: {
      x: {
        field: 'className',
        type: 'nominal',
        title: null,
        sort: classes.filter((className) => rows.some((row) => row.className === className)),
        axis: { labelAngle: 0, labelLimit: 0 },
      },
      xOffset: { field: 'series', type: 'nominal', sort: seriesOrder },
      y: { field: 'count', type: 'quantitative', title: countTitle, axis: { format: ',~f' } },
      color: {
        field: 'series',
        type: 'ordinal',
        title: seriesTitle,
        sort: seriesOrder,
        // Older series lighter; the floor keeps the oldest visible on white.
        scale: { scheme: { name: 'blues', extent: [0.35, 0.9] } },
        legend: { orient: 'top' },
      },
    },
  };
}

function classCounts(series: string, counts: number[], classes: string[]): ClassCount[] {
  return counts.flatMap((count, classIndex) => {
    const className = classes[classIndex];
    return className !== undefined && isFiniteNumber(count) ? [{ series, className, count }] : [];
  });
}

/** Pseudo-labeled copies per class the labeler wrote, per teacher version (the newest few). */
export function copiesPerClassChart(report: Report, classes: string[]): TopLevelSpec | undefined {
  const labelings = report.labeling
    .filter((labeling) => labeling.copiesPerClass.length > 0)
    .slice(-MAX_PER_CLASS_SERIES);
  const rows = labelings.flatMap((labeling) => classCounts(labeling.teacherVersion, labeling.copiesPerClass, classes));
  const order = labelings.map((labeling) => labeling.teacherVersion);
  return perClassCountChart(rows, order, classes, 'Teacher version', 'Copies');
}

export function roundLabel(round: ReportRound): string {
  return `Round ${round.round}`;
}

/** Pseudo-labeled examples per class that trained each round's student (the newest few rounds). */
export function roundExamplesPerClassChart(report: Report, classes: string[]): TopLevelSpec | undefined {
  const rounds = report.rounds.filter((round) => round.examplesPerClass.length > 0).slice(-MAX_PER_CLASS_SERIES);
  const rows = rounds.flatMap((round) => classCounts(roundLabel(round), round.examplesPerClass, classes));
  return perClassCountChart(rows, rounds.map(roundLabel), classes, null, 'Examples');
}

/** Eval accuracy of each promoted teacher over the time it was promoted. */
export function promotionChart(report: Report): TopLevelSpec | undefined {
  const points = report.promotions.flatMap((promotion) => {
    const time = Date.parse(promotion.promotedAt);
    return isFiniteNumber(promotion.evalAccuracy) && Number.isFinite(time)
      ? [{ version: promotion.version, promotedAt: new Date(time).toISOString(), evalAccuracy: promotion.evalAccuracy }]
      : [];
  });
  if (points.length === 0) return undefined;
  const times = points.map((point) => Date.parse(point.promotedAt));
  const spanHours = (Math.max(...times) - Math.min(...times)) / 3_600_000;
  const x = {
    field: 'promotedAt',
    type: 'temporal',
    title: 'Promoted at (UTC)',
    // UTC so the axis reads the same wherever the report is built.
    scale: { type: 'utc', padding: 24 },
    axis: { labelAngle: 0, labelOverlap: true, format: spanHours < 20 ? '%H:%M' : '%b %d %H:%M' },
  } as const;
  const y = {
    field: 'evalAccuracy',
    type: 'quantitative',
    title: 'Eval accuracy',
    scale: { zero: false, nice: true, padding: 16 },
    axis: { format: '.1~%' },
  } as const;
  return {
    $schema: SCHEMA,
    data: { values: points },
    width: 760,
    height: 220,
    encoding: { x, y },
    layer: [
      // A teacher serves from its promotion until the next one: a step line.
      { mark: { type: 'line', color: MODEL_COLORS.Teacher, strokeWidth: 2, interpolate: 'step-after' } },
      { mark: { type: 'point', filled: true, size: 70, color: MODEL_COLORS.Teacher, opacity: 1 } },
      {
        mark: { type: 'text', dy: -12, fontSize: 11, fontWeight: 600, color: TEXT_COLOR },
        encoding: { text: { field: 'version', type: 'nominal' } },
      },
    ],
  };
}
