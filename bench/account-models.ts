// What the account models cost a long audited history: a fleet of DB systems whose accounts are
// rotated, granted to, locked and unlocked by audited statements, with group mappings changed now
// and then, run through the pipeline into SQLite state. Times the whole stream and, within it, the
// reads of the account models each account statement makes: the group mappings in force before
// the change (`Mappings.groupTargets`) and the proxied account of the user it changes
// (`Mappings.proxiedTarget`); and, for each mapping change, the accounts each of its entries names
// that are open to logins without IAM (`Mappings.openAccountsOf`).
// Progress goes to stderr; the last line on stdout is one JSON object with the figures (medians:
// wall and CPU time of the stream, wall time in each read and its share of the stream's).
//
//   npm run bench:accounts -- [--dbs N] [--accounts N] [--statements N] [--entries N]
//                             [--mapping-changes N] [--runs R]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { validateConfig } from '../shared/config/load-config.js';
import { Mappings } from '../shared/correlate/mappings.js';
import { db, T0 } from '../shared/detect/timeline.js';
import { type DecodedItem, Pipeline } from '../shared/pipeline.js';
import { SqliteStore } from '../shared/state/sqlite-store.js';

const log = (line: string) => process.stderr.write(`${line}\n`);
const gc = () => (globalThis as { gc?: () => void }).gc?.();
const { values } = parseArgs({
  options: {
    dbs: { type: 'string', default: '50' },
    accounts: { type: 'string', default: '20000' },
    statements: { type: 'string', default: '200000' },
    entries: { type: 'string', default: '500' },
    'mapping-changes': { type: 'string', default: '200' },
    runs: { type: 'string', default: '3' },
  },
  allowPositionals: true,
});
const DBS = Number(values.dbs);
const ACCOUNTS_PER_DB = Math.floor(Number(values.accounts) / DBS);
const STATEMENTS = Number(values.statements);
const ENTRIES_PER_DB = Math.max(1, Math.floor(Number(values.entries) / DBS));
const MAPPING_CHANGES = Number(values['mapping-changes']);
const RUNS = Number(values.runs);
/** Group mappings per DB system: anonymous accounts on these hosts, the entries shared among them. */
const MAPPING_HOSTS = ['%', '10.%', '172.16.%', '192.168.%', 'localhost'];
/** Proxied accounts per DB system: one per entry, of user `proxy_<n>`. */
const PROXIES = ENTRIES_PER_DB;
const APPS = ACCOUNTS_PER_DB - MAPPING_HOSTS.length - PROXIES;
const SPAN = 30 * 86_400_000;
const TENANCY = 'ocid1.tenancy.oc1..bench';
const dbId = (d: number) => `ocid1.mysqldbsystem.oc1..acct${d}`;
const groupId = (g: number) => `ocid1.group.oc1..acct${g}`;

/** The mapping of host `h` (its index) on a DB system, its entries naming proxies from `shift` on. */
function mappingOf(h: number, shift: number): string {
  const entries: Record<string, string> = {};
  for (let e = h; e < ENTRIES_PER_DB; e += MAPPING_HOSTS.length) {
    const proxy = (e + shift) % PROXIES;
    entries[groupId(e)] = proxy % 2 === 0 ? `proxy_${proxy}` : `proxy_${proxy}@%`;
  }
  return JSON.stringify({ tenancy: TENANCY, group_mapping: entries });
}

function config() {
  return validateConfig({
    tenancy: TENANCY,
    directory: {
      snapshotTime: '2026-11-01T00:00:00Z',
      users: [{ id: 'ocid1.user.oc1..acct', name: 'dba@example.com' }],
      groups: Array.from({ length: ENTRIES_PER_DB }, (_, g) => ({ id: groupId(g), name: `Group${g}` })),
      memberships: [],
    },
    dbSystems: Array.from({ length: DBS }, (_, d) => ({
      id: dbId(d),
      name: `acct-${d}`,
      iamOnly: true,
      allowedLocalAccounts: ['admin@%'],
      accounts: [
        ...MAPPING_HOSTS.map((host, h) => ({
          user: '',
          host,
          plugin: 'authentication_oci',
          authenticationString: mappingOf(h, 0),
        })),
        ...Array.from({ length: PROXIES }, (_, p) => ({
          user: `proxy_${p}`,
          host: '%',
          plugin: 'mysql_no_login',
        })),
        ...Array.from({ length: APPS }, (_, a) => ({
          user: `app_${a}`,
          host: '%',
          plugin: 'caching_sha2_password',
        })),
      ],
    })),
  });
}

