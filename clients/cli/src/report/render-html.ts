import type { TopLevelSpec } from 'vega-lite';

import { renderChartSvg } from './chart-svg.js';
import { FONT_FAMILY, MODEL_COLORS, MUTED_TEXT_COLOR, RULE_COLOR, TEXT_COLOR } from './chart-theme.js';
import { classLabels } from './class-labels.js';
import {
  accuracyPerRoundChart,
  confusionChart,
  copiesPerClassChart,
  labelingOutcomeChart,
  MAX_PER_CLASS_SERIES,
  perClassAccuracyChart,
  perClassRound,
  promotionChart,
  roundExamplesPerClassChart,
} from './report-charts.js';
import type { Report, ReportRound, ReportSample } from './report-data.js';
import { formatCount, formatDuration, formatPercent, formatPointDelta, formatTime } from './report-format.js';
import { html, trustedHtml, type SafeHtml } from './safe-html.js';

// The report as one self-contained page: inline CSS, charts drawn to inline SVG here (Vega-Lite
// → Vega → SVG), sample images as data: URIs, no scripts and nothing fetched when it is viewed.

/** The charts the page can hold, by the name each chart's <figure data-chart> carries. */
export const CHART_NAMES = [
  'accuracy',
  'per-class',
  'confusion',
  'labeling-outcomes',
  'copies-per-class',
  'round-examples-per-class',
  'promotions',
] as const;

export type ChartName = (typeof CHART_NAMES)[number];

type ChartSvgs = Partial<Record<ChartName, string>>;

