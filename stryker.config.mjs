// Mutation testing (npm run test:mutate; not part of npm test): where a silent change costs the most.
// One module at a time: npm run test:mutate -- --mutate shared/normalize/redact.ts
// Each mutant runs only the tests that cover it (perTest), from vitest.mutate.config.ts.

// The SQLite store's commit-thread tests run the bundled worker, dist/commit-worker.cjs (built from
// the unmutated sources: the thread's code is not mutated). Built here, before the sandbox is copied,
// so that it is there and as new as the sources.
await import('./build.mjs');

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts', related: true },
  coverageAnalysis: 'perTest',
  mutate: [
    'shared/rules/*.ts',
    'shared/correlate/attribute.ts',
    'shared/normalize/redact.ts',
    'shared/pipeline.ts',
    'shared/emit/formats/cef.ts',
    'shared/emit/formats/json.ts',
  ],
  plugins: ['@stryker-mutator/vitest-runner', './scripts/stryker-rule-cases.mjs'],
  ignorers: ['rule-cases'],
  concurrency: 2,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  // `npm run test:mutate -- --incremental` reuses the results of unchanged code and tests.
  incrementalFile: 'reports/mutation/incremental.json',
  thresholds: { high: 90, low: 85, break: 85 },
  tempDirName: '.stryker-tmp',
  // dist/ is left out of the sandbox but for the commit worker the store tests load from there.
  ignorePatterns: [
    '/dist/*',
    '!/dist/commit-worker.cjs',
    'demo-out',
    'coverage',
    'reports',
    '.bench',
    '.stryker-tmp',
  ],
};