/** A deterministic stream: xorshift, so that every run and every build sees the same statements. */
function statements(): DecodedItem[] {
  let s = 2026;
  const next = (n: number) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % n;
  };
  const items: DecodedItem[] = [];
  for (let d = 0; d < DBS; d++)
    items.push({ type: 'event', event: db.connect({ at: T0, conn: 1, account: 'admin', db: dbId(d) }) });
  const every = MAPPING_CHANGES > 0 ? Math.floor(STATEMENTS / MAPPING_CHANGES) : Number.POSITIVE_INFINITY;
  for (let i = 0; i < STATEMENTS; i++) {
    const at = T0 + 1000 + Math.floor((i * SPAN) / STATEMENTS);
    const d = next(DBS);
    const app = `'app_${next(APPS)}'@'%'`;
    const roll = next(100);
    const [sqlCommand, sql] =
      i % every === every - 1
        ? (() => {
            const h = next(MAPPING_HOSTS.length);
            const mapping = mappingOf(h, 1 + next(PROXIES));
            return [
              'alter_user',
              `ALTER USER ''@'${MAPPING_HOSTS[h]}' IDENTIFIED WITH 'authentication_oci' AS '${mapping}'`,
            ];
          })()
        : roll < 55
          ? ['alter_user', `ALTER USER ${app} IDENTIFIED BY <secret>`]
          : roll < 95
            ? ['grant', `GRANT SELECT ON sales.* TO ${app}`]
            : roll < 97
              ? ['alter_user', `ALTER USER ${app} ACCOUNT LOCK`]
              : roll < 99
                ? ['alter_user', `ALTER USER ${app} ACCOUNT UNLOCK`]
                : ['alter_user', `ALTER USER 'proxy_${next(PROXIES)}'@'%' IDENTIFIED BY <secret>`];
    items.push({
      type: 'event',
      event: db.query({ at, conn: 1, account: 'admin', sqlCommand, sql, db: dbId(d) }),
    });
  }
  return items;
}

/**
 * Time spent in (and calls of) each probed method of `Mappings`, for the current run: calls from
 * outside the probed methods only, so that one calling another is not counted twice.
 */
const probes = new Map<string, { ms: number; calls: number }>();
let probing = false;
function probe(name: 'groupTargets' | 'proxiedTarget' | 'openAccountsOf'): void {
  const proto = Mappings.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const original = proto[name]!;
  proto[name] = function (this: unknown, ...args: unknown[]) {
    if (probing) return original.apply(this, args);
    probing = true;
    const t = performance.now();
    try {
      return original.apply(this, args);
    } finally {
      const p = probes.get(name) ?? { ms: 0, calls: 0 };
      p.ms += performance.now() - t;
      p.calls++;
      probes.set(name, p);
      probing = false;
    }
  };
}

type Run = { ms: number; cpuMs: number; alerts: number; probes: typeof probes };

async function run(items: DecodedItem[]): Promise<Run> {
  probes.clear();
  const { config: cfg, rules } = config();
  const dir = mkdtempSync(join(tmpdir(), 'hwaudit-bench-accounts-'));
  const store = SqliteStore.open(join(dir, 'state.sqlite'));
  try {
    const end = T0 + SPAN + 3_600_000;
    const pipeline = await Pipeline.open({
      config: cfg,
      rules,
      store,
      durablePending: false,
      now: () => end,
    });
    gc();
    const t = performance.now();
    const cpu = process.cpuUsage();
    let alerts = 0;
    for (let i = 0; i < items.length; i += 10_000) {
      alerts += (await pipeline.ingest(items.slice(i, i + 10_000))).length;
    }
    alerts += (await pipeline.finish()).length;
    const { user, system } = process.cpuUsage(cpu);
    return { ms: performance.now() - t, cpuMs: (user + system) / 1000, alerts, probes: new Map(probes) };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (ms: number) => Math.round(ms);

async function main(): Promise<void> {
  log(
    `bench: ${DBS} DB systems, ${ACCOUNTS_PER_DB * DBS} accounts, ${ENTRIES_PER_DB * DBS} mapping entries, ` +
      `${STATEMENTS} account statements (${MAPPING_CHANGES} mapping changes)`,
  );
  const items = statements();
  for (const name of ['groupTargets', 'proxiedTarget', 'openAccountsOf'] as const) probe(name);
  const runs: Run[] = [];
  for (let r = 0; r < RUNS; r++) {
    const result = await run(items);
    const parts = [...result.probes].map(([k, p]) => `${k} ${round(p.ms)} ms/${p.calls}`).join(', ');
    log(
      `bench: run ${r + 1}: ${round(result.ms)} ms (CPU ${round(result.cpuMs)} ms), ${result.alerts} alerts; ${parts}`,
    );
    runs.push(result);
  }
  const figure = (name: string) => ({
    ms: round(median(runs.map((r) => r.probes.get(name)?.ms ?? 0))),
    calls: runs[0]!.probes.get(name)?.calls ?? 0,
  });
  const totalMs = round(median(runs.map((r) => r.ms)));
  const cpuMs = round(median(runs.map((r) => r.cpuMs)));
  const paths = {
    groupTargets: figure('groupTargets'),
    proxiedTarget: figure('proxiedTarget'),
    openAccountsOf: figure('openAccountsOf'),
  };
  const share = (ms: number) => Math.round((ms / totalMs) * 1000) / 10;
  process.stdout.write(
    `${JSON.stringify({
      dbSystems: DBS,
      accounts: ACCOUNTS_PER_DB * DBS,
      mappingEntries: ENTRIES_PER_DB * DBS,
      statements: STATEMENTS,
      mappingChanges: MAPPING_CHANGES,
      alerts: runs[0]!.alerts,
      totalMs,
      cpuMs,
      ...paths,
      percent: Object.fromEntries(Object.entries(paths).map(([k, v]) => [k, share(v.ms)])),
    })}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
