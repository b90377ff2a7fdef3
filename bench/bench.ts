// `npm run bench`: throughput of decode, correlate and the whole pipeline on a generated fleet of
// at least a million MySQL audit events with its IAM traffic, against JSON.parse alone on the
// same bytes.
// Progress goes to stderr; the last line on stdout is one JSON object with the figures.
//
//   node --expose-gc dist/bench.cjs [--scale N] [--app-rate N] [--seed N] [--keep]
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { loadConfigFile, validateConfig } from '../shared/config/load-config.js';
import { dbSystemResolver } from '../shared/decode/input-db-system.js';
import { decodeValue, readInput } from '../shared/decode/read-input.js';
import { generateDemo } from '../shared/demo/generate-demo.js';
import { Rng } from '../shared/demo/rng.js';
import { Detector } from '../shared/detect/detector.js';
import { authenticationOf, type OpenedSession } from '../shared/detect/rule.js';
import { baseConfig, db, T0 } from '../shared/detect/timeline.js';
import { type DecodedItem, Pipeline } from '../shared/pipeline.js';
import { replayFiles } from '../shared/replay.js';
import { AuditLogReader } from '../shared/sources/audit-log-reader.js';
import { collect } from '../shared/sources/collector.js';
import { connectInstance, instanceTargets, secretReader } from '../shared/sources/mysql-connection.js';
import { EntityCache } from '../shared/state/entity-cache.js';
import { SqliteStore } from '../shared/state/sqlite-store.js';
import { AuditLog } from '../test/mysql-server/audit-log.js';
import { HeatWaveTestServer } from '../test/mysql-server/server.js';
import { duckdbPeer } from './duckdb-peer.js';
import { syncCostBench } from './sync-cost.js';

const log = (line: string) => process.stderr.write(`${line}\n`);
const rate = (n: number, ms: number) => Math.round(n / (ms / 1000));
const mb = (bytes: number) => Math.round(bytes / 1e5) / 10;
const peakRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);
const gc = () => (globalThis as { gc?: () => void }).gc?.();

const HELP = `Usage: npm run bench -- [options]

Generates a demo fleet and measures, in child processes run in interleaved rounds so that load
from elsewhere on the machine falls on every mode alike: JSON.parse alone on the input bytes,
decode alone, replay end to end into SQLite state (on one thread, on two with a decoding worker,
and on three with the state store also committing on a thread of its own), and DuckDB answering
the batch question on the same files. Reports medians of wall and CPU time, replay's main-thread
busy time and its own peak RSS. Then (unless --throughput) open sessions, the collector,
baselines, sync and the function's cold start. The last line on stdout is one JSON object with
the figures (ratio, twoThreadRatio, threeThreadRatio, mainBusyMs, peakRssMB, duckdbRatio, ...).

Options:
  --scale N        fleet size (default 3)          --app-rate N   statements/min per DB (default 5)
  --seed N         generator seed (default 7)      --rounds N     interleaved rounds (default 3)
  --throughput     the interleaved rounds only     --keep         keep the generated inputs
  --sync           the sync cost only              -h, --help     this help
`;

type Mode = 'parse' | 'decode' | 'replay' | 'replay2' | 'replay3' | 'duckdb';
const MODES: readonly Mode[] = ['parse', 'decode', 'replay', 'replay2', 'replay3', 'duckdb'];

/** What one child run measured: the timed part only (module load and setup left out). */
type RunFigures = {
  wallMs: number;
  cpuMs: number;
  mainBusyMs: number;
  peakRssMB: number;
  records: number;
} & Record<string, number>;

/** A replay's main-thread busy time, for a figure line (the other modes run on one thread, or DuckDB's own). */
const busyText = (mode: Mode, ms: number) =>
  mode.startsWith('replay') ? `, main thread busy ${(ms / 1000).toFixed(2)} s` : '';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/**
 * Runs `fn` and measures its wall time, its CPU time (user + system), the main thread's busy time
 * (event-loop utilization: what bounds the wall time where other threads have cores of their own)
 * and the process's peak RSS.
 */
