// Once per test run, before any test file: the fast-check seed every file uses, bundles as fresh
// as the sources, and a temporary folder for files tests leave behind, removed after the run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { buildBundles, staleBundles } from '../helpers/bundle.js';
import { chooseSeed, DEFAULT_SEED, runScale } from '../helpers/property.js';

declare module 'vitest' {
  export interface ProvidedContext {
    fcSeed: number;
    runTmp: string;
  }
}

export default function setup(project: TestProject): () => void {
  const runTmp = mkdtempSync(join(tmpdir(), 'hwaudit-test-run-'));
  project.provide('runTmp', runTmp);
  const seed = chooseSeed();
  project.provide('fcSeed', seed);
  if (seed !== DEFAULT_SEED || runScale() > 1)
    process.stdout.write(`fast-check: seed ${seed}, runs ×${runScale()} (replay with FC_SEED=${seed})\n`);
  const stale = staleBundles();
  if (stale.length > 0) {
    process.stdout.write(`dist/ is older than the sources (${stale.join(', ')}): rebuilding\n`);
    buildBundles();
  }
  return () => rmSync(runTmp, { recursive: true, force: true });
}
