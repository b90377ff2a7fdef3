// The built bundles (dist/*.cjs) that tests run as child processes, as users and Fn run them. A
// bundle older than any source it is built from would test yesterday's code: the test run's global
// setup rebuilds stale bundles, and `bundlePath` refuses one that is still stale.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './requirements.js';

const BUNDLES = { cli: 'dist/cli.cjs', func: 'dist/func.cjs' } as const;
export type BundleName = keyof typeof BUNDLES;

/** What build.mjs reads: the hosts and everything they import, the build script and the pinned packages. */
const SOURCES = ['functions', 'shared', 'schemas', 'bench', 'build.mjs', 'package.json', 'package-lock.json'];

function newestSource(): number {
  let newest = 0;
  for (const source of SOURCES) {
    const path = join(REPO_ROOT, source);
    const files = statSync(path).isDirectory()
      ? readdirSync(path, { recursive: true, withFileTypes: true })
          .filter((e) => e.isFile())
          .map((e) => join(e.parentPath, e.name))
      : [path];
    for (const f of files) newest = Math.max(newest, statSync(f).mtimeMs);
  }
  return newest;
}

/** Bundles that are missing or older than a source. */
export function staleBundles(): BundleName[] {
  const newest = newestSource();
  return (Object.keys(BUNDLES) as BundleName[]).filter((name) => {
    const path = join(REPO_ROOT, BUNDLES[name]);
    return !existsSync(path) || statSync(path).mtimeMs < newest;
  });
}

/** Runs build.mjs (esbuild, a few seconds). */
export function buildBundles(): void {
  const run = spawnSync(process.execPath, ['build.mjs'], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`build.mjs failed (exit ${run.status}):\n${run.stderr}`);
}

/** Absolute path of a bundle; throws when it is missing or older than the sources. */
export function bundlePath(name: BundleName): string {
  if (staleBundles().includes(name))
    throw new Error(`${BUNDLES[name]} is missing or older than the sources: run "npm run build"`);
  return join(REPO_ROOT, BUNDLES[name]);
}
