import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Workspace packages resolve to their TypeScript sources in tests (see each package's "exports").
    conditions: ['source'],
  },
  test: {
    include: [
      'proto/src/**/*.test.ts',
      'packages/*/src/**/*.test.ts',
      'services/*/src/**/*.test.ts',
      'clients/*/src/**/*.test.ts',
      'test/**/*.test.ts',
    ],
    // tfjs keeps one global engine per process: every test file gets its own.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
