import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Workspace packages resolve to their TypeScript sources in tests (see each package's "exports"),
  // so tests never run a stale dist/. Tests run server-side, hence ssr.resolve.
  ssr: {
    resolve: {
      conditions: ['source', ...defaultServerConditions],
      externalConditions: ['source'],
    },
  },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'all',
          include: [
            'proto/src/**/*.test.ts',
            'packages/*/src/**/*.test.ts',
            'services/*/src/**/*.test.ts',
            'clients/*/src/**/*.test.ts',
            'test/**/*.test.ts',
          ],
        },
      },
      {
        // The backend and model tests again with the native kernels off, so the plain-wasm
        // path (our composite training kernels) stays tested where the addon builds too.
        extends: true,
        test: {
          name: 'plain-wasm',
          include: ['packages/ml/src/backend/**/*.test.ts', 'packages/ml/src/models/**/*.test.ts'],
          env: { NS_NATIVE_KERNELS: '0', OMP_WAIT_POLICY: 'PASSIVE' },
        },
      },
      {
        // The native kernels again with every convolution on im2col + OpenBLAS (no oneDNN, no
        // Winograd), so that path stays tested where the others run.
        extends: true,
        test: {
          name: 'native-blas',
          include: ['test/native-kernels.test.ts'],
          env: { NS_CONV: 'blas', NS_WINOGRAD: '0', OMP_WAIT_POLICY: 'PASSIVE' },
        },
      },
    ],
    // tfjs keeps one global engine per process: every test file gets its own.
    pool: 'forks',
    // Test files run side by side, each with the native kernels' OpenMP threads: spinning
    // while they wait would make every file crawl on a 2-core machine (and block the worker's
    // event loop long enough for vitest's RPC to time out), so they sleep instead.
    env: { OMP_WAIT_POLICY: 'PASSIVE' },
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
