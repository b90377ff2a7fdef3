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
  // Native or optional drivers stay in node_modules, and so does the OCI SDK: it is large and loaded
  // only when an OCI input or output is set. The rest is bundled, only what is used of it: loading
  // date-fns, zod and yaml whole from node_modules took a CLI about 110 ms more to start, and each
  // worker thread loads its bundle again.
  external: ['better-sqlite3', 'mysql2', 'mysql2/*', 'oci-*'],
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
    banner: { js: '#!/usr/bin/env -S node --max-semi-space-size=32' },
  }),
  build({
    ...common,
    entryPoints: { func: 'functions/func.ts' },
    outExtension: { '.js': '.cjs' },
    outdir: 'dist',
  }),
  build({
    ...common,
    entryPoints: { bench: 'bench/bench.ts', 'bench-reports': 'bench/reports-bench.ts' },
    outExtension: { '.js': '.cjs' },
    outdir: 'dist',
    // The peer the bench compares with is a native module.
    external: [...common.external, '@duckdb/*'],
  }),
]);
