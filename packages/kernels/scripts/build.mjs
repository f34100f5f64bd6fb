// Builds the native kernels addon with node-gyp against Debian's OpenBLAS and GCC's OpenMP.
// Runs on `npm install` (and from scripts/bootstrap.sh). A failed build is not an install
// failure: it writes the reason to build/native-status.json, which the loader reports, and
// everything keeps working on plain wasm.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const verbose = process.argv.includes('--verbose');
const statusPath = join(packageDir, 'build', 'native-status.json');

function finish(ok, reason) {
  mkdirSync(dirname(statusPath), { recursive: true });
  writeFileSync(statusPath, `${JSON.stringify({ ok, reason, builtAt: new Date().toISOString() })}\n`);
  console.error(`@noisystudent/kernels: ${ok ? 'native kernels built' : `native kernels not built: ${reason}`}`);
  if (!ok) console.error('@noisystudent/kernels: training and inference fall back to plain wasm');
  process.exit(0);
}

if (process.env.NS_NATIVE_KERNELS === '0') finish(false, 'disabled by NS_NATIVE_KERNELS=0');
if (process.platform !== 'linux') finish(false, `unsupported platform ${process.platform} (Linux only)`);

const pkgConfig = spawnSync('pkg-config', ['--exists', 'openblas'], { stdio: 'ignore' });
if (pkgConfig.error || pkgConfig.status !== 0) {
  finish(
    false,
    'OpenBLAS not found (pkg-config openblas); install Debian packages build-essential libopenblas-dev pkg-config',
  );
}

const require = createRequire(import.meta.url);
let nodeGyp;
try {
  nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  finish(false, 'node-gyp is not installed (npm ci installs it)');
}

// Build against the headers of the running Node when they are installed beside it (Debian and
// NodeSource packages put them in <prefix>/include/node); otherwise node-gyp fetches them.
const args = [nodeGyp, 'rebuild'];
const prefix = dirname(dirname(process.execPath));
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);

const build = spawnSync(process.execPath, args, {
  cwd: packageDir,
  encoding: 'utf8',
  stdio: verbose ? 'inherit' : 'pipe',
  env: { ...process.env, JOBS: process.env.JOBS ?? '2' },
});
if (build.error) finish(false, `node-gyp could not start: ${build.error.message}`);
if (build.status !== 0) {
  if (!verbose) process.stderr.write(`${build.stdout ?? ''}${build.stderr ?? ''}`.split('\n').slice(-30).join('\n'));
  finish(
    false,
    `node-gyp rebuild failed with status ${build.status} (run npm run build:native -w @noisystudent/kernels to see why)`,
  );
}
finish(true, 'built');