export async function renderReportHtml(report: Report): Promise<string> {
  const classes = classLabels(report);
  const specs: Record<ChartName, TopLevelSpec | undefined> = {
    accuracy: accuracyPerRoundChart(report),
    'per-class': perClassAccuracyChart(report, classes),
    confusion: confusionChart(report, classes),
    'labeling-outcomes': labelingOutcomeChart(report),
    'copies-per-class': copiesPerClassChart(report, classes),
    'round-examples-per-class': roundExamplesPerClassChart(report, classes),
    promotions: promotionChart(report),
  };
  const svgs: ChartSvgs = {};
  for (const name of CHART_NAMES) {
    const spec = specs[name];
    if (spec) svgs[name] = await renderChartSvg(spec);
  }
  const title = report.title.trim() || 'Noisy Student report';
  const page = html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="generator" content="nsctl report" />
        <title>${title}</title>
        <style>
          ${trustedHtml(STYLESHEET)}
        </style>
      </head>
      <body>
        <main>
          ${headerSection(report, title)} ${accuracySection(report, svgs)} ${perClassSection(report, svgs)}
          ${confusionSection(report, svgs)} ${labelingSection(report, svgs)} ${samplesSection(report, classes)}
          ${promotionsSection(report, svgs)}
          <footer>Written by <code>nsctl report</code> from <code>report.json</code> beside this page.</footer>
        </main>
      </body>
    </html> `;
  return page.markup;
}

function chartFigure(name: ChartName, svgs: ChartSvgs, caption?: SafeHtml | string): SafeHtml {
  const svg = svgs[name];
  if (svg === undefined) return html``;
  return html`<figure class="chart" data-chart="${name}">
    ${trustedHtml(svg)}${caption ? html`<figcaption>${caption}</figcaption>` : ''}
  </figure>`;
}

function empty(message: string): SafeHtml {
  return html`<p class="empty">${message}</p>`;
}

function version(name: string): SafeHtml {
  return name ? html`<span class="version">${name}</span>` : html`<span class="muted">—</span>`;
}

function swatch(series: keyof typeof MODEL_COLORS): SafeHtml {
  return html`<span class="swatch" style="background:${MODEL_COLORS[series]}"></span>`;
}

function section(id: string, heading: string, lede: SafeHtml | string, body: SafeHtml): SafeHtml {
  return html`<section id="${id}">
    <h2>${heading}</h2>
    <p class="lede">${lede}</p>
    ${body}
  </section>`;
}

// Header: title, time, teacher, the headline numbers and the settings.

function headerSection(report: Report, title: string): SafeHtml {
  const lastRound = report.rounds.at(-1);
  const promoted = report.rounds.filter((round) => round.decision === 'promoted').length;
  const teacherPromotion = report.promotions.findLast((promotion) => promotion.version === report.teacherVersion);
  const cards = [
    card(
      'Teacher',
      version(report.teacherVersion),
      teacherPromotion ? `promoted ${formatTime(teacherPromotion.promotedAt)}` : 'as the registry points now',
    ),
    report.served
      ? card(
          'Served test accuracy',
          formatPercent(report.served.accuracy),
          html`${version(report.served.version)} on ${formatCount(report.served.images)} images`,
        )
      : card('Served test accuracy', '—', 'not measured'),
    card('Rounds', formatCount(report.rounds.length), `${promoted} promoted`),
    lastRound ? latestRoundCard(lastRound) : card('Latest round', '—', 'no rounds yet'),
  ];
  const settings = Object.entries(report.settings);
  return html`<header class="page-header">
      <p class="eyebrow">Noisy Student self-training · Fashion-MNIST</p>
      <h1>${title}</h1>
      <p class="meta">Generated ${formatTime(report.generatedAt)} · teacher ${version(report.teacherVersion)}</p>
    </header>
    <div class="cards">${cards}</div>
    <nav class="toc" aria-label="Sections">
      <a href="#accuracy">Accuracy per round</a><a href="#per-class">Per-class accuracy</a
      ><a href="#confusion">Confusion matrix</a><a href="#labeling">Pseudo-labels</a><a href="#samples">Samples</a
      ><a href="#promotions">Promotions</a>
    </nav>
    <section id="settings">
      <h2>Settings</h2>
      ${
        settings.length === 0
          ? empty('No settings were recorded with this report.')
          : html`<dl class="settings">
              ${settings.map(
                ([name, value]) =>
                  html`<div class="setting">
                    <dt>${name}</dt>
                    <dd>${String(value)}</dd>
                  </div>`,
              )}
            </dl>`
      }
    </section>`;
}

function card(label: string, value: SafeHtml | string, note: SafeHtml | string): SafeHtml {
  return html`<div class="card">
    <div class="card-label">${label}</div>
    <div class="card-value">${value}</div>
    <div class="card-note">${note}</div>
  </div>`;
}

function latestRoundCard(round: ReportRound): SafeHtml {
  const delta = round.student ? formatPointDelta(round.student.test - round.teacher.test) : undefined;
  return card(
    `Latest round (${round.round})`,
    decisionBadge(round.decision),
    delta === undefined ? 'no student evaluated' : `student ${delta} test vs teacher`,
  );
}

function decisionBadge(decision: ReportRound['decision']): SafeHtml {
  return html`<span class="badge badge-${decision}">${decision}</span>`;
}

// Accuracy per round.

function accuracySection(report: Report, svgs: ChartSvgs): SafeHtml {
  const lede = html`Test accuracy of each round's ${swatch('Teacher')}teacher and ${swatch('Student')}student beside the
  same-budget baselines trained on the labeled data only (${swatch('Supervised')}supervised,
  ${swatch('Supervised + noise')}supervised + noise); eval accuracy is what the promotion decision compares.`;
  if (report.rounds.length === 0) {
    return section(
      'accuracy',
      'Accuracy per round',
      lede,
      empty('No rounds yet: the trainer has not finished a round.'),
    );
  }
  return section(
    'accuracy',
    'Accuracy per round',
    lede,
    html`${chartFigure('accuracy', svgs)}
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th class="num">Round</th>
              <th class="nowrap">Teacher → student</th>
              <th>Decision</th>
              <th>Reason</th>
              <th class="num">Test accuracy</th>
              <th class="num">Shards</th>
              <th class="num">Pseudo-labeled</th>
              <th class="num">Steps</th>
              <th class="num">Took</th>
            </tr>
          </thead>
          <tbody>
            ${report.rounds.map(roundRow)}
          </tbody>
        </table>
      </div>`,
  );
}

function roundRow(round: ReportRound): SafeHtml {
  const testAccuracy = round.student
    ? `${formatPercent(round.teacher.test)} → ${formatPercent(round.student.test)}`
    : formatPercent(round.teacher.test);
  return html`<tr>
    <td class="num">${round.round}</td>
    <td class="nowrap">${version(round.teacherVersion)} → ${version(round.studentVersion)}</td>
    <td>${decisionBadge(round.decision)}</td>
    <td class="reason">${round.reason}</td>
    <td class="num nowrap">${testAccuracy}</td>
    <td class="num">${formatCount(round.shards)}</td>
    <td class="num">
      ${formatCount(round.pseudoLabeledExamples)}
      <div class="muted small nowrap">+ ${formatCount(round.labeledExamples)} labeled</div>
    </td>
    <td class="num">${formatCount(round.steps)}</td>
    <td class="num nowrap" title="${formatTime(round.startedAt)} – ${formatTime(round.finishedAt)}">
      ${formatDuration(round.startedAt, round.finishedAt)}
    </td>
  </tr>`;
}

// Per-class accuracy and the confusion matrix.

function perClassSection(report: Report, svgs: ChartSvgs): SafeHtml {
  const round = perClassRound(report);
  const sources: SafeHtml[] = [];
  if (round) {
    sources.push(
      round.student?.testPerClass.length
        ? html`round ${round.round}'s ${swatch('Teacher')}teacher ${version(round.teacherVersion)} and
          ${swatch('Student')}student ${version(round.studentVersion)} on the test split`
        : html`round ${round.round}'s ${swatch('Teacher')}teacher ${version(round.teacherVersion)} on the test split`,
    );
  }
  if (report.served?.perClassAccuracy.length) {
    sources.push(
      html`the ${swatch('Served')}served model ${version(report.served.version)} through Predict on
      ${formatCount(report.served.images)} labeled test images`,
    );
  }
  const body =
    svgs['per-class'] === undefined
      ? empty('No per-class accuracy: no round recorded per-class test accuracy and the served model was not measured.')
      : chartFigure('per-class', svgs);
  return section(
    'per-class',
    'Per-class accuracy',
    sources.length > 0 ? html`Top-1 accuracy per class: ${joinWithAnd(sources)}.` : 'Top-1 accuracy per class.',
    body,
  );
}

