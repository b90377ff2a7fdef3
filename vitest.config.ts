import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'shared/rules/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    globalSetup: ['test/setup/global.ts'],
    setupFiles: ['test/setup/fast-check.ts'],
    // Ends the run with what was skipped (a missing server or corpus) and how to run it.
    reporters: ['default', './test/setup/skip-reporter.ts'],
    // Golden files are written only when asked (`npm run test:update`); a missing one fails.
    update: 'none',
  },
});
