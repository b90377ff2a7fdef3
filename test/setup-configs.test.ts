// The configurations that run tests (vitest.config.ts; vitest.mutate.config.ts for mutation
// testing, docs/testing.md) provide every value a test or its helpers inject: one left out is
// undefined there, and the tests that read it fail in that run only.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import main from '../vitest.config.js';
import mutate from '../vitest.mutate.config.js';

const ROOT = join(import.meta.dirname, '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/** The names the test folder's sources read with `inject`. */
function injected(): Set<string> {
  const files = readdirSync(join(ROOT, 'test'), { recursive: true, encoding: 'utf8' }).filter((f) =>
    f.endsWith('.ts'),
  );
  return new Set(
    files.flatMap((f) => [...read(join('test', f)).matchAll(/\binject\('(\w+)'\)/g)].map((m) => m[1]!)),
  );
}

/** The names a configuration's global setups provide. */
function provided(globalSetup: string | string[] | undefined): Set<string> {
  const files = globalSetup === undefined ? [] : [globalSetup].flat();
  return new Set(files.flatMap((f) => [...read(f).matchAll(/\.provide\('(\w+)'/g)].map((m) => m[1]!)));
}

describe('test configurations', () => {
  const names = injected();

  it.each([
    { name: 'vitest.config.ts', config: main },
    { name: 'vitest.mutate.config.ts', config: mutate },
  ])('$name provides every value tests inject', ({ config }) => {
    expect(names.size).toBeGreaterThan(0);
    expect([...names].filter((n) => !provided(config.test?.globalSetup).has(n))).toEqual([]);
  });
});
