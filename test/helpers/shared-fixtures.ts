// Locates the captured fixtures in ../shared/fixtures (beside the repository). Where that folder is
// absent, fixture tests are replaced by one passing test that says so in its name.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// This file is test/helpers/shared-fixtures.ts.
const REPO_ROOT_URL = new URL('../../', import.meta.url);

/** The repository root, with a trailing separator. */
export const REPO_ROOT = fileURLToPath(REPO_ROOT_URL);

/** Absolute path of `../shared/fixtures/<relative>` from the repository root, whether or not it exists. */
export function sharedFixturePath(relative: string): string {
  return fileURLToPath(new URL(`../shared/fixtures/${relative}`, REPO_ROOT_URL));
}

/**
 * Declares the tests in `body` for a shared fixture. When the fixture is absent, declares instead
 * a single test named 'shared fixtures absent: fixture tests not run (<relative>)'.
 */
export function describeSharedFixture(relative: string, body: (path: string) => void): void {
  const path = sharedFixturePath(relative);
  describe(`shared fixture ${relative}`, () => {
    if (existsSync(path)) {
      body(path);
    } else {
      it(`shared fixtures absent: fixture tests not run (${relative})`, () => {
        expect(existsSync(path)).toBe(false);
      });
    }
  });
}
