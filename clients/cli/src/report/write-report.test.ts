import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { sampleReport } from './sample-report.js';
import { writeReport } from './write-report.js';

describe('writeReport', () => {
  it('creates the folder and writes report.json (the report, pretty) and index.html', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'nsctl-report-')), 'nested', 'report');
    const report = sampleReport();
    const { jsonPath, htmlPath } = await writeReport(dir, report);
    expect(jsonPath).toBe(join(dir, 'report.json'));
    expect(htmlPath).toBe(join(dir, 'index.html'));
    const json = await readFile(jsonPath, 'utf8');
    expect(JSON.parse(json)).toEqual(report);
    expect(json).toContain('\n  "generatedAt": "2025-05-14T10:42:07.000Z",\n');
    const page = await readFile(htmlPath, 'utf8');
    expect(page.startsWith('<!doctype html>')).toBe(true);
    expect(page).toContain('<title>Noisy Student on Fashion-MNIST</title>');
    expect((await stat(htmlPath)).size).toBeGreaterThan(50_000);
  });

  it('replaces the files of an earlier report in the same folder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nsctl-report-'));
    await writeReport(dir, sampleReport());
    const later = { ...sampleReport(), title: 'Second run', rounds: [] };
    const { jsonPath, htmlPath } = await writeReport(dir, later);
    expect(JSON.parse(await readFile(jsonPath, 'utf8'))).toMatchObject({ title: 'Second run', rounds: [] });
    const page = await readFile(htmlPath, 'utf8');
    expect(page).toContain('<title>Second run</title>');
    expect(page).toContain('No rounds yet');
  });
});
