// Once per test run, before any test file, in every configuration that runs tests
// (vitest.config.ts, and vitest.mutate.config.ts for mutation testing): the fast-check seed every
// file uses, and a temporary folder for files tests leave behind, removed after the run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
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
  return () => rmSync(runTmp, { recursive: true, force: true });
}
