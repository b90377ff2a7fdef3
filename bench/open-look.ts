// The look of a pipeline that opens, over a store holding many alerts all delivered: the look at
// every record for each output (`StateStore.undelivered`, the first look for an output none looked
// for) against the look from the time the last look stored (`StateStore.lapsed` with `opening` on
// a store that never looked: what a function invocation on a mysql:// store, or a CLI run, does
// when it opens).
// The alerts are written by SQL, as a long-running fleet would have left them: stored over
// `--days`, each claim ended a lease after its commit, every output recorded as delivered.
// Progress goes to stderr; the last line on stdout is one JSON object with the figures.
//
//   npm run bench:look -- [--store sqlite|mysql] [--alerts N] [--days D] [--runs R]
//   (mysql: TEST_MYSQL_URL and HWAUDIT_STATE_PASSWORD, as the tests take them)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import { MySqlStore } from '../shared/state/mysql-store.js';
import { parseStoreSpec } from '../shared/state/open-store.js';
import { SqliteStore } from '../shared/state/sqlite-store.js';
import { CLAIM_LEASE_MS, type StateStore } from '../shared/state/state-store.js';

const log = (line: string) => process.stderr.write(`${line}\n`);
const { values } = parseArgs({
  options: {
    store: { type: 'string', default: 'sqlite' },
    alerts: { type: 'string', default: '1000000' },
    days: { type: 'string', default: '30' },
    runs: { type: 'string', default: '3' },
  },
  allowPositionals: true,
});
const ALERTS = Number(values.alerts);
const DAYS = Number(values.days);
const RUNS = Number(values.runs);
const SINKS = ['oci-notifications', 'oci-stream'];
const NOW = Date.now();
const SPAN = DAYS * 86_400_000;
const BODY = JSON.stringify({
  rule: 'access.local-account',
  severity: 'high',
  title: 'bench',
  status: 'open',
});

/** The n-th alert (1-based): stored evenly over the span up to a minute ago, its claim ended a lease later. */
const SQL_CLAIM_END = (n: string) =>
  `${NOW - 60_000 - SPAN} + FLOOR((${n} - 1) * ${SPAN / ALERTS}) + ${CLAIM_LEASE_MS}`;

type Bench = { open(claimant: string): Promise<StateStore>; dispose(): Promise<void> };

async function sqliteBench(): Promise<Bench> {
  const dir = mkdtempSync(join(tmpdir(), 'hwaudit-open-look-'));
  const path = join(dir, 'state.db');
  await (await SqliteStore.open(path)).close();
  const db = new Database(path);
  db.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${ALERTS})
    INSERT INTO alerts (id, rule, time, body, claimant, claimed_until)
    SELECT printf('alert-%09d', i), 'access.local-account', printf('2026-01-01T00:00:00.%09dZ', i), '${BODY}',
           'gone', ${SQL_CLAIM_END('i')} FROM n`);
  for (const sink of SINKS)
    db.prepare('INSERT INTO deliveries (alert_id, sink, delivered_ts) SELECT id, ?, 0 FROM alerts').run(sink);
  db.exec('ANALYZE');
  db.close();
  return {
    open: async (claimant) => SqliteStore.open(path, { claims: { claimant } }),
    dispose: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

async function mysqlBench(): Promise<Bench> {
  const spec = parseStoreSpec(process.env.TEST_MYSQL_URL ?? '', process.env);
  if (spec.kind !== 'mysql') throw new Error('TEST_MYSQL_URL must be a mysql:// URL');
  const database = 'hwaudit_test_open_look';
  const { database: _, sslMode: __, sslCa: ___, ...server } = spec.connection;
  const admin = await mysql.createConnection(server);
  await admin.query(`DROP DATABASE IF EXISTS ${database}`);
  await admin.query(`CREATE DATABASE ${database} CHARACTER SET utf8mb4`);
  const connection = { ...spec.connection, database };
  await (await MySqlStore.open(connection)).close();
  await admin.query(`USE ${database}`);
  // MariaDB's sequence engine: the numbers 1..N as a table.
  await admin.query(`INSERT INTO alerts (id, rule, alert_time, body, claimant, claimed_until)
    SELECT CONCAT('alert-', LPAD(seq, 9, '0')), 'access.local-account', CONCAT('2026-01-01T00:00:00.', LPAD(seq, 9, '0'), 'Z'),
           '${BODY}', 'gone', ${SQL_CLAIM_END('seq')} FROM seq_1_to_${ALERTS}`);
  for (const sink of SINKS)
    await admin.query('INSERT INTO deliveries (alert_id, sink, delivered_ts) SELECT id, ?, 0 FROM alerts', [
      sink,
    ]);
  await admin.query('ANALYZE TABLE alerts, deliveries');
  return {
    open: (claimant) => MySqlStore.open(connection, { claims: { claimant } }),
    dispose: async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${database}`);
      await admin.end();
    },
  };
}

/** The median time (ms) of `runs` looks, each by a store opened for it. */
async function timed(bench: Bench, look: (store: StateStore) => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const store = await bench.open(`bench-${performance.now()}`);
    const start = performance.now();
    await look(store);
    times.push(performance.now() - start);
    await store.close();
  }
  return Math.round(times.sort((a, b) => a - b)[Math.floor(RUNS / 2)]!);
}

const started = performance.now();
const bench = values.store === 'mysql' ? await mysqlBench() : await sqliteBench();
const fillMs = Math.round(performance.now() - started);
log(`filled ${ALERTS} alerts, ${SINKS.length} outputs, in ${fillMs} ms`);
try {
  // Before: every record's key, for each output (the open's look until the looks were stored).
  const fullMs = await timed(bench, async (s) => {
    for (const sink of SINKS) await s.undelivered(sink);
  });
  log(`full look, ${SINKS.length} outputs: ${fullMs} ms`);
  // After: from the time the last look stored (the full looks just made stored theirs).
  const storedMs = await timed(bench, (s) => s.lapsed(SINKS, { opening: true }));
  log(`look from the time stored, ${SINKS.length} outputs: ${storedMs} ms`);
  process.stdout.write(
    `${JSON.stringify({ store: values.store, alerts: ALERTS, days: DAYS, outputs: SINKS.length, fillMs, fullMs, storedMs })}\n`,
  );
} finally {
  await bench.dispose();
}