function joinWithAnd(parts: SafeHtml[]): SafeHtml {
  if (parts.length <= 1) return html`${parts}`;
  return html`${parts.slice(0, -1).map((part, index) => (index === 0 ? part : html`, ${part}`))} and ${parts.at(-1)}`;
}

function confusionSection(report: Report, svgs: ChartSvgs): SafeHtml {
  const served = report.served;
  const lede = served
    ? html`The served model ${version(served.version)} on ${formatCount(served.images)} labeled test images (accuracy
      ${formatPercent(served.accuracy)}). Rows are the true class, columns the predicted one; cells hold image counts,
      shaded by the share of their row.`
    : 'The served model measured through Predict on labeled test images.';
  const body =
    svgs.confusion === undefined
      ? empty(
          served
            ? 'The served model was measured, but without a confusion matrix.'
            : 'No served-model measurement: no labeled test images were available when the report was written.',
        )
      : chartFigure('confusion', svgs);
  return section('confusion', 'Confusion matrix', lede, body);
}

// Pseudo-labeling.

function labelingSection(report: Report, svgs: ChartSvgs): SafeHtml {
  const lede =
    'What the labeler did with the unlabeled images each teacher version labeled: kept in shards, cut when balancing classes, dropped below the confidence threshold, or rejected.';
  if (report.labeling.length === 0 && svgs['round-examples-per-class'] === undefined) {
    return section('labeling', 'Pseudo-labels', lede, empty('No labeling yet: no teacher version has labeled images.'));
  }
  const trimmed = (count: number) =>
    count > MAX_PER_CLASS_SERIES ? ` (the newest ${MAX_PER_CLASS_SERIES} of ${count})` : '';
  const labelingsWithCopies = report.labeling.filter((labeling) => labeling.copiesPerClass.length > 0).length;
  const roundsWithExamples = report.rounds.filter((round) => round.examplesPerClass.length > 0).length;
  return section(
    'labeling',
    'Pseudo-labels',
    lede,
    html`${
        svgs['labeling-outcomes'] === undefined
          ? empty('No labeled images recorded per teacher version.')
          : chartFigure('labeling-outcomes', svgs, 'Images per teacher version, by what became of them.')
      }
      ${
        report.labeling.length > 0
          ? html`<div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th>Teacher</th>
                    <th class="num">Labeled</th>
                    <th class="num">In shards</th>
                    <th class="num">Copies</th>
                    <th class="num">Cut by balancing</th>
                    <th class="num">Below threshold</th>
                    <th class="num">Rejected</th>
                    <th class="num">Acceptance</th>
                    <th class="num">Mean confidence</th>
                  </tr>
                </thead>
                <tbody>
                  ${report.labeling.map(
                    (labeling) =>
                      html`<tr>
                        <td>${version(labeling.teacherVersion)}</td>
                        <td class="num">${formatCount(labeling.labeled)}</td>
                        <td class="num">${formatCount(labeling.inShards)}</td>
                        <td class="num">${formatCount(labeling.copies)}</td>
                        <td class="num">${formatCount(labeling.cutByBalancing)}</td>
                        <td class="num">${formatCount(labeling.belowThreshold)}</td>
                        <td class="num">${formatCount(labeling.rejected)}</td>
                        <td class="num">${formatPercent(labeling.acceptanceRate)}</td>
                        <td class="num">${formatPercent(labeling.meanConfidence)}</td>
                      </tr>`,
                  )}
                </tbody>
              </table>
            </div>`
          : ''
      }
      <h3>Copies per class</h3>
      ${
        svgs['copies-per-class'] === undefined
          ? empty('The labeler recorded no per-class copies.')
          : chartFigure(
              'copies-per-class',
              svgs,
              `Pseudo-labeled copies per class the labeler wrote, per teacher version${trimmed(labelingsWithCopies)}.`,
            )
      }
      ${chartFigure(
        'round-examples-per-class',
        svgs,
        `Pseudo-labeled examples per class that trained each round's student, after balancing${trimmed(roundsWithExamples)}.`,
      )}`,
  );
}

// Sample images.

/** Standard base64, nothing else: the value goes into a data: URI. */
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function samplesSection(report: Report, classes: string[]): SafeHtml {
  const lede = 'Pseudo-labeled images taken from the shards, grouped by the label the teacher gave them.';
  if (report.samples.length === 0) {
    return section(
      'samples',
      'Pseudo-labeled samples',
      lede,
      empty('No pseudo-labeled samples: no shard was available when the report was gathered.'),
    );
  }
  const groups = new Map<number, ReportSample[]>();
  for (const sample of report.samples) {
    const group = groups.get(sample.labelIndex) ?? [];
    group.push(sample);
    groups.set(sample.labelIndex, group);
  }
  const ordered = [...groups.entries()].sort(([left], [right]) => left - right);
  return section(
    'samples',
    'Pseudo-labeled samples',
    lede,
    html`<div class="sample-groups">
      ${ordered.map(([labelIndex, samples]) => {
        const className = classes[labelIndex] ?? samples[0]?.label ?? `class ${labelIndex}`;
        const byConfidence = [...samples].sort((left, right) => right.confidence - left.confidence);
        return html`<div class="sample-group">
          <h3>
            ${className} <span class="muted small">${samples.length} ${samples.length === 1 ? 'image' : 'images'}</span>
          </h3>
          <div class="sample-grid">${byConfidence.map(sampleCard)}</div>
        </div>`;
      })}
    </div>`,
  );
}

function sampleCard(sample: ReportSample): SafeHtml {
  const description = `${sample.label}, confidence ${formatPercent(sample.confidence)}, teacher ${sample.teacherVersion}, source ${sample.sourceId}`;
  const image = BASE64.test(sample.pngBase64)
    ? html`<img src="data:image/png;base64,${sample.pngBase64}" width="84" height="84" alt="${description}" />`
    : html`<div class="no-image">no image</div>`;
  return html`<figure class="sample" title="${description}">
    ${image}
    <figcaption>
      <span class="sample-label">${sample.label}</span
      ><span class="sample-meta">${formatPercent(sample.confidence)} · ${sample.teacherVersion}</span>
    </figcaption>
  </figure>`;
}

// Promotions.

function promotionsSection(report: Report, svgs: ChartSvgs): SafeHtml {
  const lede = 'Each teacher the registry pointed at, oldest first, with the eval accuracy recorded with its pointer.';
  if (report.promotions.length === 0) {
    return section(
      'promotions',
      'Promotions',
      lede,
      empty('No promotions recorded: the registry has no teacher history.'),
    );
  }
  return section(
    'promotions',
    'Promotions',
    lede,
    html`${
        svgs.promotions === undefined
          ? empty('No promotion carries an eval accuracy, so there is nothing to chart.')
          : chartFigure('promotions', svgs)
      }
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>Version</th>
              <th>Parent</th>
              <th>Promoted at</th>
              <th>By</th>
              <th class="num">Eval accuracy</th>
              <th>Reason</th>
            </tr>
          </thead>
          <tbody>
            ${report.promotions.map(
              (promotion) =>
                html`<tr>
                  <td>${version(promotion.version)}</td>
                  <td>${version(promotion.parentVersion)}</td>
                  <td class="nowrap">${formatTime(promotion.promotedAt)}</td>
                  <td>${promotion.promotedBy}</td>
                  <td class="num">${formatPercent(promotion.evalAccuracy)}</td>
                  <td class="reason">${promotion.reason}</td>
                </tr>`,
            )}
          </tbody>
        </table>
      </div>`,
  );
}

const STYLESHEET = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f8fafc; color: ${TEXT_COLOR}; font: 15px/1.5 ${FONT_FAMILY}; }
main { max-width: 1040px; margin: 0 auto; padding: 32px 24px 48px; }
h1 { font-size: 28px; line-height: 1.2; margin: 4px 0 6px; letter-spacing: -0.01em; }
h2 { font-size: 19px; margin: 0 0 4px; }
h3 { font-size: 15px; margin: 20px 0 8px; }
.eyebrow { margin: 0; color: ${MUTED_TEXT_COLOR}; font-size: 13px; font-weight: 600; text-transform: uppercase; letter-spacing: 0.06em; }
.meta, .lede, .muted, figcaption, footer { color: ${MUTED_TEXT_COLOR}; }
.meta { margin: 0; }
.lede { margin: 0 0 12px; font-size: 14px; max-width: 820px; }
.small { font-size: 12px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 12px; margin: 20px 0 12px; }
.card { background: white; border: 1px solid ${RULE_COLOR}; border-radius: 10px; padding: 12px 16px; }
.card-label { font-size: 12px; color: ${MUTED_TEXT_COLOR}; font-weight: 600; text-transform: uppercase; letter-spacing: 0.04em; }
.card-value { font-size: 24px; font-weight: 650; margin: 2px 0; }
.card-note { font-size: 13px; color: ${MUTED_TEXT_COLOR}; }
.toc { display: flex; flex-wrap: wrap; gap: 6px 18px; font-size: 14px; margin: 8px 0 0; }
.toc a { color: ${MODEL_COLORS.Teacher}; text-decoration: none; }
.toc a:hover { text-decoration: underline; }
section { background: white; border: 1px solid ${RULE_COLOR}; border-radius: 10px; padding: 20px 24px; margin-top: 20px; }
figure { margin: 0; }
figure.chart { margin: 12px 0 16px; overflow-x: auto; }
figure.chart svg { display: block; max-width: 100%; height: auto; }
figure.chart figcaption { font-size: 13px; margin-top: 4px; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; font-variant-numeric: tabular-nums; }
th { text-align: left; font-weight: 600; color: ${MUTED_TEXT_COLOR}; border-bottom: 1px solid #cbd5e1; padding: 6px 8px; vertical-align: bottom; }
td { padding: 6px 7px; border-bottom: 1px solid #f1f5f9; vertical-align: top; }
.num { text-align: right; }
.nowrap { white-space: nowrap; }
.reason { min-width: 160px; overflow-wrap: anywhere; }
.settings { display: grid; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); gap: 10px 24px; margin: 8px 0 0; }
.setting { border-left: 3px solid ${RULE_COLOR}; padding-left: 10px; min-width: 0; }
.setting dt { font-size: 12px; color: ${MUTED_TEXT_COLOR}; }
.setting dd { margin: 0; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; overflow-wrap: anywhere; }
.version, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.9em; background: #f1f5f9; border-radius: 4px; padding: 0 4px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: baseline; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; }
.card .badge { font-size: 15px; padding: 2px 12px; }
.badge-promoted { background: #dcfce7; color: #166534; }
.badge-rejected { background: #fef3c7; color: #92400e; }
.badge-failed { background: #fee2e2; color: #991b1b; }
.empty { margin: 8px 0; padding: 16px; border: 1px dashed #cbd5e1; border-radius: 8px; background: #f8fafc; color: ${MUTED_TEXT_COLOR}; font-size: 14px; }
.sample-groups { display: flex; flex-wrap: wrap; gap: 12px 28px; }
.sample-group { max-width: 100%; }
.sample-group h3 { margin: 8px 0 6px; font-size: 14px; }
.sample-grid { display: flex; flex-wrap: wrap; gap: 8px; }
.sample { width: 92px; text-align: center; font-size: 12px; }
.sample img, .no-image { display: block; width: 84px; height: 84px; margin: 0 auto 4px; border-radius: 4px; background: #000; image-rendering: pixelated; }
.no-image { color: #94a3b8; line-height: 84px; font-size: 11px; }
.sample figcaption { display: flex; flex-direction: column; line-height: 1.3; }
.sample-label { color: ${TEXT_COLOR}; font-weight: 600; overflow-wrap: anywhere; }
.sample-meta { color: ${MUTED_TEXT_COLOR}; }
footer { font-size: 12px; margin-top: 24px; text-align: center; }
`;
