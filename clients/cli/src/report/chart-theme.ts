import type { Config } from 'vega-lite';

// One palette for the whole report: a model kind has the same color in every chart and in the
// page's legends and badges (render-html.ts reads these too).

export const FONT_FAMILY = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif";

export const MODEL_COLORS = {
  Teacher: '#2563eb',
  Student: '#ea580c',
  Supervised: '#64748b',
  'Supervised + noise': '#0d9488',
  Served: '#7c3aed',
} as const;

export type ModelSeries = keyof typeof MODEL_COLORS;

/** What happened to the images a teacher version labeled, in stacking order. */
export const OUTCOME_COLORS = {
  'In shards': '#16a34a',
  'Cut by balancing': '#f59e0b',
  'Below threshold': '#94a3b8',
  Rejected: '#dc2626',
} as const;

export type LabelingOutcome = keyof typeof OUTCOME_COLORS;

/** The confusion matrix's shading: the served model's color, from no images to all of a row. */
export const CONFUSION_LIGHT = '#faf7ff';
export const CONFUSION_DARK = '#3b0f8c';

export const TEXT_COLOR = '#0f172a';
export const MUTED_TEXT_COLOR = '#475569';
export const RULE_COLOR = '#e2e8f0';

export const CHART_CONFIG: Config = {
  font: FONT_FAMILY,
  background: 'white',
  padding: 8,
  view: { stroke: null },
  axis: {
    labelColor: MUTED_TEXT_COLOR,
    titleColor: TEXT_COLOR,
    titleFontWeight: 600,
    titleFontSize: 12,
    labelFontSize: 11,
    gridColor: RULE_COLOR,
    domainColor: '#94a3b8',
    tickColor: '#94a3b8',
  },
  legend: {
    labelColor: MUTED_TEXT_COLOR,
    titleColor: TEXT_COLOR,
    titleFontWeight: 600,
    titleFontSize: 12,
    labelFontSize: 11,
  },
  header: { labelColor: TEXT_COLOR, labelFontSize: 12, labelFontWeight: 600, titleFontSize: 12 },
};
