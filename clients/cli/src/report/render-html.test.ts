import { afterEach, describe, expect, it, vi } from 'vitest';

import { CHART_NAMES, renderReportHtml } from './render-html.js';
import type { Report } from './report-data.js';
import { sampleReport } from './sample-report.js';

/** The markup of `<section id="…">` up to its closing tag (sections do not nest). */
function sectionOf(page: string, id: string): string {
  const start = page.indexOf(`<section id="${id}">`);
  expect(start, `section #${id}`).toBeGreaterThanOrEqual(0);
  return page.slice(start, page.indexOf('</section>', start));
}

/** The markup of the chart figure named `name`, or undefined when the page has none. */
function chartOf(page: string, name: string): string | undefined {
  const start = page.indexOf(`<figure class="chart" data-chart="${name}">`);
  return start < 0 ? undefined : page.slice(start, page.indexOf('</figure>', start));
}

function emptyReport(): Report {
  return {
    generatedAt: '2025-05-14T10:42:07.000Z',
    title: 'Nothing yet',
    classNames: [],
    teacherVersion: '',
    settings: {},
    rounds: [],
    promotions: [],
    labeling: [],
    samples: [],
  };
}

const CHART_SECTIONS: Record<(typeof CHART_NAMES)[number], string> = {
  accuracy: 'accuracy',
  'per-class': 'per-class',
  confusion: 'confusion',
  'labeling-outcomes': 'labeling',
  'copies-per-class': 'labeling',
  'round-examples-per-class': 'labeling',
  promotions: 'promotions',
};

