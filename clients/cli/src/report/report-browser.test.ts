import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import puppeteer, { type Browser } from 'puppeteer-core';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';

import { CHART_NAMES } from './render-html.js';
import { sampleReport } from './sample-report.js';
import { writeReport } from './write-report.js';

// Opens the written report in headless Chromium, as someone would: every chart drawn, every
// sample image decoded, and nothing logged, thrown or fetched from outside the page.

const executablePath = process.env.NS_CHROMIUM ?? '/usr/bin/chromium';

async function launchChromium(): Promise<Browser> {
  if (!existsSync(executablePath)) {
    throw new Error(
      `Chromium not found at ${executablePath}: install it with \`apt-get install chromium\` ` +
        '(`npm test` runs scripts/bootstrap.sh, which installs it), or set NS_CHROMIUM to a Chromium binary',
    );
  }
  return puppeteer.launch({ executablePath, headless: true, args: ['--no-sandbox'], timeout: 20_000 });
}

describe('the written report in headless Chromium', () => {
  let browser: Browser | undefined;

  afterAll(async () => {
    await browser?.close();
  });

  it('renders every chart and sample with no errors and no outside requests', async () => {
    // Launched in the test, not a hook: a missing browser fails this test by name instead of skipping it.
    browser = await launchChromium();
    const dir = await mkdtemp(join(tmpdir(), 'nsctl-report-'));
    const report = sampleReport();
    const { htmlPath } = await writeReport(dir, report);

    const page = await browser.newPage();
    const problems: string[] = [];
    const requested: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warn')
        problems.push(`console ${message.type()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${String(error)}`));
    page.on('requestfailed', (request) =>
      problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`),
    );
    page.on('request', (request) => requested.push(request.url()));
    await page.setViewport({ width: 1200, height: 900 });
    const response = await page.goto(pathToFileURL(htmlPath).href, { waitUntil: 'load', timeout: 15_000 });
    expect(response?.ok()).toBe(true);

    const charts = await page.$$eval('figure.chart', (figures) =>
      figures.map((figure) => {
        const svg = figure.querySelector('svg');
        const box = svg?.getBoundingClientRect();
        return {
          name: figure.getAttribute('data-chart'),
          width: box?.width ?? 0,
          height: box?.height ?? 0,
          marks: figure.querySelectorAll('svg path, svg rect').length,
          texts: figure.querySelectorAll('svg text').length,
        };
      }),
    );
    // The sample report fills every chart the page has.
    expect(charts.map((chart) => chart.name)).toEqual([...CHART_NAMES]);
    for (const chart of charts) {
      expect(chart.width, `${chart.name} width`).toBeGreaterThan(100);
      expect(chart.height, `${chart.name} height`).toBeGreaterThan(100);
      expect(chart.marks, `${chart.name} marks`).toBeGreaterThan(5);
      expect(chart.texts, `${chart.name} labels`).toBeGreaterThan(3);
    }
    expect(await page.$$eval('svg', (svgs) => svgs.length)).toBeGreaterThanOrEqual(CHART_NAMES.length);
    // 10 classes × 10 predicted classes: every cell of the confusion matrix is a rect.
    expect(
      await page.$$eval('figure[data-chart="confusion"] svg .mark-rect.role-mark path', (cells) => cells.length),
    ).toBe(report.classNames.length ** 2);

    // Each image decoded whole: its mean gray level in the browser matches the PNG's own pixels
    // (a truncated PNG still reports its size from the header, so size alone proves little).
    const images = await page.$$eval('.sample img', (elements) =>
      elements.map((image) => {
        const canvas = image.ownerDocument.createElement('canvas');
        canvas.width = image.naturalWidth;
        canvas.height = image.naturalHeight;
        const context = canvas.getContext('2d');
        context?.drawImage(image, 0, 0);
        const rgba = context?.getImageData(0, 0, canvas.width, canvas.height).data ?? [];
        let graySum = 0;
        for (let offset = 0; offset < rgba.length; offset += 4) graySum += rgba[offset] ?? 0;
        return {
          source: image.getAttribute('src') ?? '',
          complete: image.complete,
          width: image.naturalWidth,
          height: image.naturalHeight,
          meanGray: graySum / Math.max(1, canvas.width * canvas.height),
        };
      }),
    );
    expect(images).toHaveLength(report.samples.length);
    for (const image of images) {
      expect([image.complete, image.width, image.height]).toEqual([true, 28, 28]);
      const png = Buffer.from(image.source.replace('data:image/png;base64,', ''), 'base64');
      const pixels = await sharp(png).extractChannel(0).raw().toBuffer();
      const meanGray = pixels.reduce((sum, gray) => sum + gray, 0) / pixels.length;
      expect(image.meanGray).toBeGreaterThan(20);
      expect(Math.abs(image.meanGray - meanGray)).toBeLessThan(1);
    }

    // At a desktop width nothing needs a horizontal scrollbar: tables wrap, charts scale down.
    const overflowing = await page.$$eval('.table-wrap, figure.chart', (boxes) =>
      boxes
        .filter((box) => box.scrollWidth > box.clientWidth + 1)
        .map(
          (box) => `${box.className} ${box.getAttribute('data-chart') ?? ''}: ${box.scrollWidth} > ${box.clientWidth}`,
        ),
    );
    expect(overflowing).toEqual([]);

    expect(await page.$$eval('script', (scripts) => scripts.length)).toBe(0);
    expect(await page.$$eval('.empty', (notes) => notes.map((note) => note.textContent))).toEqual([]);
    expect(problems).toEqual([]);
    expect(requested.filter((url) => !url.startsWith('file:') && !url.startsWith('data:'))).toEqual([]);

    const screenshotPath = join(dir, 'report.png');
    await page.screenshot({ path: screenshotPath, fullPage: true });
    console.log(`report screenshot: ${screenshotPath}`);
    expect(existsSync(screenshotPath)).toBe(true);
    await page.close();
  }, 30_000);
});
