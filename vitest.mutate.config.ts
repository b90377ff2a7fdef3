// The tests mutation testing runs (npm run test:mutate, stryker.config.mjs): the in-process tests of
// the mutated modules. Tests of the built bundles, of child processes and of the MySQL server do not
// see the mutated sources, so they are left out.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'test/rules/**/*.test.ts',
      'test/correlate/**/*.test.ts',
      'test/detect/**/*.test.ts',
      'test/scenarios/**/*.test.ts',
      'test/normalize/mysql-redact.test.ts',
      'test/normalize/mysql-audit.test.ts',
      'test/emit/*.test.ts',
      // In-process runs of the pipeline: stores (SQLite, whose commit-thread tests run the bundled
      // worker stryker.config.mjs builds; MySQL when TEST_MYSQL_URL is set), routes, sync baselines.
      'test/state/**/*.test.ts',
      'test/route/**/*.test.ts',
      'test/sync/baseline.test.ts',
    ],
    // Schema validation of every OCSF record: slow, and it pins the OCSF mapping, not these modules.
    exclude: ['test/emit/ocsf.test.ts'],
    testTimeout: 30_000,
    // The seed and the run's temporary folder (TLS material of the sync baselines' test server);
    // not test/setup/global.ts: stryker.config.mjs builds the bundles.
    globalSetup: ['test/setup/run.ts'],
    setupFiles: ['test/setup/fast-check.ts'],
  },
});
