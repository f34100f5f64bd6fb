import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { Report } from './report-data.js';
import { renderReportHtml } from './render-html.js';

/**
 * Writes the report into `dir` (created when missing): report.json, the whole content, and
 * index.html, the page rendered from it. Existing files of those names are replaced.
 */
export async function writeReport(dir: string, report: Report): Promise<{ jsonPath: string; htmlPath: string }> {
  // Rendered first, so a report that cannot render leaves no half-written folder behind.
  const page = await renderReportHtml(report);
  await mkdir(dir, { recursive: true });
  const jsonPath = join(dir, 'report.json');
  const htmlPath = join(dir, 'index.html');
  await writeFile(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(htmlPath, page);
  return { jsonPath, htmlPath };
}
