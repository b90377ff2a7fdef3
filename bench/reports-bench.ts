// `npm run bench:reports`: compliance report generation over a state store holding a million
// sessions. A SQLite state gets the demo fleet's directory and mappings (through the pipeline) and
// a month of synthetic sessions and alerts (committed as the pipeline commits them); a child
// process then builds and renders every report over the month and reports its time and peak
// memory, so that the figures are those of `report all` alone.
// Progress goes to stderr; the last line on stdout is one JSON object with the figures.
//
//   npm run bench:reports -- [--sessions N] [--keep]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { Alert } from '../schemas/alert.js';
import { REPORT_FORMATS, REPORT_IDS } from '../schemas/report.js';
import type { Session } from '../schemas/session.js';
import { validateConfig } from '../shared/config/load-config.js';
import { buildFleet, type Fleet, fleetConfig, PROXY_ACCOUNTS } from '../shared/demo/fleet.js';
import { Rng } from '../shared/demo/rng.js';
import { RULES } from '../shared/detect/registry.js';
import { Pipeline } from '../shared/pipeline.js';
import { renderReport } from '../shared/report/render.js';
import { runReports } from '../shared/report/run-reports.js';
import { SqliteStore } from '../shared/state/sqlite-store.js';
import { commitBatch } from '../shared/state/state-store.js';

const log = (line: string) => process.stderr.write(`${line}\n`);

const HELP = `Usage: npm run bench:reports -- [options]

Fills a SQLite state with the demo fleet's directory and mappings and a month of synthetic
sessions and alerts, then builds and renders every compliance report over the month in a child
process and reports its time and peak memory. Progress goes to stderr; the last line on stdout is
one JSON object with the figures (fillMs, stateMb, buildMs, renderMs, peakRssMb, ...).

Options:
  --sessions N     sessions in the state (default 1000000)
  --keep           keep the state file
  -h, --help       this help
`;
const DAY = 86_400_000;
const DAYS = 30;
const BATCH = 5000;
const peakRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);

/** One synthetic session: mostly applications, then group logins, personal accounts and failures. */
function session(fleet: Fleet, rng: Rng, i: number, from: number): Session {
  const db = fleet.dbs[i % fleet.dbs.length]!;
  const ts = from + Math.floor((i / 1_000_000) * DAYS * DAY) + rng.int(0, 59_000);
  const time = new Date(ts).toISOString();
  const kind = rng.int(0, 99);
  const person = fleet.people[rng.int(0, fleet.people.length - 1)]!;
  const base: Session = {
    id: `${db.id}:${i}:${time}`,
    dbSystem: { id: db.id, name: db.name },
    connectionId: i,
    connectTime: time,
    connectTs: ts,
    disconnectTime: new Date(ts + rng.int(1, 3600) * 1000).toISOString(),
    outcome: 'success',
    status: 0,
    login: { user: 'app_orders', os: '', ip: '10.20.0.5', proxy: '' },
    account: { user: 'app_orders', host: '10.20.%' },
    sourceIp: '10.20.0.5',
    identity: null,
    group: null,
    mysqlAccount: 'app_orders@10.20.%',
    proxied: false,
    attribution: { method: 'local-account', confidence: 'none', evidence: [] },
    breakGlassGrant: null,
    counts: {
      queries: rng.int(1, 200),
      tableAccess: rng.int(0, 50),
      changeUser: 0,
      failedStatements: rng.int(0, 1),
    },
    tables: db.tables.slice(0, rng.int(1, 3)).map((t) => `${db.schema}.${t}`),
    connectKey: `${db.id}:${time}:${i}`,
  };
  if (kind < 55) return base;
  if (kind < 60)
    return {
      ...base,
      outcome: 'failed',
      status: 1045,
      login: { ...base.login, user: person.alias },
      tables: [],
    };
  const login = { user: person.alias, os: '', ip: person.ip, proxy: "''@'%'" };
  if (kind < 65) {
    const account = { user: person.alias, host: '%' };
    return {
      ...base,
      login: { ...login, proxy: '' },
      account,
      mysqlAccount: `${person.alias}@%`,
      sourceIp: person.ip,
      identity: { id: person.id, name: person.name },
      attribution: { method: 'mapped-user', confidence: 'verified', evidence: [] },
    };
  }
  const group = kind < 90 ? fleet.groups.ro : kind < 98 ? fleet.groups[`dev-${db.team}`] : fleet.groups.dba;
  const user =
    group === fleet.groups.ro
      ? PROXY_ACCOUNTS.ro
      : group === fleet.groups.dba
        ? PROXY_ACCOUNTS.dba
        : PROXY_ACCOUNTS.dev;
  const untied = rng.int(0, 999) === 0;
  return {
    ...base,
    login,
    account: { user, host: '%' },
    mysqlAccount: `${user}@%`,
    sourceIp: person.ip,
    proxied: true,
    identity: untied ? null : { id: person.id, name: person.name },
    group: { id: group.id, name: group.name },
    attribution: untied
      ? { method: 'unattributed', confidence: 'none', evidence: [], problem: 'no-evidence' }
      : kind % 3 === 0
        ? { method: 'external-user', confidence: 'verified', evidence: [] }
        : { method: 'login-name', confidence: kind % 3 === 1 ? 'corroborated' : 'asserted', evidence: [] },
  };
}