describe('renderReportHtml', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('draws every chart of the sample report as inline SVG with marks, in its section', async () => {
    const warnings = vi.spyOn(console, 'warn');
    const page = await renderReportHtml(sampleReport());
    for (const name of CHART_NAMES) {
      const chart = chartOf(page, name);
      expect(chart, `chart ${name}`).toBeDefined();
      expect(chart).toMatch(/<svg [^>]*viewBox="0 0 \d+(\.\d+)? \d+(\.\d+)?"/);
      expect(chart?.match(/<path /g)?.length ?? 0, `marks of ${name}`).toBeGreaterThan(5);
      expect(sectionOf(page, CHART_SECTIONS[name])).toContain(`data-chart="${name}"`);
    }
    expect(page.match(/<figure class="chart"/g)).toHaveLength(CHART_NAMES.length);
    // Vega and Vega-Lite warn on console about specs they had to second-guess.
    expect(warnings).not.toHaveBeenCalled();
  });

  it('is one self-contained page: no scripts, nothing loaded from elsewhere', async () => {
    const page = await renderReportHtml(sampleReport());
    expect(page.startsWith('<!doctype html>')).toBe(true);
    expect(page).not.toMatch(/<script/i);
    expect(page).not.toMatch(/<link /i);
    // Every src is a data: URI; the only http(s) text is SVG's XML namespace.
    const sources = [...page.matchAll(/\ssrc="([^"]*)"/g)].map((match) => match[1]);
    expect(sources).toHaveLength(20);
    for (const source of sources) expect(source).toMatch(/^data:image\/png;base64,[A-Za-z0-9+/]+=*$/);
    const urls = new Set([...page.matchAll(/https?:\/\/[^\s"')]+/g)].map((match) => match[0]));
    expect([...urls].sort()).toEqual(['http://www.w3.org/1999/xlink', 'http://www.w3.org/2000/svg']);
  });

  it('shows the header, the rounds table and the promotions table from the report', async () => {
    const page = await renderReportHtml(sampleReport());
    expect(page).toContain('<title>Noisy Student on Fashion-MNIST</title>');
    expect(page).toContain('Generated 2025-05-14 10:42:07 UTC');
    expect(page).toMatch(/<dt>confidenceThreshold<\/dt>\s*<dd>0\.7<\/dd>/);
    const accuracy = sectionOf(page, 'accuracy');
    expect(accuracy.match(/<tr>\s*<td class="num">\d+<\/td>/g)).toHaveLength(2);
    expect(accuracy).toContain('<span class="badge badge-promoted">promoted</span>');
    expect(accuracy).toContain('<span class="badge badge-rejected">rejected</span>');
    expect(accuracy).toContain('42 min 28 s');
    const promotions = sectionOf(page, 'promotions');
    expect(promotions).toContain('2025-05-14 08:47:41 UTC');
    expect(promotions).toContain('89.6%');
    // Samples are grouped by class in class order, each image with its label and confidence.
    const samples = sectionOf(page, 'samples');
    expect(samples.match(/<div class="sample-group">/g)).toHaveLength(10);
    const headings = [...samples.matchAll(/<h3>\s*([^<]*?)\s*<span/g)].map((match) => match[1]);
    expect(headings).toEqual(sampleReport().classNames);
    expect(samples.match(/<img /g)).toHaveLength(20);
  });

  it('escapes text from the report everywhere, in the page and in the charts', async () => {
    const attack = '<script>alert(1)</script>';
    const report = sampleReport();
    report.title = `Report ${attack}`;
    report.classNames[3] = `Dress ${attack}`;
    report.settings[`note ${attack}`] = `"quoted" ${attack}`;
    const [firstRound] = report.rounds;
    if (!firstRound) throw new Error('sample report has no rounds');
    firstRound.reason = `beat the teacher ${attack}`;
    firstRound.studentVersion = `v2" onmouseover="alert(1)`;
    const [firstPromotion] = report.promotions;
    if (!firstPromotion) throw new Error('sample report has no promotions');
    firstPromotion.reason = attack;
    const [firstSample] = report.samples;
    if (!firstSample) throw new Error('sample report has no samples');
    firstSample.label = attack;
    firstSample.sourceId = `x" onerror="alert(1)`;
    firstSample.pngBase64 = `AAAA" onerror="alert(1)`;

    const page = await renderReportHtml(report);
    expect(page).not.toContain('<script');
    expect(page).not.toMatch(/\sonmouseover="/);
    expect(page).not.toMatch(/\sonerror="/);
    expect(page).toContain('beat the teacher &lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page).toContain('<title>Report &lt;script&gt;alert(1)&lt;/script&gt;</title>');
    expect(page).toContain('&quot;quoted&quot; &lt;script&gt;');
    // The class name reaches the SVG axis labels escaped by Vega's renderer.
    expect(chartOf(page, 'confusion')).toContain('Dress &lt;script&gt;alert(1)&lt;/script&gt;');
    // A sample whose image is not base64 shows a placeholder instead of a broken data: URI.
    expect(sectionOf(page, 'samples').match(/<div class="no-image">/g)).toHaveLength(1);
  });

  it('labels the promotion time axis in UTC whatever the local time zone', async () => {
    const timeZone = process.env.TZ;
    process.env.TZ = 'Asia/Kolkata';
    try {
      const chart = chartOf(await renderReportHtml(sampleReport()), 'promotions') ?? '';
      const axisLabels = chart.slice(
        chart.indexOf('role-axis-label'),
        chart.indexOf('</g>', chart.indexOf('role-axis-label')),
      );
      // v1 at 07:58:30Z and v2 at 08:47:41Z: ticks every 5 minutes from 08:00 to 08:45 UTC.
      expect([...axisLabels.matchAll(/>(\d\d:\d\d)<\/text>/g)].map((match) => match[1])).toEqual([
        '08:00',
        '08:05',
        '08:10',
        '08:15',
        '08:20',
        '08:25',
        '08:30',
        '08:35',
        '08:40',
        '08:45',
      ]);
    } finally {
      if (timeZone === undefined) delete process.env.TZ;
      else process.env.TZ = timeZone;
    }
  });

  it('renders an empty report, saying in each section what is missing', async () => {
    const page = await renderReportHtml(emptyReport());
    expect(page).not.toContain('<svg');
    expect(page).not.toContain('<figure class="chart"');
    expect(sectionOf(page, 'settings')).toContain('No settings were recorded');
    expect(sectionOf(page, 'accuracy')).toContain('No rounds yet');
    expect(sectionOf(page, 'per-class')).toContain('No per-class accuracy');
    expect(sectionOf(page, 'confusion')).toContain('No served-model measurement');
    expect(sectionOf(page, 'labeling')).toContain('No labeling yet');
    expect(sectionOf(page, 'samples')).toContain('No pseudo-labeled samples');
    expect(sectionOf(page, 'promotions')).toContain('No promotions recorded');
    expect(page.match(/<p class="empty">/g)).toHaveLength(7);
  });

  it('draws what a partial report has and says what it lacks', async () => {
    // One failed round (no student), no baselines, no served model, a promotion without eval accuracy.
    const full = sampleReport();
    const [firstRound] = full.rounds;
    if (!firstRound) throw new Error('sample report has no rounds');
    const report: Report = {
      ...emptyReport(),
      classNames: full.classNames,
      teacherVersion: 'v1',
      rounds: [
        {
          ...firstRound,
          decision: 'failed',
          reason: 'trainer stopped: out of memory',
          student: undefined,
          baselines: {},
          examplesPerClass: [],
        },
      ],
      promotions: [
        {
          version: 'v1',
          parentVersion: '',
          promotedAt: '2025-05-14T07:58:30.000Z',
          promotedBy: 'nsctl',
          reason: 'first',
        },
      ],
    };
    const page = await renderReportHtml(report);
    expect(chartOf(page, 'accuracy')).toBeDefined();
    expect(chartOf(page, 'per-class')).toBeDefined();
    expect(sectionOf(page, 'accuracy')).toContain('<span class="badge badge-failed">failed</span>');
    expect(sectionOf(page, 'confusion')).toContain('No served-model measurement');
    expect(sectionOf(page, 'labeling')).toContain('No labeling yet');
    expect(chartOf(page, 'promotions')).toBeUndefined();
    expect(sectionOf(page, 'promotions')).toContain('No promotion carries an eval accuracy');
    expect(sectionOf(page, 'promotions')).toContain('<td>nsctl</td>');
  });
});
