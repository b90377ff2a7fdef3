// `demo`: generates a synthetic fleet with incidents, replays it through the pipeline, and prints
// what was found, who was behind it, and how that compares with the ground truth.
import { createWriteStream, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { finished } from 'node:stream/promises';
import type { Alert } from '../../schemas/alert.js';
import { REPORT_IDS } from '../../schemas/report.js';
import { loadConfigFile } from '../../shared/config/load-config.js';
import type { Coverage } from '../../shared/correlate/coverage.js';
import { DEFAULT_SEED, type DemoManifest, generateDemo } from '../../shared/demo/generate-demo.js';
import { type Score, scoreAlerts } from '../../shared/demo/ground-truth.js';
import { type DemoReports, formatSummary } from '../../shared/demo/summary.js';
import { JsonlSink } from '../../shared/emit/jsonl-sink.js';
import { AuditError, exitCodeFor } from '../../shared/errors.js';
import type { PipelineStats } from '../../shared/pipeline.js';
import { replayFiles } from '../../shared/replay.js';
import { renderReport } from '../../shared/report/render.js';
import { runReports } from '../../shared/report/run-reports.js';
import { routePlan } from '../../shared/route/route-plan.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { grouped } from '../../shared/text.js';
import { type CliCommand, type CliIo, parseCommandArgs } from './io.js';
import { readLedger } from './summary.js';

const DEMO_HELP = `Usage: heatwave-iam-audit demo [--out DIR] [--seed N] [--scale N]

Generates a synthetic HeatWave fleet (20 DB systems, ~200 IAM users, two working days, with
injected incidents), runs the pipeline over it and prints alerts by rule and severity, the top
incidents with the person behind each session, attribution coverage, precision and recall per
rule against the generated ground truth, and which routes of config.yaml the alerts would take
(nothing is sent).

Options:
  --out DIR      where inputs and outputs are kept                   (default: ./demo-out)
  --seed N       generator seed; the same seed gives the same bytes  (default: ${DEFAULT_SEED})
  --scale N      fleet size relative to the default, e.g. 0.2 or 3   (default: 1)
  -h, --help     this help

Writes into DIR: mysql/ collector/ iam/ (inputs), config.yaml, ground-truth.json,
alerts.jsonl, sessions.jsonl, report.json, state.sqlite, and the compliance reports of the
two days in reports/ (HTML and JSON, CSV in reports/csv/). DIR must be new, empty or a folder an
earlier demo wrote (it holds a .heatwave-iam-audit-demo marker): nothing else is ever replaced.
Progress goes to stderr, the summary to stdout.

Exit codes: 0 the demo ran, whatever it scored; 2 bad usage, or a DIR it may not write into;
1 an internal failure.
`;

/** What the demo wrote into --out besides the generated inputs. */
const OUTPUTS = [
  'alerts.jsonl',
  'sessions.jsonl',
  'report.json',
  'state.sqlite',
  'state.sqlite-wal',
  'state.sqlite-shm',
  'reports',
];

export type DemoResult = {
  manifest: DemoManifest;
  stats: PipelineStats;
  alerts: Alert[];
  coverage: Coverage;
  score: Score;
  timings: { generate: number; pipeline: number; total: number };
  summary: string;
  /** The compliance reports written into reports/: HTML files by report. */
  reports: DemoReports;
};

/** Every report of the demo's window, as HTML and JSON in `dir` and CSV in `dir`/csv. */
async function writeDemoReports(
  store: SqliteStore,
  manifest: DemoManifest,
  dir: string,
): Promise<DemoReports> {
  const docs = await runReports(store, {
    reports: REPORT_IDS,
    period: { from: Date.parse(manifest.truth.window.from), to: Date.parse(manifest.truth.window.to) },
    generatedAt: Date.now(),
  });
  mkdirSync(join(dir, 'csv'), { recursive: true });
  for (const doc of docs) {
    for (const format of ['html', 'json'] as const)
      for (const f of renderReport(doc, format)) writeFileSync(join(dir, f.name), f.text);
    for (const f of renderReport(doc, 'csv')) writeFileSync(join(dir, 'csv', f.name), f.text);
  }
  return {
    dir,
    html: docs.map((d) => ({ report: d.report, title: d.title, path: join(dir, `${d.report}.html`) })),
  };
}

function parseDemoArgs(args: string[]): { out: string; seed: number; scale: number } {
  const { values } = parseCommandArgs('demo', args, {
    out: { type: 'string', default: './demo-out' },
    seed: { type: 'string', default: String(DEFAULT_SEED) },
    scale: { type: 'string', default: '1' },
  });
  const seed = Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff) {
    throw new AuditError('USAGE', 'demo: --seed expects an integer between 0 and 4294967295');
  }
  const scale = Number(values.scale);
  if (!Number.isFinite(scale) || scale < 0.05 || scale > 100) {
    throw new AuditError('USAGE', 'demo: --scale expects a number between 0.05 and 100');
  }
  return { out: resolve(values.out), seed, scale };
}

/** Marks a folder as the demo's: only then does a demo run replace what is in it. */
const MARKER = '.heatwave-iam-audit-demo';

/**
 * Makes `out` the demo's folder: a new or empty folder is marked; one the demo wrote before (it
 * holds the marker) is reused. Anything else is refused, so that no user file is ever deleted.
 */
