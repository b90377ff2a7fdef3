// Once per test run, before any test file (after test/setup/run.ts): bundles as fresh as the
// sources. Not for mutation testing, whose stryker.config.mjs builds what its tests load.
import { buildBundles, staleBundles } from '../helpers/bundle.js';

export default function setup(): void {
  const stale = staleBundles();
  if (stale.length > 0) {
    process.stdout.write(`dist/ is older than the sources (${stale.join(', ')}): rebuilding\n`);
    buildBundles();
  }
}
