// Once per test run, before any test file: the fast-check seed every file uses, and bundles as
// fresh as the sources.
import type { TestProject } from 'vitest/node';
import { buildBundles, staleBundles } from '../helpers/bundle.js';
import { chooseSeed, DEFAULT_SEED, runScale } from '../helpers/property.js';

declare module 'vitest' {
  export interface ProvidedContext {
    fcSeed: number;
  }
}

export default function setup(project: TestProject): void {
  const seed = chooseSeed();
  project.provide('fcSeed', seed);
  if (seed !== DEFAULT_SEED || runScale() > 1)
    process.stdout.write(`fast-check: seed ${seed}, runs ×${runScale()} (replay with FC_SEED=${seed})\n`);
  const stale = staleBundles();
  if (stale.length > 0) {
    process.stdout.write(`dist/ is older than the sources (${stale.join(', ')}): rebuilding\n`);
    buildBundles();
  }
}
