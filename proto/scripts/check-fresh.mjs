// Fails when the committed TypeScript in src/gen is not exactly what buf.gen.yaml makes from the .proto files now,
// or when buf lint or buf format object to the .proto files. Generates into a temporary folder: src/gen is only read.
// Works offline: buf and ts-proto run from node_modules, and the well-known types come from buf itself.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = dirname(dirname(fileURLToPath(import.meta.url)));
const generatedPath = 'src/gen'; // buf.gen.yaml's `out`, relative to this package
const regenerateHint = 'Run `npm run proto:gen` at the repository root and commit proto/src/gen.';

// The buf launcher from @bufbuild/buf, so this works whether or not npm put node_modules/.bin on PATH.
const bufLauncher = createRequire(import.meta.url).resolve('@bufbuild/buf/bin/buf');

function runBuf(args) {
  const result = spawnSync(process.execPath, [bufLauncher, ...args], { cwd: packageDir, encoding: 'utf8' });
  if (result.error) throw result.error;
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}`.trim() };
}

/** Paths of every file under `root`, relative to it, with '/' separators, sorted. */
function listFiles(root, prefix = '') {
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .flatMap((entry) => {
      const path = `${prefix}${entry.name}`;
      if (entry.isDirectory()) return listFiles(join(root, entry.name), `${path}/`);
      return entry.isFile() ? [path] : [];
    })
    .sort();
}

/** Every file that differs between the committed tree and a fresh one, one line each, sorted by path. */
function compareTrees(committedRoot, freshRoot) {
  const committed = new Set(listFiles(committedRoot));
  const fresh = new Set(listFiles(freshRoot));
  const problems = [];
  for (const file of new Set([...committed, ...fresh])) {
    const shown = `proto/${generatedPath}/${file}`;
    if (!committed.has(file)) {
      problems.push({ file, line: `missing: ${shown} (generated, not committed)` });
    } else if (!fresh.has(file)) {
      problems.push({ file, line: `extra:   ${shown} (committed, no longer generated)` });
    } else if (!readFileSync(join(committedRoot, file)).equals(readFileSync(join(freshRoot, file)))) {
      problems.push({ file, line: `stale:   ${shown} (differs from what the .proto files generate)` });
    }
  }
  return problems.sort((a, b) => a.file.localeCompare(b.file)).map((problem) => problem.line);
}

function main() {
  const failures = [];

  const lint = runBuf(['lint']);
  if (!lint.ok) failures.push(`buf lint failed (fix the .proto files):\n${lint.output}`);

  const format = runBuf(['format', '--diff', '--exit-code']);
  if (!format.ok) failures.push(`buf format found unformatted .proto files:\n${format.output}\n${regenerateHint}`);

  const freshBase = mkdtempSync(join(tmpdir(), 'noisystudent-proto-'));
  let fileCount = 0;
  try {
    const generate = runBuf(['generate', '--output', freshBase]);
    if (!generate.ok) {
      failures.push(`buf generate failed:\n${generate.output}`);
    } else {
      const freshRoot = join(freshBase, generatedPath);
      fileCount = listFiles(freshRoot).length;
      const problems = compareTrees(join(packageDir, generatedPath), freshRoot);
      if (problems.length > 0) failures.push(`generated code is not fresh:\n${problems.join('\n')}\n${regenerateHint}`);
    }
  } finally {
    rmSync(freshBase, { recursive: true, force: true });
  }

  if (failures.length > 0) {
    console.error(`proto: check failed\n\n${failures.join('\n\n')}`);
    return 1;
  }
  console.log(`proto: src/gen is fresh (${fileCount} files), buf lint and buf format pass`);
  return 0;
}

process.exitCode = main();