async function timed(
  fn: () => Promise<Record<string, number>> | Record<string, number>,
): Promise<RunFigures> {
  gc();
  const cpu = process.cpuUsage();
  const loop = performance.eventLoopUtilization();
  const started = performance.now();
  const extra = await fn();
  const wallMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const mainBusyMs = performance.eventLoopUtilization(loop).active;
  return {
    records: 0,
    ...extra,
    wallMs,
    cpuMs: (used.user + used.system) / 1000,
    mainBusyMs,
    peakRssMB: peakRssMb(),
  };
}

/** JSON.parse of every record of the inputs, with the same line framing the files use. */
function parseOnly(inputs: string[]): { records: number; bytes: number } {
  let records = 0;
  let bytes = 0;
  for (const path of inputs) {
    const text = readFileSync(path, 'utf8');
    bytes += Buffer.byteLength(text);
    let start = 0;
    while (start < text.length) {
      let end = text.indexOf('\n', start);
      if (end === -1) end = text.length;
      let line = text.slice(start, end).trim();
      start = end + 1;
      if (line.endsWith(',')) line = line.slice(0, -1);
      if (line === '' || line === '[' || line === ']') continue;
      JSON.parse(line);
      records++;
    }
  }
  return { records, bytes };
}

/** Child mode: one measured run of `mode` over the inputs of a generated fleet; prints its figures. */
async function runMode(mode: Mode, manifestPath: string): Promise<void> {
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { config: string; inputs: string[] };
  const { config, rules } = await loadConfigFile(manifest.config);
  let figures: RunFigures;
  if (mode === 'parse') figures = await timed(() => parseOnly(manifest.inputs));
  else if (mode === 'duckdb') {
    const peer = await duckdbPeer(manifest.inputs, config, rules, 1);
    figures = await timed(async () => {
      const r = await peer.run();
      return { records: r.connects, people: r.people, bursts: r.bursts };
    });
    peer.close();
  } else if (mode === 'decode') {
    const resolveDbSystem = dbSystemResolver(config);
    figures = await timed(async () => {
      let events = 0;
      let ignored = 0;
      let dead = 0;
      for (const path of manifest.inputs) {
        for await (const batch of readInput(path, { resolveDbSystem }).batches())
          for (const item of batch) {
            if (item.type === 'event') events++;
            else if (item.type === 'ignored') ignored += item.count ?? 1;
            else dead++;
          }
      }
      return { records: events + ignored + dead, events, ignored, dead };
    });
  } else {
    // replay3 is `replay --threads 3`: a worker decodes, the store commits on a thread of its own;
    // below, as in `replay`, the store's thread only checkpoints.
    const statePath = join(manifestPath, '..', `state-${process.pid}.sqlite`);
    const store = SqliteStore.open(statePath, {
      thread: mode === 'replay3' ? 'commits' : 'checkpoints',
    });
    try {
      figures = await timed(async () => {
        const { stats } = await replayFiles({
          config,
          rules,
          inputs: manifest.inputs,
          store,
          sinks: [],
          threads: mode === 'replay' ? 1 : 2,
        });
        return { records: stats.received, duplicates: stats.duplicates, alerts: stats.alerts };
      });
    } finally {
      await store.close();
      // Each run's state (about 150 MB at scale 3) goes: kept inputs are run again and again.
      for (const suffix of ['', '-wal', '-shm']) rmSync(statePath + suffix, { force: true });
    }
  }
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

function runChild(mode: Mode, manifestPath: string): Promise<RunFigures> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, __filename, '--run', mode, manifestPath], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`bench --run ${mode} exited with ${code}`));
      else resolve(JSON.parse(out.trim().split('\n').at(-1)!) as RunFigures);
    });
  });
}

