// Bundles the hosts into CommonJS files under dist/ (the FDK is CommonJS; see README "Deploying").
// The CLI runs with a 32 MB young generation: decoding allocates many short-lived objects, and
// replay is about 20% faster with it (measured on the demo fleet).
import { build } from 'esbuild';

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'linked',
  logLevel: 'warning',
  // Native or optional drivers stay in node_modules.
  external: ['better-sqlite3', 'mysql2', 'mysql2/*'],
  // The sources are ES modules: in a bundle, their import.meta.url is the bundle's own file URL.
  define: { 'import.meta.url': 'importMetaUrl' },
  inject: ['scripts/import-meta-url.js'],
};

await Promise.all([
  build({
    ...common,
    // The replay's decoding workers (shared/decode/decode-pool.ts) run dist/decode-worker.cjs, and
    // the SQLite store's commit thread (shared/state/commit-thread.ts) dist/commit-worker.cjs.
    entryPoints: {
      cli: 'functions/cli.ts',
      'decode-worker': 'shared/decode/decode-worker.ts',
      'commit-worker': 'shared/state/commit-worker.ts',
    },
    outExtension: { '.js': '.cjs' },
    outdir: 'dist',
    packages: 'external',
    banner: { js: '#!/usr/bin/env -S node --max-semi-space-size=32' },
  }),
  // The OCI SDK stays in node_modules too: it is large and loaded only when an OCI output is set.
  build({
    ...common,
    entryPoints: { func: 'functions/func.ts' },
    outExtension: { '.js': '.cjs' },
    outdir: 'dist',
    external: [...common.external, 'oci-*'],
  }),
  build({
    ...common,
    entryPoints: { bench: 'bench/bench.ts', 'bench-reports': 'bench/reports-bench.ts' },
    outExtension: { '.js': '.cjs' },
    outdir: 'dist',
    packages: 'external',
  }),
]);
