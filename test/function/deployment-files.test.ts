// The deployment files say what the docs say: func.yaml asks for a supported Node runtime and has
// no `config:` block (fn deploy would write it over the live settings), .dockerignore lets only
// the runtime files into the image, and the bundle is the size the docs give, without the SDK.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

describe('func.yaml', () => {
  const func = parse(read('func.yaml')) as Record<string, unknown>;

  it('has no config block: every setting has its default in the code', () => {
    expect(Object.keys(func).sort()).toEqual(
      ['entrypoint', 'memory', 'name', 'runtime', 'schema_version', 'timeout', 'version'].sort(),
    );
  });

  it('asks for a runtime current fn CLIs register, while the code targets Node 20 and later', () => {
    expect(['node22', 'node24']).toContain(func.runtime);
    expect(JSON.parse(read('package.json')).engines.node).toBe('>=20');
    expect(read('build.mjs')).toMatch(/target: 'node20'/);
    expect(func.memory).toBeGreaterThanOrEqual(128);
    expect(func.memory).toBeLessThanOrEqual(3072);
    expect(func.timeout).toBeLessThanOrEqual(300);
  });
});

/** `.dockerignore` semantics for plain patterns: the last pattern matching the path or a parent wins. */
function inImage(patterns: string[], path: string): boolean {
  const parts = path.split('/');
  let included = true;
  for (const raw of patterns) {
    const exception = raw.startsWith('!');
    const pattern = (exception ? raw.slice(1) : raw).split('/');
    const matches = parts.some(
      (_, end) =>
        end + 1 === pattern.length &&
        pattern.every((p, i) =>
          new RegExp(`^${p.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`).test(parts[i]!),
        ),
    );
    if (matches) included = exception;
  }
  return included;
}

describe('.dockerignore', () => {
  const patterns = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));

  it('lets in the bundle, the runtime modules, the configuration and the package files only', () => {
    const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n');
    const candidates = [
      ...tracked,
      '.git/HEAD',
      'demo-out/state.sqlite',
      'demo-out/mysql/prod-orders.log',
      'dist/cli.cjs',
      'dist/bench.cjs',
      'coverage/index.html',
    ];
    expect(candidates.filter((p) => inImage(patterns, p)).sort()).toEqual([
      'package-lock.json',
      'package.json',
    ]);
    for (const path of [
      'dist/func.cjs',
      'dist/func.cjs.map',
      'config/audit.yaml',
      'node_modules/better-sqlite3/build/Release/better_sqlite3.node',
      'node_modules/oci-audit/index.js',
    ])
      expect(inImage(patterns, path), path).toBe(true);
  });

  it('covers the entry point func.yaml runs; no .fnignore pretends to shape the image', () => {
    const entry = /^node (\S+)$/.exec(
      String((parse(read('func.yaml')) as { entrypoint: string }).entrypoint),
    )?.[1];
    expect(entry).toBe('dist/func.cjs');
    expect(inImage(patterns, entry!)).toBe(true);
    expect(existsSync(join(ROOT, '.fnignore'))).toBe(false);
  });
});

describe('dist/func.cjs', () => {
  it('is the size docs/deploy-oci.md gives, and loads the OCI SDK from node_modules', () => {
    const bundle = join(ROOT, 'dist', 'func.cjs');
    expect(existsSync(bundle), 'run npm run build first').toBe(true);
    const documented = /`dist\/func\.cjs` is about ([\d.]+) MB/.exec(read('docs/deploy-oci.md'))?.[1];
    expect(documented).toBeDefined();
    const mb = statSync(bundle).size / 1e6;
    expect(Math.abs(mb - Number(documented)) / Number(documented)).toBeLessThan(0.25);
    const text = readFileSync(bundle, 'utf8');
    expect(text).toContain('import("oci-streaming")');
    expect(text).not.toMatch(/class StreamClient\b/);
  });
});