/** `rounds` rounds of every mode, each in its own process, the order rotating from round to round. */
async function interleaved(manifestPath: string, rounds: number): Promise<Record<Mode, RunFigures[]>> {
  const runs: Record<Mode, RunFigures[]> = {
    parse: [],
    decode: [],
    replay: [],
    replay2: [],
    replay3: [],
    duckdb: [],
  };
  for (let r = 0; r < rounds; r++) {
    for (let m = 0; m < MODES.length; m++) {
      const mode = MODES[(m + r) % MODES.length]!;
      const f = await runChild(mode, manifestPath);
      runs[mode].push(f);
      log(
        `  round ${r + 1} ${mode.padEnd(6)} ${(f.wallMs / 1000).toFixed(2)} s wall, ${(f.cpuMs / 1000).toFixed(2)} s CPU${busyText(mode, f.mainBusyMs)}, peak RSS ${f.peakRssMB} MB`,
      );
    }
  }
  return runs;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: {
      scale: { type: 'string', default: '3' },
      'app-rate': { type: 'string', default: '5' },
      seed: { type: 'string', default: '7' },
      rounds: { type: 'string', default: '3' },
      keep: { type: 'boolean', default: false },
      throughput: { type: 'boolean', default: false },
      run: { type: 'string' },
      'audit-servers': { type: 'boolean', default: false },
      sync: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  if (values.run !== undefined) return runMode(values.run as Mode, positionals[0]!);
  if (values['audit-servers']) return auditServers(positionals);
  if (values.sync) {
    process.stdout.write(`${JSON.stringify(await syncBench())}\n`);
    return;
  }
  const scale = Number(values.scale);
  const appRate = Number(values['app-rate']);
  const seed = Number(values.seed);
  const rounds = Math.max(1, Number(values.rounds));
  const dir = mkdtempSync(join(tmpdir(), 'hwaudit-bench-'));
  try {
    log(`bench: generating a fleet (scale ${scale}, app rate ${appRate}/min, seed ${seed}) into ${dir}`);
    const t = performance.now();
    const manifest = generateDemo({ out: dir, seed, scale, appRate });
    const generateMs = performance.now() - t;
    const { mysqlEvents, iamDeliveries, bytes } = manifest.counts;
    log(
      `  ${mysqlEvents.toLocaleString('en-US')} MySQL events, ${iamDeliveries.toLocaleString('en-US')} IAM records, ${mb(bytes)} MB in ${(generateMs / 1000).toFixed(1)} s`,
    );
    if (mysqlEvents < 1_000_000) log('  note: fewer than 1M MySQL events; raise --scale or --app-rate');
    const manifestPath = join(dir, 'manifest.json');
    writeFileSync(manifestPath, JSON.stringify({ config: manifest.config, inputs: manifest.inputs }));

    log(
      `bench: ${rounds} interleaved rounds of JSON.parse only, decode only, replay end to end (decode, merge, correlate, detect, SQLite state) on one thread, on two (replay2: a worker decodes) and on three (replay3: the state store also commits on a thread of its own), and DuckDB (one thread), each in its own process`,
    );
    const runs = await interleaved(manifestPath, rounds);
    const wall = (m: Mode) => median(runs[m].map((f) => f.wallMs));
    const cpu = (m: Mode) => median(runs[m].map((f) => f.cpuMs));
    const busy = (m: Mode) => median(runs[m].map((f) => f.mainBusyMs));
    const ratio = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;
    const records = runs.replay[0]!.records;
    const decoded = runs.decode[0]!.events!;
    for (const m of MODES) {
      log(
        `  ${m.padEnd(6)} median ${(wall(m) / 1000).toFixed(2)} s wall, ${(cpu(m) / 1000).toFixed(2)} s CPU${busyText(m, busy(m))}; ${ratio(wall('parse'), wall(m))}x JSON.parse-only by wall time, ${ratio(cpu('parse'), cpu(m))}x by CPU time`,
      );
    }
    const d = runs.duckdb[0]!;
    log(`  DuckDB: ${d.records} proxied connects joined, ${d.people} login names, ${d.bursts} bursts`);
    const throughput = {
      mysqlEvents,
      iamRecords: iamDeliveries,
      records,
      inputBytes: bytes,
      inputMB: mb(bytes),
      generateSeconds: Math.round(generateMs) / 1000,
      rounds,
      parseOnlyWallMs: Math.round(wall('parse')),
      parseOnlyCpuMs: Math.round(cpu('parse')),
      endToEndWallMs: Math.round(wall('replay')),
      endToEndCpuMs: Math.round(cpu('replay')),
      duckdbWallMs: Math.round(wall('duckdb')),
      duckdbCpuMs: Math.round(cpu('duckdb')),
      // Per event, as decoded from the same bytes (ListEvents pages are one JSON text of many events).
      parseOnlyEventsPerSec: rate(decoded, wall('parse')),
      parseOnlyMBPerSec: Math.round(mb(bytes) / (wall('parse') / 1000)),
      decodeEventsPerSec: rate(decoded, wall('decode')),
      endToEndEventsPerSec: rate(records, wall('replay')),
      endToEndEventsPerCpuSec: rate(records, cpu('replay')),
      endToEndMBPerSec: Math.round(mb(bytes) / (wall('replay') / 1000)),
      /** End to end over JSON.parse-only on the same bytes, medians of wall time (budget: >= 0.5). */
      ratio: ratio(wall('parse'), wall('replay')),
      /** The same by CPU time: what load from other processes changes least. */
      cpuRatio: ratio(cpu('parse'), cpu('replay')),
      /** End to end on two threads (one decoding) over JSON.parse-only, medians of wall time. */
      twoThreadRatio: ratio(wall('parse'), wall('replay2')),
      twoThreadPeakRssMB: Math.max(...runs.replay2.map((f) => f.peakRssMB)),
      /** The same on three threads (a worker decodes, the store commits on a thread of its own). */
      threeThreadRatio: ratio(wall('parse'), wall('replay3')),
      threeThreadPeakRssMB: Math.max(...runs.replay3.map((f) => f.peakRssMB)),
      /**
       * The main thread's busy time on one, two and three threads (medians): the wall time to
       * expect where the other threads have cores of their own.
       */
      mainBusyMs: Math.round(busy('replay')),
      twoThreadMainBusyMs: Math.round(busy('replay2')),
      threeThreadMainBusyMs: Math.round(busy('replay3')),
      decodeVsParseRatio: ratio(wall('parse'), wall('decode')),
      /** DuckDB's batch answer over JSON.parse-only of the same bytes (one thread), medians of wall time. */
      duckdbRatio: ratio(wall('parse'), wall('duckdb')),
      duckdbCpuRatio: ratio(cpu('parse'), cpu('duckdb')),
      /** Replay's own process, at its highest over the rounds. */
      peakRssMB: Math.max(...runs.replay.map((f) => f.peakRssMB)),
      deadLetters: runs.decode[0]!.dead!,
      /** Records that concern nothing the pipeline reads (other services' OCI Audit events), counted. */
      ignored: runs.decode[0]!.ignored!,
      alerts: runs.replay[0]!.alerts!,
      node: process.version,
    };
    if (values.throughput) {
      process.stdout.write(`${JSON.stringify(throughput)}\n`);
      return;
    }

    log('bench: 100,000 open sessions (connects without disconnects, group-proxied and 1-to-1)');
    const open = await openSessionsBench(100_000);
    log(
      `  ${open.sessions.toLocaleString('en-US')} open sessions in ${(open.ms / 1000).toFixed(1)} s: ${rate(open.sessions, open.ms).toLocaleString('en-US')}/s; heap ${open.heapMB} MB, RSS ${open.rssMB} MB`,
    );

    log(
      'bench: collector (audit_log_read() over the MySQL protocol from servers in another process, to SQLite state)',
    );
    const collected = await collectorBench(manifest.inputs, manifest.config, dir, 200_000);
    log(
      `  ${collected.records.toLocaleString('en-US')} records from ${collected.instances} instances in ${(collected.ms / 1000).toFixed(1)} s: ${rate(collected.records, collected.ms).toLocaleString('en-US')}/s; reading and decoding alone (driver, network, JSON) takes ${Math.round(collected.readShare * 100)}% of that`,
    );
    gc();

    log('bench: first-seen baselines of 1,000 people (20 working days on their habits)');
    const baselines = await baselinesBench(1000);
    log(
      `  ${baselines.sessions.toLocaleString('en-US')} sessions, ${baselines.rows.toLocaleString('en-US')} baseline rows: heap ${baselines.heapMB} MB, ${baselines.storedKB.toLocaleString('en-US')} KB stored`,
    );

    const sync = await syncBench();

    log('bench: function cold start (process start to FDK socket ready)');
    const coldStartMs = await functionColdStartMs(5);
    log(`  ${coldStartMs} ms (average of 5)`);

    const figures = {
      ...throughput,
      openSessions: open.sessions,
      openSessionsEventsPerSec: rate(open.sessions, open.ms),
      openSessionsHeapMB: open.heapMB,
      openSessionsRssMB: open.rssMB,
      collectorRecords: collected.records,
      collectorEventsPerSec: rate(collected.records, collected.ms),
      /** Reading and decoding alone, over the whole collect (pipeline and state included). */
      collectorReadShare: Math.round(collected.readShare * 1000) / 1000,
      baselinePeople: baselines.people,
      baselineRows: baselines.rows,
      baselineHeapMB: baselines.heapMB,
      baselineStoredKB: baselines.storedKB,
      functionColdStartMs: coldStartMs,
      syncRequests: sync.requests,
      syncSeconds: sync.seconds,
      functionBundleBytes: statSync(join(__dirname, 'func.cjs')).size,
    };
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  } finally {
    if (values.keep) log(`bench: inputs kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

/** One sync of 1,000 users in 50 groups and 50 DB systems in 10 compartments: requests and time. */
async function syncBench(): Promise<{ requests: number; seconds: number }> {
  const fleet = { users: 1000, groups: 50, dbSystems: 50, compartments: 10 };
  log(
    `bench: sync (${fleet.users} users in ${fleet.groups} groups, ${fleet.dbSystems} DB systems in ${fleet.compartments} compartments)`,
  );
  const cost = await syncCostBench(fleet);
  const requests = Object.values(cost.requests).reduce((a, b) => a + b, 0);
  log(
    `  ${requests} OCI API requests (${Object.entries(cost.requests)
      .map(([op, n]) => `${op} ${n}`)
      .join(
        ', ',
      )}; the endpoint received ${cost.received}), ${cost.sqlStatements} SQL statements, ${cost.memberships} memberships, in ${(cost.ms / 1000).toFixed(1)} s; the snapshot is ${cost.snapshotKB} KB, read back in ${cost.snapshotReadMs} ms`,
  );
  return { requests, seconds: cost.ms / 1000 };
}

const COLLECTOR_PASSWORD = 'bench-collector';

/** Raw audit events of an input (an audit file or collector records; gap records left out). */
function rawAuditEvents(path: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    const r = JSON.parse(line.endsWith(',') ? line.slice(0, -1) : line) as Record<string, unknown>;
    if (r.source === 'audit-gap') continue;
    out.push(r.source === 'mysql-audit' ? (r.event as Record<string, unknown>) : r);
  }
  return out;
}

/** Child mode: one HeatWave-like server per events file; prints their ports; runs until stdin ends. */
async function auditServers(files: string[]): Promise<void> {
  const servers = await Promise.all(
    files.map((f) =>
      HeatWaveTestServer.start({
        accounts: [{ user: 'bench', password: COLLECTOR_PASSWORD, grants: ['AUDIT_ADMIN'] }],
        audit: new AuditLog(JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>[]),
      }),
    ),
  );
  process.stdout.write(`${JSON.stringify(servers.map((s) => s.address.port))}\n`);
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.on('end', resolve));
  await Promise.all(servers.map((s) => s.stop()));
}

/**
 * Collects at least `minEvents` audit events of the fleet's first DB systems from servers in a
 * child process (so the server's work is not counted), through the pipeline into SQLite.
 */
async function collectorBench(
  inputs: string[],
  configPath: string,
  dir: string,
  minEvents: number,
): Promise<{ records: number; instances: number; ms: number; readShare: number }> {
  const { config: base } = await loadConfigFile(configPath);
  const chosen: { db: string; file: string }[] = [];
  let events = 0;
  for (const db of base.dbSystems) {
    if (events >= minEvents) break;
    const input = inputs.find((p) => !p.includes('/iam/') && basename(p).split('.')[0] === db.name);
    if (!input) continue;
    const raw = rawAuditEvents(input);
    const file = join(dir, `${db.name}.events.json`);
    writeFileSync(file, JSON.stringify(raw));
    chosen.push({ db: db.id, file });
    events += raw.length;
  }
  const child = spawn(process.execPath, [__filename, '--audit-servers', ...chosen.map((c) => c.file)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  try {
    const ports = await new Promise<number[]>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c;
        if (out.includes('\n')) resolve(JSON.parse(out) as number[]);
      });
      child.on('exit', () => reject(new Error('the audit servers exited')));
    });
    const { config, rules } = validateConfig({
      ...(parse(readFileSync(configPath, 'utf8')) as object),
      collector: {
        user: 'bench',
        password: { env: 'BENCH_COLLECTOR_PW' },
        tls: 'disabled',
        allowPlaintext: true,
      },
    });
    for (const db of config.dbSystems) {
      const i = chosen.findIndex((c) => c.db === db.id);
      db.endpoints = i < 0 ? [] : [{ host: '127.0.0.1', port: ports[i]!, role: 'primary' }];
    }
    const read = secretReader({ BENCH_COLLECTOR_PW: COLLECTOR_PASSWORD }, () =>
      Promise.reject(new Error('no vault')),
    );
    const targets = instanceTargets(config);
    // Reading alone: every instance drained at once, records decoded, nothing else.
    let started = performance.now();
    await Promise.all(
      targets.map(async (t) => {
        const session = await connectInstance(t, read);
        try {
          const reader = await AuditLogReader.open(session, t);
          for await (const batch of reader.read({}))
            for (const r of batch.records) decodeValue(r.record, { source: 'bench' });
        } finally {
          await session.close();
        }
      }),
    );
    const readMs = performance.now() - started;
    gc();
    const store = SqliteStore.open(join(dir, 'collect.sqlite'));
    const pipeline = await Pipeline.open({ config, rules, store });
    started = performance.now();
    const result = await collect({ pipeline, targets, connect: (t) => connectInstance(t, read) });
    await pipeline.finish();
    const ms = performance.now() - started;
    await store.close();
    const failed = result.instances.filter((r) => r.error);
    if (failed.length > 0) throw new Error(`collector bench: ${failed[0]!.error}`);
    return { records: result.records, instances: result.instances.length, ms, readShare: readMs / ms };
  } finally {
    child.stdin.end();
  }
}

/** Average time from spawning dist/func.cjs as Fn does to its listener socket appearing. */
async function functionColdStartMs(runs: number): Promise<number> {
  let total = 0;
  for (let i = 0; i < runs; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'hwaudit-bench-fn-'));
    const socket = join(dir, 'lsnr.sock');
    const started = performance.now();
    const child = spawn(process.execPath, [join(__dirname, 'func.cjs')], {
      env: {
        ...process.env,
        FN_FORMAT: 'http-stream',
        FN_LISTENER: `unix:${socket}`,
        HWAUDIT_CONFIG: '{}',
        HWAUDIT_STATE: join(dir, 's.sqlite'),
      },
      stdio: 'ignore',
    });
    try {
      const deadline = started + 30_000;
      while (!existsSync(socket)) {
        if (performance.now() > deadline) throw new Error('the function did not start listening within 30 s');
        await new Promise((r) => setTimeout(r, 2));
      }
      total += performance.now() - started;
    } finally {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return Math.round(total / runs);
}

/**
 * Memory and speed with `n` sessions open at once: connects (a third 1-to-1, the rest through
 * group mappings, attributed by login name) that never disconnect, on the standard test fleet.
 */
async function openSessionsBench(
  n: number,
): Promise<{ sessions: number; ms: number; heapMB: number; rssMB: number }> {
  const { config, rules } = validateConfig(baseConfig());
  const dir = mkdtempSync(join(tmpdir(), 'hwaudit-bench-open-'));
  const store = SqliteStore.open(join(dir, 'state.sqlite'));
  try {
    const pipeline = await Pipeline.open({ config, rules, store, durablePending: false });
    gc();
    const users = ['alice', 'bob', 'dave'];
    const t = performance.now();
    for (let i = 0; i < n; i += 10_000) {
      const batch: DecodedItem[] = [];
      for (let c = i; c < Math.min(n, i + 10_000); c++) {
        const account = c % 3 === 0 ? 'carol' : c % 3 === 1 ? 'dba_proxy' : 'dev_proxy';
        const event = db.connect({
          at: T0 + c * 50,
          conn: c + 1,
          account,
          user: account === 'carol' ? 'carol' : users[c % 3]!,
          ip: `10.${(c >> 16) & 255}.${(c >> 8) & 255}.${c & 255}`,
          proxy: account !== 'carol',
        });
        batch.push({ type: 'event', event });
      }
      await pipeline.ingest(batch);
    }
    await pipeline.finish();
    const ms = performance.now() - t;
    gc();
    const heapMB = Math.round(process.memoryUsage().heapUsed / 1e6);
    const rssMB = Math.round(process.memoryUsage().rss / 1e6);
    if (pipeline.openSessions !== n)
      throw new Error(`expected ${n} open sessions, got ${pipeline.openSessions}`);
    return { sessions: pipeline.openSessions, ms, heapMB, rssMB };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Memory of the first-seen baselines (access.new-source, access.new-database, access.unusual-hour
 * at their defaults) for `people` people, each working 20 days, four sessions a day, on their
 * habits: two networks, six of 200 DB systems with one or two accounts each, daytime hours.
 */
async function baselinesBench(
  people: number,
): Promise<{ people: number; sessions: number; rows: number; heapMB: number; storedKB: number }> {
  const { config, rules } = validateConfig(baseConfig());
  const firstSeen = rules.filter((r) => /^access\.(new-source|new-database|unusual-hour)$/.test(r.rule.id));
  const dbConfig = config.dbSystems[0]!;
  const rng = new Rng(2026);
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const cache = new EntityCache();
  const detector = new Detector(firstSeen, cache);
  let sessions = 0;
  for (let p = 0; p < people; p++) {
    const person = { id: `ocid1.user.oc1..bench${p}`, name: `person${p}@example.com` };
    const networks = [`10.8.${p % 250}.${10 + (p % 200)}`, `10.9.${rng.int(0, 255)}.${rng.int(1, 254)}`];
    const access = Array.from({ length: 6 }, () => {
      const db = rng.int(1, 200);
      return { db, accounts: rng.chance(0.3) ? ['dev_proxy', 'dba_proxy'] : ['dev_proxy'] };
    });
    for (let day = 0; day < 20; day++) {
      for (let k = 0; k < 4; k++) {
        const ts = T0 - 9 * 3_600_000 + day * 86_400_000 + rng.int(7 * 60, 19 * 60) * 60_000;
        const where = rng.pick(access);
        const account = rng.pick(where.accounts);
        const session = benchSession(sessions++, person, ts, rng.pick(networks), where.db, account);
        detector.run('session', {
          session,
          authenticated: authenticationOf(session),
          db: dbConfig,
          result: {
            identity: person,
            group: null,
            proxied: true,
            attribution: session.attribution,
          },
        });
      }
    }
  }
  await detector.finalize({ known: async () => new Set(), load: async () => [] });
  cache.drainChanges();
  gc();
  const heapMB = Math.round(((process.memoryUsage().heapUsed - heapBefore) / 1e6) * 10) / 10;
  let stored = 0;
  for (const [key, body] of cache.entries('baseline')) stored += key.length + JSON.stringify(body).length;
  return { people, sessions, rows: cache.size('baseline'), heapMB, storedKB: Math.round(stored / 1000) };
}

function benchSession(
  n: number,
  identity: { id: string; name: string },
  ts: number,
  ip: string,
  db: number,
  account: string,
): OpenedSession {
  const dbSystem = { id: `ocid1.mysqldbsystem.oc1..bench${db}`, name: `bench-${db}` };
  return {
    id: `${dbSystem.id}:${n}:${ts}`,
    dbSystem,
    connectionId: n,
    connectTime: new Date(ts).toISOString(),
    connectTs: ts,
    outcome: 'success',
    status: 0,
    login: { user: identity.name, os: '', ip, proxy: "''@'%'" },
    account: { user: account, host: '%' },
    sourceIp: ip,
    identity,
    group: null,
    mysqlAccount: `${account}@%`,
    proxied: true,
    attribution: { method: 'login-name', confidence: 'asserted', evidence: [] },
    breakGlassGrant: null,
    counts: { queries: 0, tableAccess: 0, changeUser: 0, failedStatements: 0 },
    connectKey: `bench:${n}`,
  };
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
