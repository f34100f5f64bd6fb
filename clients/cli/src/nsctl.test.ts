// nsctl as a user runs it: the built bin in its own process, against a stack it starts itself.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { loadFashionMnist } from '@noisystudent/ml/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { encodeGrayscalePng } from './report/grayscale-png.js';
import type { Report } from './report/report-data.js';

const NSCTL = fileURLToPath(new URL('../dist/main.js', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function nsctl(args: string[], timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [NSCTL, ...args],
      { timeout: timeoutMs, maxBuffer: 64 << 20 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Whether `pid` runs (a zombie left for a parent that does not reap it has exited). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The last line of stdout as JSON (--json prints one value; the demo's summary is its last line). */
function json<T>(run: Run): T {
  const lines = run.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1] ?? 'null') as T;
}

describe('nsctl without a stack', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nsctl-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('has --help for every command and exits 2 on bad usage', async () => {
    const help = await nsctl(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['up', 'down', 'status', 'predict', 'ingest', 'models', 'rounds', 'report', 'demo']) {
      expect(help.stdout).toContain(command);
    }
    const models = await nsctl(['models', '--help']);
    expect(models.stdout).toMatch(/rollback/);
    const bogus = await nsctl(['bogus']);
    expect(bogus.code).toBe(2);
    const badCount = await nsctl(['rounds', '--limit', 'many']);
    expect(badCount.code).toBe(2);
    expect(badCount.stderr).toContain('--limit');
  });

  it('says how to start the stack when nothing answers', async () => {
    const ports = ['--teacher', '127.0.0.1:1', '--labeler', '127.0.0.1:1', '--trainer', '127.0.0.1:1'];
    const status = await nsctl(['--data', dir, ...ports, 'status']);
    expect(status.code).toBe(3);
    expect(status.stdout).toContain('UNREACHABLE');
    expect(status.stderr).toContain('nsctl up');
    const rounds = await nsctl(['--data', dir, ...ports, 'rounds']);
    expect(rounds.code).toBe(3);
    expect(rounds.stderr).toMatch(/no trainer at 127\.0\.0\.1:1.*nsctl up/);
    const models = await nsctl(['--data', dir, '--nats-url', 'nats://127.0.0.1:1', 'models', 'ls']);
    expect(models.code).toBe(3);
    expect(models.stderr).toContain('no NATS at nats://127.0.0.1:1');
    const down = await nsctl(['--data', dir, 'down']);
    expect(down.code).toBe(4);
  });

  it('names the file or flag that is wrong', async () => {
    const missing = await nsctl(['--data', dir, 'predict', join(dir, 'missing.png')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('missing.png: no such file');
    const split = await nsctl(['--data', dir, 'ingest', '--dataset', 'fashion-mnist', '--split', 'validation']);
    expect(split.code).toBe(2);
    expect(split.stderr).toContain('--split: expected unlabeled, train or test');
    const notModel = join(dir, 'not-a-model.nsmodel');
    await writeFile(notModel, 'hello');
    const push = await nsctl(['--data', dir, 'models', 'push', notModel]);
    expect(push.code).toBe(2);
    expect(push.stderr).toContain('expected an encoded ModelArtifact');
  });

  it('reads and writes files only inside --allowed-roots, links resolved', async () => {
    const inside = join(dir, 'inside');
    const outside = join(dir, 'outside');
    await mkdir(join(inside, 'images'), { recursive: true });
    await mkdir(outside, { recursive: true });
    await writeFile(join(outside, 'secret.png'), encodeGrayscalePng(2, 2, new Uint8Array(4)));
    await writeFile(join(inside, 'images', 'fine.png'), encodeGrayscalePng(2, 2, new Uint8Array(4)));
    await symlink(join(outside, 'secret.png'), join(inside, 'images', 'linked.png'));
    const roots = ['--data', join(inside, 'stack'), '--allowed-roots', inside];
    const refused = [
      await nsctl([...roots, 'predict', join(inside, 'images')]),
      await nsctl([...roots, 'ingest', join(inside, 'images', 'linked.png')]),
      await nsctl([...roots, 'models', 'push', join(outside, 'secret.png')]),
      await nsctl([...roots, 'models', 'export', 'v1', join(outside, 'v1.nsmodel')]),
      await nsctl([...roots, 'report', join(outside, 'report')]),
      await nsctl(['--data', join(outside, 'stack'), '--allowed-roots', inside, 'up']),
    ];
    for (const run of refused) {
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toContain(`is outside the allowed roots (${await realpath(inside)})`);
      expect(run.stderr).toContain('--allowed-roots (NS_ALLOWED_ROOTS)');
    }
    expect(refused[0]?.stderr).toContain(`image: ${join(inside, 'images', 'linked.png')} (really`);
    expect(existsSync(join(outside, 'v1.nsmodel'))).toBe(false);
    expect(existsSync(join(outside, 'stack'))).toBe(false);
    const missingRoot = await nsctl(['--allowed-roots', join(dir, 'nope'), 'predict', join(inside, 'images')]);
    expect(missingRoot.code).toBe(2);
    expect(missingRoot.stderr).toContain(`--allowed-roots (NS_ALLOWED_ROOTS): ${join(dir, 'nope')}: no such folder`);
  });
});

describe('nsctl demo at a tiny size, then every command on the stack it kept', () => {
  let dir: string;
  let stackDir: string;
  let reportDir: string;
  const at = (...args: string[]): string[] => ['--data', stackDir, ...args];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nsctl-demo-'));
    stackDir = join(dir, 'stack');
    reportDir = join(dir, 'report');
  });
  afterAll(async () => {
    if (existsSync(join(stackDir, 'stack.json'))) await nsctl(at('down'));
    await rm(dir, { recursive: true, force: true });
  });

  it('runs the loop through the services and writes the report', async () => {
    const run = await nsctl(
      [
        ...at('--json', 'demo'),
        '--preset',
        'smoke',
        '--unlabeled',
        '300',
        '--rounds',
        '1',
        '--test-images',
        '200',
        '--report',
        reportDir,
        '--keep',
        // Smoke-sized students are not better than their teachers; promote anyway, to test promotion.
        '--trainer-arg=--min-improvement=-1',
      ],
      300_000,
    );
    expect(run.code, run.stderr).toBe(0);
    const summary = json<{ rounds: number; promoted: number; teacher: string; served_accuracy: number }>(run);
    expect(summary).toMatchObject({ rounds: 1, promoted: 1, teacher: 'v2' });

    const report = JSON.parse(await readFile(join(reportDir, 'report.json'), 'utf8')) as Report;
    expect(report.teacherVersion).toBe('v2');
    expect(report.classNames).toHaveLength(10);
    expect(report.rounds).toHaveLength(1);
    expect(report.rounds[0]).toMatchObject({ teacherVersion: 'v1', studentVersion: 'v2', decision: 'promoted' });
    expect(report.rounds[0]?.student?.test).toBeGreaterThan(0.2);
    expect(report.rounds[0]?.baselines.supervised).toBeGreaterThan(0.2);
    expect(report.promotions.map((p) => p.version)).toEqual(['v1', 'v2']);
    expect(report.labeling.map((l) => l.teacherVersion)).toContain('v1');
    expect(report.labeling.find((l) => l.teacherVersion === 'v1')?.labeled).toBe(300);
    // The served teacher, measured through Predict: every test image counted once.
    const served = report.served;
    expect(served?.version).toBe('v2');
    expect(served?.confusion.flat().reduce((a, b) => a + b, 0)).toBe(200);
    expect(served?.accuracy).toBeGreaterThan(0.2);
    expect(summary.served_accuracy).toBe(served?.accuracy);
    expect(report.samples.length).toBeGreaterThan(0);
    for (const sample of report.samples) {
      expect(Buffer.from(sample.pngBase64, 'base64').subarray(1, 4).toString()).toBe('PNG');
      expect(report.classNames[sample.labelIndex]).toBe(sample.label);
    }
    const html = await readFile(join(reportDir, 'index.html'), 'utf8');
    expect(html).toContain('<svg');
  });

  it('status, rounds and predict answer from the kept stack', async () => {
    const status = await nsctl(at('--json', 'status'));
    expect(status.code, status.stderr).toBe(0);
    const snapshot = json<{
      teacher: { health: string; detail: { version: string } };
      labeler: { health: string };
      trainer: { health: string };
    }>(status);
    expect(snapshot.teacher).toMatchObject({ health: 'SERVING', detail: { version: 'v2' } });
    expect(snapshot.labeler.health).toBe('SERVING');
    expect(snapshot.trainer.health).toBe('SERVING');
    const human = await nsctl(at('status'));
    expect(human.stdout).toMatch(/teacher\s+127\.0\.0\.1:\d+\s+SERVING\s+serving v2/);

    const rounds = await nsctl(at('--json', 'rounds'));
    expect(json<Array<{ round: number; decision: string }>>(rounds)).toMatchObject([
      { round: 1, decision: 'promoted' },
    ]);
    expect((await nsctl(at('rounds'))).stdout).toMatch(/v1 → v2/);

    const test = await loadFashionMnist('test');
    const file = join(dir, 'test-0.png');
    await writeFile(file, encodeGrayscalePng(28, 28, test.images.subarray(0, 784)));
    const predict = await nsctl(at('--json', 'predict', file, '--top-k', '2'));
    expect(predict.code, predict.stderr).toBe(0);
    const [answer] = json<Array<{ modelVersion: string; label: string; topK: unknown[] }>>(predict);
    expect(answer?.modelVersion).toBe('v2');
    expect(test.classNames).toContain(answer?.label);
    expect(answer?.topK).toHaveLength(2);
  });

  it('ingest resends by source id: what was stored comes back as duplicates', async () => {
    const again = await nsctl(
      at(
        '--json',
        'ingest',
        '--dataset',
        'fashion-mnist',
        '--split',
        'unlabeled',
        '--limit',
        '300',
        '--preset',
        'smoke',
      ),
    );
    expect(again.code, again.stderr).toBe(0);
    expect(json(again)).toMatchObject({ sent: 300, stored: 0, duplicates: 300, rejected: 0 });
  });

  it('models: ls, show, export, rollback, promote, push', async () => {
    const ls = json<{ teacher: string; versions: Array<{ version: string }> }>(
      await nsctl(at('--json', 'models', 'ls')),
    );
    expect(ls.teacher).toBe('v2');
    expect(ls.versions.map((v) => v.version)).toEqual(['v1', 'v2']);
    const show = await nsctl(at('models', 'show', 'v2'));
    expect(show.stdout).toMatch(/parent v1/);
    expect(show.stdout).toMatch(/eval\s+\d+\.\d+% top-1/);
    const file = join(dir, 'v2.nsmodel');
    const exported = await nsctl(at('models', 'export', 'v2', file));
    expect(exported.code, exported.stderr).toBe(0);
    expect(existsSync(file)).toBe(true);

    const rollback = await nsctl(at('--json', 'models', 'rollback', 'v1'));
    expect(rollback.code, rollback.stderr).toBe(0);
    expect(json<{ version: string }>(rollback).version).toBe('v1');
    // The teacher service swaps to the rolled-back version.
    const served = async (): Promise<string> =>
      json<{ teacher: { detail?: { version: string } } }>(await nsctl(at('--json', 'status'))).teacher.detail
        ?.version ?? '';
    const deadline = Date.now() + 30_000;
    while ((await served()) !== 'v1' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
    expect(await served()).toBe('v1');

    const promote = await nsctl(at('models', 'promote', 'v2', '--reason', 'back to the student'));
    expect(promote.stdout).toContain('back to the student');
    const missing = await nsctl(at('models', 'promote', 'v9'));
    expect(missing.code).toBe(4);
    // Pushing the bytes a version already holds is accepted (idempotent).
    const push = await nsctl(at('models', 'push', file));
    expect(push.code, push.stderr).toBe(0);
    const history = json<Array<{ version: string }>>(await nsctl(at('--json', 'models', 'history')));
    expect(history.map((p) => p.version)).toEqual(['v1', 'v2', 'v1', 'v2']);
  });

  it("guards the stack's NATS: no login is refused, a service's user cannot act as admin", async () => {
    const stack = JSON.parse(await readFile(join(stackDir, 'stack.json'), 'utf8')) as { nats: { url: string } };
    const secrets = join(stackDir, 'secrets');
    for (const user of ['admin', 'teacher', 'labeler', 'trainer']) {
      expect((await stat(join(secrets, `nats-${user}.password`))).mode & 0o777, user).toBe(0o600);
    }
    const refused = await nsctl(at('--nats-url', stack.nats.url, 'models', 'ls'));
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain('refused the login (none given): give --nats-user and --nats-password-file');
    // The labeler's user reads the registry but may not promote.
    const asLabeler = (...args: string[]): string[] =>
      at('--nats-user', 'labeler', '--nats-password-file', join(secrets, 'nats-labeler.password'), ...args);
    expect((await nsctl(asLabeler('models', 'ls'))).code).toBe(0);
    const promote = await nsctl(asLabeler('models', 'promote', 'v1'));
    expect(promote.code).not.toBe(0);
    expect(promote.stderr).toMatch(/permission/i);
  });

  it('down stops every process and keeps the data', async () => {
    const stack = JSON.parse(await readFile(join(stackDir, 'stack.json'), 'utf8')) as {
      nats: { pid: number };
      services: Record<string, { pid: number }>;
    };
    const down = await nsctl(at('down'));
    expect(down.code, down.stderr).toBe(0);
    for (const pid of [stack.nats.pid, ...Object.values(stack.services).map((s) => s.pid)]) {
      expect(alive(pid), `pid ${pid}`).toBe(false);
    }
    expect(existsSync(join(stackDir, 'nats'))).toBe(true);
    const status = await nsctl(at('status'));
    expect(status.code).toBe(3);
  });
});