function claimDemoFolder(out: string): void {
  let entries: string[] | undefined;
  try {
    if (!statSync(out).isDirectory())
      throw new AuditError('USAGE', `demo: --out ${out} is a file, not a folder`);
    entries = readdirSync(out);
  } catch (error) {
    if (error instanceof AuditError) throw error;
    if ((error as { code?: string }).code !== 'ENOENT')
      throw new AuditError('USAGE', `demo: cannot use --out ${out}`, { cause: error });
  }
  if (entries && entries.length > 0 && !entries.includes(MARKER))
    throw new AuditError(
      'USAGE',
      `demo: --out ${out} holds files the demo did not write; choose a new or empty folder`,
    );
  try {
    mkdirSync(out, { recursive: true });
    writeFileSync(
      join(out, MARKER),
      'Written by heatwave-iam-audit demo; a later demo run may replace its files.\n',
    );
  } catch (cause) {
    throw new AuditError('USAGE', `demo: cannot write to --out ${out}`, { cause });
  }
}

/** Generates, replays and scores the demo; `log` receives progress lines. */
export async function executeDemo(
  opts: { out: string; seed: number; scale: number; appRate?: number },
  log: (line: string) => void = () => {},
): Promise<DemoResult> {
  const started = Date.now();
  claimDemoFolder(opts.out);
  for (const name of OUTPUTS) rmSync(join(opts.out, name), { force: true, recursive: true });

  log(`[1/5] generating the demo fleet (seed ${opts.seed}, scale ${opts.scale}) into ${opts.out}`);
  const manifest = generateDemo({
    out: opts.out,
    seed: opts.seed,
    scale: opts.scale,
    ...(opts.appRate === undefined ? {} : { appRate: opts.appRate }),
    onProgress: log,
  });
  const generated = Date.now();
  log(
    `      ${grouped(manifest.counts.mysqlEvents)} MySQL audit events, ${grouped(manifest.counts.iamEvents)} OCI audit events, ${manifest.truth.expected.length} expected alerts (${((generated - started) / 1000).toFixed(1)} s)`,
  );

  log('[2/5] replaying the inputs through the pipeline');
  const { config, rules } = await loadConfigFile(manifest.config);
  const store = SqliteStore.open(join(opts.out, 'state.sqlite'));
  try {
    const alertsOut = createWriteStream(join(opts.out, 'alerts.jsonl'));
    let last = 0;
    const result = await replayFiles({
      config,
      rules,
      inputs: manifest.inputs,
      store,
      sinks: [new JsonlSink(alertsOut)],
      onProgress: (p) => {
        const now = Date.now();
        if (now - last < 2000) return;
        last = now;
        log(`      ${grouped(p.records)} records, ${p.alerts} alerts`);
      },
    });
    alertsOut.end();
    await finished(alertsOut);
    const replayed = Date.now();
    log(
      `      ${grouped(result.stats.received)} records, ${result.stats.alerts} alerts (${((replayed - generated) / 1000).toFixed(1)} s)`,
    );

    log('[3/5] writing the session ledger');
    const coverage = await readLedger(store, {
      path: join(opts.out, 'sessions.jsonl'),
      format: 'jsonl',
    });
    const records: Alert[] = [];
    for await (const a of store.alerts()) records.push(a);
    const alerts = records.filter((a) => a.status === 'open');
    const routes = routePlan(config, records);

    log('[4/5] scoring the alerts against the ground truth');
    const score = scoreAlerts(alerts, manifest.truth);

    log('[5/5] writing the compliance reports');
    const reports = await writeDemoReports(store, manifest, join(opts.out, 'reports'));
    const timings = {
      generate: generated - started,
      pipeline: replayed - generated,
      total: Date.now() - started,
    };
    writeFileSync(
      join(opts.out, 'report.json'),
      `${JSON.stringify(
        {
          seed: opts.seed,
          scale: opts.scale,
          counts: manifest.counts,
          stats: result.stats,
          coverage,
          rules: score.rules,
          total: score.total,
          unexplained: score.unexplained.map((a) => ({
            id: a.id,
            rule: a.rule,
            time: a.time,
            title: a.title,
          })),
          missed: score.missed,
          routes,
          timings,
        },
        null,
        2,
      )}\n`,
    );
    const summary = formatSummary({
      manifest,
      stats: result.stats,
      alerts,
      coverage,
      score,
      routes,
      timings,
      out: opts.out,
      reports,
    });
    return { manifest, stats: result.stats, alerts, coverage, score, timings, summary, reports };
  } finally {
    await store.close();
  }
}

/** The `demo` command: returns the exit code (0 ran, 2 bad usage, 1 internal failure). */
export async function runDemo(
  args: string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  try {
    if (args.includes('-h') || args.includes('--help')) {
      io.stdout.write(DEMO_HELP);
      return 0;
    }
    const opts = parseDemoArgs(args);
    const result = await executeDemo(opts, (line) => io.stderr.write(`${line}\n`));
    io.stdout.write(`\n${result.summary}`);
    return 0;
  } catch (error) {
    const message =
      error instanceof AuditError
        ? error.message
        : `internal error: ${error instanceof Error ? error.message : String(error)}`;
    io.stderr.write(`heatwave-iam-audit: ${message}\n`);
    return exitCodeFor(error);
  }
}

export const demoCommand: CliCommand = {
  name: 'demo',
  summary: 'generate a synthetic fleet with incidents, replay it and score the alerts',
  usage: DEMO_HELP,
  run: runDemo,
};
