import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * Starts the worker module `name` that sits next to the caller (`callerUrl`, its
 * `import.meta.url`): the compiled `<name>.js` when the caller is compiled, or `<name>.ts` through
 * tsx when it runs from the sources (tests). Node 20 ignores `--import` hooks for a worker's entry
 * module, so a small eval'd entry registers tsx first, then imports the worker.
 */
export function startModuleWorker(callerUrl: string, name: string, workerData: unknown): Worker {
  if (!callerUrl.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, callerUrl), { workerData });
  // tsx's ESM API entry (its package.json "exports"); require.resolve would pick the CJS one.
  const tsxDirectory = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const tsx = pathToFileURL(join(tsxDirectory, 'dist', 'esm', 'api', 'index.mjs')).href;
  const entry = new URL(`./${name}.ts`, callerUrl).href;
  const code = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(code, { eval: true, workerData, execArgv: ['--conditions', 'source'] });
}
