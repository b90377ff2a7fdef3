import { defineConfig } from 'vitest/config';
import { runScale } from './test/helpers/property.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'shared/rules/**/*.test.ts'],
    // Property tests run FC_RUNS times their usual count (npm run test:fuzz): so much longer.
    testTimeout: 30_000 * runScale(),
    hookTimeout: 60_000,
    globalSetup: ['test/setup/run.ts', 'test/setup/global.ts'],
    setupFiles: ['test/setup/fast-check.ts'],
    // Ends the run with what was skipped (a missing server or corpus) and how to run it.
    reporters: ['default', './test/setup/skip-reporter.ts'],
    // Golden files are written only when asked (`npm run test:update`); a missing one fails.
    update: 'none',
  },
});
