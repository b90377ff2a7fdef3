// `npm run test:update` rewrites the golden files and nothing else (docs/testing.md): it runs the
// test files that compare output with a file under a `golden/` folder, and only those, so that no
// other test's snapshot is written or removed by it.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/** The test files (as vitest.config.ts includes them) and their text. */
function testFiles(): { path: string; text: string }[] {
  return ['test', 'shared/rules'].flatMap((dir) =>
    readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.test.ts'))
      .map((f) => relative(ROOT, join(ROOT, dir, f)))
      .map((path) => ({ path, text: read(path) })),
  );
}

const SNAPSHOT = /\.toMatch(File|Inline)?Snapshot\(\s*(?:[^)]*?'([^']*)')?/g;

describe('npm run test:update', () => {
  const script: string = JSON.parse(read('package.json')).scripts['test:update'];
  const files = testFiles();
  const withSnapshots = files.filter((f) => f.text.match(SNAPSHOT) !== null);

  it('every snapshot a test compares with is a golden file, under a golden/ folder', () => {
    expect(withSnapshots.length).toBeGreaterThan(0);
    for (const { path, text } of withSnapshots)
      for (const [, kind, target] of text.matchAll(SNAPSHOT)) {
        expect(kind, `${path}: only file snapshots`).toBe('File');
        expect(target, `${path}: a golden file`).toMatch(/^\.\/golden\/[^/]+$/);
      }
  });

  it('runs the test files that compare golden files, and no other', () => {
    const named = script.split(/\s+/).filter((w) => w.endsWith('.test.ts'));
    expect(named.sort()).toEqual(withSnapshots.map((f) => f.path).sort());
    expect(script).toMatch(/vitest run --update=all /);
  });

  it('docs/testing.md names every golden folder it rewrites', () => {
    const doc = read('docs/testing.md');
    for (const { path } of withSnapshots)
      expect(doc).toContain(`${path.split('/').slice(0, -1).join('/')}/golden`);
  });
});