function alert(fleet: Fleet, rng: Rng, i: number, from: number): Alert {
  const rule = RULES[i % RULES.length]!;
  const db = fleet.dbs[rng.int(0, fleet.dbs.length - 1)]!;
  const person = fleet.people[rng.int(0, fleet.people.length - 1)]!;
  return {
    id: `bench-alert-${i}`,
    rule: rule.id,
    severity: rule.severity,
    status: 'open',
    time: new Date(from + rng.int(0, DAYS * DAY - 1)).toISOString(),
    title: `${rule.title} (${person.name})`,
    identity: { principalId: person.id, name: person.name, attribution: null },
    dbSystem: { id: db.id, name: db.name },
    evidence: [`bench-${i}`],
    mysqlAccount: `${PROXY_ACCOUNTS.dba}@%`,
    details: { sql: 'GRANT SELECT ON shop.* TO ?@?', actor: 'iam-admin' },
  };
}

async function fill(path: string, count: number): Promise<{ ms: number; from: number }> {
  const started = performance.now();
  const fleet = buildFleet(7, 3);
  const { config, rules } = validateConfig(fleetConfig(fleet), 'bench fleet');
  const store = SqliteStore.open(path);
  // The directory, mappings and catalog, as the pipeline records them.
  const pipeline = await Pipeline.open({ config, rules, store });
  await pipeline.advance(fleet.start);
  const rng = new Rng(11);
  const from = fleet.start;
  for (let i = 0; i < count; i += BATCH) {
    const sessions: Session[] = [];
    for (let j = i; j < Math.min(count, i + BATCH); j++) sessions.push(session(fleet, rng, j, from));
    const alerts =
      i % 100_000 === 0 ? Array.from({ length: 500 }, (_, k) => alert(fleet, rng, i + k, from)) : [];
    await store.commit(commitBatch({ sessions, alerts }));
    if ((i + BATCH) % 200_000 === 0) log(`  ${(i + BATCH).toLocaleString('en-US')} sessions`);
  }
  await store.close();
  return { ms: performance.now() - started, from };
}

/** The child: every report of the month, built once and rendered in every format. */
async function reportChild(path: string, from: number): Promise<void> {
  const store = SqliteStore.open(path);
  const period = { from, to: from + DAYS * DAY };
  let t = performance.now();
  const docs = await runReports(store, { reports: REPORT_IDS, period, generatedAt: Date.now() });
  const buildMs = performance.now() - t;
  const afterBuildMb = peakRssMb();
  t = performance.now();
  const bytes: Record<string, number> = {};
  for (const format of REPORT_FORMATS)
    bytes[format] = docs
      .flatMap((d) => renderReport(d, format))
      .reduce((n, f) => n + Buffer.byteLength(f.text), 0);
  const renderMs = performance.now() - t;
  t = performance.now();
  await runReports(store, { reports: ['access-review'], period, generatedAt: Date.now() });
  const accessReviewMs = performance.now() - t;
  await store.close();
  process.stdout.write(
    `${JSON.stringify({ buildMs: Math.round(buildMs), renderMs: Math.round(renderMs), accessReviewMs: Math.round(accessReviewMs), peakRssAfterBuildMb: afterBuildMb, peakRssMb: peakRssMb(), bytes })}\n`,
  );
}

function runChild(path: string, from: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [process.argv[1]!, '--child', path, '--from', String(from)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve(JSON.parse(out.trim().split('\n').at(-1)!))
        : reject(new Error(`child exited ${code}`)),
    );
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sessions: { type: 'string', default: '1000000' },
      keep: { type: 'boolean', default: false },
      child: { type: 'string' },
      from: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  if (values.child !== undefined) return reportChild(values.child, Number(values.from));
  const count = Number(values.sessions);
  const dir = mkdtempSync(join(tmpdir(), 'hwaudit-bench-reports-'));
  const path = join(dir, 'state.sqlite');
  try {
    log(`bench reports: filling a state with ${count.toLocaleString('en-US')} sessions over ${DAYS} days`);
    const filled = await fill(path, count);
    const stateMb = Math.round(statSync(path).size / 1e6);
    log(`  filled in ${(filled.ms / 1000).toFixed(1)} s (${stateMb} MB); building every report of the month`);
    const child = await runChild(path, filled.from);
    const figures = { sessions: count, days: DAYS, fillMs: Math.round(filled.ms), stateMb, ...child };
    log(
      `  all ${REPORT_IDS.length} reports: built in ${((child.buildMs as number) / 1000).toFixed(1)} s, rendered (html, csv, json) in ${((child.renderMs as number) / 1000).toFixed(1)} s; access review alone ${((child.accessReviewMs as number) / 1000).toFixed(1)} s; peak RSS ${child.peakRssMb} MB`,
    );
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  } finally {
    if (values.keep) log(`  kept ${path}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  log(`bench reports: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
});
