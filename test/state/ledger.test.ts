// The queryable ledger, on both adapters: typed columns behind the documented views, queries by
// time, DB system and rule, the retention prune, delivery times, dead letters, and the upgrade of
// a store written before the ledger existed (its rows get their typed columns from their bodies).
import { beforeEach, describe, expect, it } from 'vitest';
import type { Alert } from '../../schemas/alert.js';
import { activeUntil, type Session } from '../../schemas/session.js';
import { addToCoverage, countInCoverage, emptyCoverage } from '../../shared/correlate/coverage.js';
import { at } from '../../shared/detect/timeline.js';
import {
  ALERT_FIELDS,
  DEAD_LETTER_FIELDS,
  type LedgerField,
  restoredSessionsSql,
  SESSION_FIELDS,
  SESSION_READ_COLUMNS,
} from '../../shared/state/ledger.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { collect } from '../helpers/collect.js';
import { describeMySql } from '../helpers/mysql-server.js';
import { incidentTimeline } from '../scenarios/scenario-fleet.js';
import {
  type Adapter,
  alert,
  type Backing,
  backingPerTest,
  batch,
  mysqlAdapter,
  runPipeline,
  session,
  sqliteAdapter,
  sqliteThreadAdapter,
} from './store-fixtures.js';

const OTHER_DB = { id: 'ocid1.mysqldbsystem.oc1..other', name: 'other-db' };
const iso = (ts: number) => new Date(ts).toISOString();
const DEAD = [
  {
    code: 'SCHEMA_INVALID' as const,
    source: "iam/o'brien.json",
    index: 3,
    path: ['data', 'identity', 0],
    message: 'OCI audit event: data.identity: expected object',
  },
  { code: 'JSON_INVALID' as const, source: 'mysql/prod.audit.log', line: 12, message: 'record truncated' },
];

function sessions(): Session[] {
  return [
    session('s1', at(0), {
      identity: { id: 'ocid1.user.oc1..alice', name: 'alice@example.com' },
      group: { id: 'ocid1.group.oc1..dba', name: 'DBAdmins' },
      // An API key someone else put on Alice was in force (she signed on herself: still corroborated).
      attribution: {
        method: 'login-name',
        confidence: 'corroborated',
        evidence: ['k1', 'iam-credential_change-1'],
        plantedCredentials: [
          {
            type: 'api-key',
            id: 'aa:bb',
            actor: { id: 'ocid1.user.oc1..admin', name: 'iam-admin' },
            time: iso(at(-5)),
            key: 'iam-credential_change-1',
          },
        ],
      },
      mfaFactor: 'TOTP',
      tables: ['shop.orders', 'we\'ird.t"able'],
      counts: { queries: 4, tableAccess: 2, changeUser: 0, failedStatements: 1 },
      disconnectTime: iso(at(9)),
    }),
    session('s2', at(10), {
      dbSystem: OTHER_DB,
      instance: 'replica-1',
      attribution: { method: 'unattributed', confidence: 'none', evidence: [], problem: 'no-evidence' },
    }),
    session('s3', at(20), {
      outcome: 'failed',
      status: 1045,
      proxied: false,
      account: { user: 'admin', host: '%' },
      mysqlAccount: 'admin@%',
      login: { user: '<img src=x>', os: '', ip: '203.0.113.9', proxy: '' },
      sourceIp: '203.0.113.9',
    }),
  ];
}

function alerts(): Alert[] {
  return [
    alert('a1', iso(at(1)), {
      rule: 'break-glass.used',
      identity: { principalId: 'ocid1.user.oc1..alice', name: 'alice@example.com', attribution: null },
      mysqlAccount: 'dba_proxy@%',
      loginUser: 'alice',
      group: { id: 'ocid1.group.oc1..bg', name: 'BreakGlass' },
      sourceIp: '10.0.0.5',
      details: { sessionId: 's1', grant: 'g1' },
    }),
    alert('a2', iso(at(11)), { rule: 'access.unattributed', severity: 'medium', dbSystem: OTHER_DB }),
    // Stored with a repeat already merged into it (within the same batch): the view counts both.
    alert('a3', iso(at(21)), {
      rule: 'auth.failure-burst',
      severity: 'medium',
      dbSystem: null,
      details: { occurrences: 2, lastTime: iso(at(24)) },
    }),
  ];
}

/** What a view row holds for a record: its fields' values (numbers as numbers). */
function expectedRow<T>(fields: readonly LedgerField<T>[], record: T): Record<string, unknown> {
  return Object.fromEntries(fields.map((f) => [f.name, f.value(record)]));
}

function normalized(rows: Record<string, unknown>[], fields: readonly LedgerField<never>[]) {
  const ints = new Set(fields.filter((f) => f.type === 'int').map((f) => f.name));
  return rows.map((r) =>
    Object.fromEntries(Object.entries(r).map(([k, v]) => [k, ints.has(k) && v !== null ? Number(v) : v])),
  );
}

/** A store as schema 3 (the release before the ledger) left it: bodies only. Released DDL, copied. */
const SCHEMA_3: Record<'sqlite' | 'mysql', string> = {
  sqlite: `CREATE TABLE entity (scope TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (scope, kind, key)) WITHOUT ROWID;
    CREATE TABLE pending (scope TEXT NOT NULL, key TEXT NOT NULL, ts INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (scope, key)) WITHOUT ROWID;
    CREATE TABLE seen (id INTEGER PRIMARY KEY, scope TEXT NOT NULL, bucket INTEGER NOT NULL, keys TEXT NOT NULL);
    CREATE INDEX seen_bucket ON seen (scope, bucket);
    CREATE TABLE sessions (id TEXT PRIMARY KEY, db TEXT NOT NULL, connect_ts INTEGER NOT NULL, open INTEGER NOT NULL, body TEXT NOT NULL);
    CREATE INDEX sessions_connect ON sessions (connect_ts);
    CREATE INDEX sessions_open ON sessions (open) WHERE open = 1;
    CREATE TABLE alerts (id TEXT PRIMARY KEY, rule TEXT NOT NULL, time TEXT NOT NULL, body TEXT NOT NULL, occurrences INTEGER NOT NULL DEFAULT 1, last_time TEXT);
    CREATE INDEX alerts_time ON alerts (time, id);
    CREATE TABLE deliveries (alert_id TEXT NOT NULL, sink TEXT NOT NULL, PRIMARY KEY (alert_id, sink)) WITHOUT ROWID;
    CREATE TABLE dead_letters (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
    CREATE TABLE holders (scope TEXT PRIMARY KEY, pid INTEGER NOT NULL, host TEXT NOT NULL, since TEXT NOT NULL, heartbeat INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE snapshots (id TEXT PRIMARY KEY, taken_at INTEGER NOT NULL, body TEXT NOT NULL);
    CREATE INDEX snapshots_taken ON snapshots (taken_at);
    PRAGMA user_version = 3;
    `,
  mysql: `CREATE TABLE entity (scope VARBINARY(255) NOT NULL, kind VARBINARY(255) NOT NULL, k VARBINARY(255) NOT NULL, long_key LONGTEXT NULL, body LONGTEXT NOT NULL, PRIMARY KEY (scope, kind, k)) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
    CREATE TABLE pending (scope VARBINARY(255) NOT NULL, k VARBINARY(255) NOT NULL, ts BIGINT NOT NULL, body LONGTEXT NOT NULL, PRIMARY KEY (scope, k)) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
    CREATE TABLE seen (id BIGINT NOT NULL AUTO_INCREMENT, scope VARBINARY(255) NOT NULL, bucket BIGINT NOT NULL, seen_keys LONGTEXT NOT NULL, PRIMARY KEY (id), KEY seen_bucket (scope, bucket)) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
    CREATE TABLE sessions (id VARBINARY(255) NOT NULL, db TEXT NOT NULL, connect_ts BIGINT NOT NULL, is_open TINYINT NOT NULL, body LONGTEXT NOT NULL, PRIMARY KEY (id), KEY sessions_connect (connect_ts, id), KEY sessions_open (is_open)) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
    CREATE TABLE alerts (id VARBINARY(255) NOT NULL, rule VARCHAR(255) NOT NULL, alert_time VARBINARY(64) NOT NULL, body LONGTEXT NOT NULL, occurrences INT NOT NULL DEFAULT 1, last_time VARCHAR(64) NULL, PRIMARY KEY (id), KEY alerts_time (alert_time, id)) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
    CREATE TABLE deliveries (alert_id VARBINARY(255) NOT NULL, sink VARBINARY(255) NOT NULL, PRIMARY KEY (alert_id, sink)) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
    CREATE TABLE dead_letters (seq BIGINT NOT NULL AUTO_INCREMENT, body LONGTEXT NOT NULL, PRIMARY KEY (seq)) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
    CREATE TABLE holders (scope VARBINARY(255) NOT NULL, pid INT NOT NULL, host VARCHAR(255) NOT NULL, since VARCHAR(64) NOT NULL, PRIMARY KEY (scope)) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
    CREATE TABLE snapshots (id VARBINARY(255) NOT NULL, taken_at BIGINT NOT NULL, body LONGTEXT NOT NULL, PRIMARY KEY (id), KEY snapshots_taken (taken_at, id)) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
    CREATE TABLE schema_version (version INT NOT NULL, applied_at BIGINT NOT NULL, PRIMARY KEY (version));
    INSERT INTO schema_version VALUES (1, 0), (2, 0), (3, 0);
    `,
};

/** SQL text of a value in an INSERT of the schema-3 fixture (MySQL strings also escape backslashes). */
function literal(dialect: 'sqlite' | 'mysql') {
  return (v: string | number) => {
    if (typeof v === 'number') return String(v);
    const text = dialect === 'mysql' ? v.replaceAll('\\', '\\\\') : v;
    return `'${text.replaceAll("'", "''")}'`;
  };
}

function ledger(adapter: Adapter) {
  const current = backingPerTest(adapter);
  let backing: Backing;
  beforeEach(() => {
    backing = current();
  });

  it('shows sessions, touched tables, findings and deliveries in the documented views', async () => {
    const store = await backing.open();
    const ss = sessions();
    const as = alerts();
    await store.commit(batch({ sessions: ss, alerts: as }));
    await store.commit(batch({ alertUpdates: [{ id: 'a2', occurrences: 3, lastTime: iso(at(15)) }] }));
    const before = Date.now();
    await store.markDelivered('siem', ['a1', 'a2']);

    const sessionRows = await backing.sql('SELECT * FROM audit_sessions ORDER BY connect_ts');
    expect(normalized(sessionRows, SESSION_FIELDS)).toEqual(ss.map((s) => expectedRow(SESSION_FIELDS, s)));
    const findingRows = await backing.sql('SELECT * FROM audit_findings ORDER BY finding_ts');
    const stored = await collect(store.alerts());
    expect(stored[1]?.details).toMatchObject({ occurrences: 3 });
    expect(normalized(findingRows, ALERT_FIELDS)).toEqual(stored.map((a) => expectedRow(ALERT_FIELDS, a)));
    expect(findingRows[0]).toMatchObject({
      session_id: 's1',
      rule: 'break-glass.used',
      person_name: 'alice@example.com',
    });

    expect(
      await backing.sql(
        'SELECT session_id, table_name, person_name FROM audit_session_tables ORDER BY table_name',
      ),
    ).toEqual([
      { session_id: 's1', table_name: 'shop.orders', person_name: 'alice@example.com' },
      { session_id: 's1', table_name: 'we\'ird.t"able', person_name: 'alice@example.com' },
    ]);
    const deliveries = await backing.sql(
      'SELECT finding_id, sink, delivered_ts FROM audit_deliveries ORDER BY finding_id',
    );
    expect(deliveries.map((d) => [d.finding_id, d.sink])).toEqual([
      ['a1', 'siem'],
      ['a2', 'siem'],
    ]);
    for (const d of deliveries) expect(Number(d.delivered_ts)).toBeGreaterThanOrEqual(before);

    // Dead letters: each field of the body in its column, and when it was stored.
    await store.commit(batch({ deadLetters: DEAD }));
    const letters = await collect(store.deadLetters());
    expect(letters.map(({ seq, storedTime, ...d }) => d)).toEqual(DEAD);
    for (const d of letters) expect(Date.parse(d.storedTime!)).toBeGreaterThanOrEqual(before);
    const deadRows = await backing.sql('SELECT * FROM audit_dead_letters ORDER BY seq');
    expect(normalized(deadRows, DEAD_LETTER_FIELDS)).toEqual(
      letters.map((d) => ({
        ...expectedRow(DEAD_LETTER_FIELDS, d),
        field_path: d.path === undefined ? null : expect.any(String),
      })),
    );
    // The path as JSON text: MySQL spaces it, SQLite does not.
    expect(deadRows.map((r) => (r.field_path === null ? null : JSON.parse(r.field_path as string)))).toEqual([
      ['data', 'identity', 0],
      null,
    ]);

    // A session that goes on is updated in place; its tables only grow.
    const more = { ...ss[0]!, tables: ['shop.orders', 'shop.refunds', 'we\'ird.t"able'] };
    await store.commit(batch({ sessions: [more] }));
    expect(
      await backing.sql("SELECT COUNT(*) AS n FROM audit_session_tables WHERE session_id = 's1'"),
    ).toEqual([{ n: expect.anything() }]);
    expect(Number((await backing.sql('SELECT COUNT(*) AS n FROM session_tables'))[0]!.n)).toBe(3);
  });

  it("counts the planted credentials of a session's connect after a change_user to another person", async () => {
    const store = await backing.open();
    const s1 = sessions()[0]!;
    const { login, account, mysqlAccount, identity, group, proxied, attribution, breakGlassGrant } = s1;
    s1.connected = { login, account, mysqlAccount, identity, group, proxied, attribution, breakGlassGrant };
    s1.attribution = { method: 'local-account', confidence: 'verified', evidence: ['k2'] };
    s1.identity = null;
    await store.commit(batch({ sessions: [s1] }));
    expect(
      await backing.sql("SELECT planted_credentials FROM audit_sessions WHERE session_id = 's1'"),
    ).toEqual([{ planted_credentials: 1 }]);
  });

  it('shows a session its server ended (no disconnect logged) as ended, with how, in the view and when read back', async () => {
    const store = await backing.open();
    const s1 = sessions()[0]!;
    delete s1.disconnectTime;
    await store.commit(batch({ sessions: [s1] }));
    const view = () =>
      backing.sql("SELECT disconnect_time, end_reason FROM audit_sessions WHERE session_id = 's1'");
    expect(await view()).toEqual([{ disconnect_time: null, end_reason: null }]);
    s1.disconnectTime = iso(at(30));
    s1.endReason = 'server-restart';
    await store.commit(batch({ sessions: [s1] }));
    expect(await view()).toEqual([{ disconnect_time: iso(at(30)), end_reason: 'server-restart' }]);
    const rows = await backing.sql("SELECT * FROM audit_sessions WHERE session_id = 's1'");
    expect(normalized(rows, SESSION_FIELDS)).toEqual([expectedRow(SESSION_FIELDS, s1)]);
    // Ended, it is no longer restored as open; read back, it says how it ended.
    expect(await store.loadSessions(at(40))).toEqual([]);
    expect((await collect(store.sessions())).map((s) => [s.disconnectTime, s.endReason])).toEqual([
      [iso(at(30)), 'server-restart'],
    ]);
  });

  it('reads sessions and alerts by time range, DB system and rule', async () => {
    const store = await backing.open();
    await store.commit(batch({ sessions: sessions(), alerts: alerts() }));
    const ids = async (items: AsyncIterable<{ id: string }>) => (await collect(items)).map((x) => x.id);
    expect(await ids(store.sessions())).toEqual(['s1', 's2', 's3']);
    expect(await ids(store.sessions({ from: at(10) }))).toEqual(['s2', 's3']);
    expect(await ids(store.sessions({ from: at(0), to: at(20) }))).toEqual(['s1', 's2']);
    expect(await ids(store.sessions({ dbSystem: OTHER_DB.id }))).toEqual(['s2']);
    expect(await ids(store.sessions({ to: at(0) }))).toEqual([]);
    expect(await ids(store.alerts({ from: at(1), to: at(21) }))).toEqual(['a1', 'a2']);
    expect(await ids(store.alerts({ rules: ['auth.failure-burst', 'break-glass.used'] }))).toEqual([
      'a1',
      'a3',
    ]);
    expect(await ids(store.alerts({ rules: [] }))).toEqual([]);
    expect(await ids(store.alerts({ dbSystem: OTHER_DB.id, from: at(0) }))).toEqual(['a2']);
  });

  it('pages through a large range in order, with filters', async () => {
    const store = await backing.open();
    const many = Array.from({ length: 2300 }, (_, i) =>
      session(
        `p${String((i * 7919) % 2300).padStart(5, '0')}`,
        at(i % 9),
        i % 2 ? { dbSystem: OTHER_DB } : {},
      ),
    );
    await store.commit(batch({ sessions: many }));
    const wanted = many
      .filter((s) => s.dbSystem.id === OTHER_DB.id && s.connectTs >= at(2))
      .sort((x, y) => x.connectTs - y.connectTs || (x.id < y.id ? -1 : 1))
      .map((s) => s.id);
    const got = (await collect(store.sessions({ from: at(2), dbSystem: OTHER_DB.id }))).map((s) => s.id);
    expect(got).toEqual(wanted);
  });

  it('keeps what the pipeline stores for auditRetention (in event time), then drops it', async () => {
    const store = await backing.open();
    const events = incidentTimeline();
    const last = Math.max(...events.map((e) => e.ts));
    await runPipeline(store, [events], {
      config: { lateness: 'PT1M', lookback: 'PT1H', auditRetention: 'PT3H' },
    });
    const horizon = last - 3 * 3_600_000;
    // A session still open, active within the retention (all are), keeps its row.
    const keeps = (x: Session) => x.connectTs >= horizon || opened(x);
    const kept = await collect(store.sessions());
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.every(keeps)).toBe(true);
    const everything = SqliteStore.open(':memory:');
    await runPipeline(everything, [events], { config: { lateness: 'PT1M' } });
    const all = await collect(everything.sessions());
    expect(kept.length).toBeLessThan(all.length);
    expect(kept.map((x) => x.id)).toEqual(all.filter(keeps).map((x) => x.id));
    expect((await collect(store.alerts())).every((a) => Date.parse(a.time) >= horizon)).toBe(true);
    await everything.close();
  });

  it('prunes sessions, their tables, alerts and their deliveries older than the horizon', async () => {
    const store = await backing.open();
    await store.commit(batch({ sessions: sessions(), alerts: alerts() }));
    await store.markDelivered('siem', ['a1', 'a2', 'a3']);
    await store.commit(batch({ pruneLedgerBefore: at(10) }));
    expect((await collect(store.sessions())).map((s) => s.id)).toEqual(['s2', 's3']);
    expect((await collect(store.alerts())).map((a) => a.id)).toEqual(['a2', 'a3']);
    expect(Number((await backing.sql('SELECT COUNT(*) AS n FROM audit_session_tables'))[0]!.n)).toBe(0);
    expect(
      (await backing.sql('SELECT finding_id FROM audit_deliveries ORDER BY finding_id')).map(
        (r) => r.finding_id,
      ),
    ).toEqual(['a2', 'a3']);
    expect(await store.knownAlerts(['a1', 'a2'])).toEqual(new Set(['a2']));
  });

  it('keeps an alert raised before the horizon whose repeats went on past it, with its deliveries', async () => {
    const store = await backing.open();
    await store.commit(batch({ alerts: alerts() }));
    await store.markDelivered('siem', ['a1']);
    // a1's repeats, merged within its rule's suppression window, went on until after the horizon;
    // pruned, the next repeat would be merged into a row that is gone.
    await store.commit(batch({ alertUpdates: [{ id: 'a1', occurrences: 9, lastTime: iso(at(12)) }] }));
    await store.commit(batch({ pruneLedgerBefore: at(10) }));
    expect((await collect(store.alerts())).map((a) => a.id)).toEqual(['a1', 'a2', 'a3']);
    expect((await backing.sql('SELECT finding_id FROM audit_deliveries')).map((r) => r.finding_id)).toEqual([
      'a1',
    ]);
    // Once its last repeat is before the horizon too, it goes.
    await store.commit(batch({ pruneLedgerBefore: at(13) }));
    expect((await collect(store.alerts())).map((a) => a.id)).toEqual(['a3']);
    // A horizon before any time a date can hold (a pipeline that has seen nothing yet) prunes nothing.
    await store.commit(batch({ pruneLedgerBefore: -8.64e15 - 400 * 86_400_000 }));
    expect((await collect(store.alerts())).map((a) => a.id)).toEqual(['a3']);
  });

  it('keeps the typed columns and their indexes in step with a session updated in place', async () => {
    const store = await backing.open();
    const s1 = sessions()[0]!;
    delete s1.disconnectTime;
    const { identity } = s1;
    s1.identity = null;
    const found = async (where: string) =>
      (await backing.sql(`SELECT session_id FROM audit_sessions WHERE ${where}`)).map((r) =>
        String(r.session_id),
      );
    // After each commit, the row's typed columns are the session's (as a first write gives them).
    const commit = async (change: (s: Session) => void) => {
      change(s1);
      await store.commit(batch({ sessions: [s1] }));
      const rows = await backing.sql("SELECT * FROM audit_sessions WHERE session_id = 's1'");
      expect(normalized(rows, SESSION_FIELDS)).toEqual([expectedRow(SESSION_FIELDS, s1)]);
    };
    await commit(() => {});
    await commit((s) => s.counts.queries++);
    await commit((s) => (s.identity = identity));
    expect(await found("person_id = 'ocid1.user.oc1..alice'")).toEqual(['s1']);
    await commit((s) => (s.breakGlassGrant = 'grant-1'));
    expect(await found("break_glass_grant = 'grant-1'")).toEqual(['s1']);
    await commit((s) => s.counts.failedStatements++);
    expect((await store.loadSessions(at(100))).map((s) => s.id)).toEqual(['s1']);
    await commit((s) => (s.disconnectTime = iso(at(9))));
    expect(await store.loadSessions(at(100))).toEqual([]);
    await commit((s) => (s.breakGlassGrant = null));
    expect(await found("break_glass_grant = 'grant-1'")).toEqual([]);
  });

  it('counts sessions by outcome and attribution from the typed columns, as coverage counts their bodies', async () => {
    const store = await backing.open();
    await store.commit(batch({ sessions: sessions() }));
    // Attributed later, in place.
    const later = sessions()[1]!;
    later.attribution = { method: 'login-name', confidence: 'asserted', evidence: ['k2'] };
    await store.commit(batch({ sessions: [later] }));
    const fromColumns = emptyCoverage();
    for (const n of await store.sessionCounts()) countInCoverage(fromColumns, n);
    const fromBodies = emptyCoverage();
    for await (const s of store.sessions()) addToCoverage(fromBodies, s);
    expect(fromColumns).toEqual(fromBodies);
    expect(fromColumns).toEqual({
      sessions: 2,
      failedLogins: 1,
      iam: 2,
      local: 0,
      byConfidence: { verified: 0, corroborated: 1, asserted: 1, unattributed: 0 },
      byMethod: { 'login-name': 2 },
    });
  });

  it('updates the counts of a counted session alone, and writes it whole once the ledger no longer holds it', async () => {
    const store = await backing.open();
    const s1 = sessions()[0]!;
    delete s1.disconnectTime;
    const read = async () => {
      const [ledgerRead] = await collect(store.sessions());
      const [loaded] = await store.loadSessions(at(100));
      const rows = await backing.sql("SELECT * FROM audit_sessions WHERE session_id = 's1'");
      return {
        ledger: JSON.stringify(ledgerRead),
        loaded: JSON.stringify(loaded),
        rows: normalized(rows, SESSION_FIELDS),
      };
    };
    const expected = () => ({
      ledger: JSON.stringify(s1),
      loaded: JSON.stringify(s1),
      rows: [expectedRow(SESSION_FIELDS, s1)],
    });
    await store.commit(batch({ sessions: [s1] }));
    s1.counts.queries += 2;
    s1.counts.tableAccess++;
    s1.counts.failedStatements++;
    await store.commit(batch({ counted: [s1] }));
    expect(await read()).toEqual(expected());
    await store.commit(batch({ pruneLedgerBefore: at(10) }));
    expect(await collect(store.sessions())).toEqual([]);
    s1.counts.queries++;
    await store.commit(batch({ counted: [s1] }));
    expect(await read()).toEqual(expected());
    expect(await backing.sql("SELECT table_name FROM session_tables WHERE session_id = 's1'")).toHaveLength(
      2,
    );
  });

  it('updates the counts and close of a counted session that closed, and reads it back as written whole', async () => {
    const store = await backing.open();
    const s1 = sessions()[0]!;
    const closedAt = s1.disconnectTime!;
    delete s1.disconnectTime;
    await store.commit(batch({ sessions: [s1] }));
    expect(await store.loadSessions(at(100))).toHaveLength(1);
    s1.counts.queries += 3;
    s1.disconnectTime = closedAt;
    await store.commit(batch({ counted: [s1] }));
    const [ledgerRead] = await collect(store.sessions());
    expect(JSON.stringify(ledgerRead)).toBe(JSON.stringify(s1));
    expect((await store.loadSessions(at(0))).map((s) => JSON.stringify(s))).toEqual([JSON.stringify(s1)]);
    // No longer open: a pipeline that opens does not restore it once it is past the lookback.
    expect(await store.loadSessions(at(100))).toEqual([]);
    const rows = await backing.sql("SELECT * FROM audit_sessions WHERE session_id = 's1'");
    expect(normalized(rows, SESSION_FIELDS)).toEqual([expectedRow(SESSION_FIELDS, s1)]);
    // And once the ledger no longer holds it, it is written whole.
    await store.commit(batch({ pruneLedgerBefore: at(10) }));
    await store.commit(batch({ counted: [s1] }));
    expect((await collect(store.sessions())).map((s) => JSON.stringify(s))).toEqual([JSON.stringify(s1)]);
  });

  it('writes the tables of a session updated in place as they grow, and again after a prune', async () => {
    const store = await backing.open();
    const tableRows = async () =>
      (
        await backing.sql("SELECT table_name FROM session_tables WHERE session_id = 's1' ORDER BY table_name")
      ).map((r) => r.table_name);
    const s1 = sessions()[0]!;
    delete s1.disconnectTime;
    await store.commit(batch({ sessions: [s1] }));
    s1.counts.queries++;
    await store.commit(batch({ sessions: [s1] }));
    expect(await tableRows()).toEqual(['shop.orders', 'we\'ird.t"able']);
    s1.tables = ['shop.orders', 'shop.refunds', 'we\'ird.t"able'];
    await store.commit(batch({ sessions: [s1] }));
    expect(await tableRows()).toEqual(['shop.orders', 'shop.refunds', 'we\'ird.t"able']);
    await store.commit(batch({ pruneLedgerBefore: at(10) }));
    expect(await tableRows()).toEqual([]);
    await store.commit(batch({ sessions: [s1] }));
    expect(await tableRows()).toEqual(['shop.orders', 'shop.refunds', 'we\'ird.t"able']);
    expect((await collect(store.sessions())).map((s) => [s.id, s.counts.queries])).toEqual([['s1', 5]]);
  });
}

const opened = (s: Session) => s.outcome === 'success' && s.disconnectTime === undefined;

function upgrade(adapter: Adapter, dialect: 'sqlite' | 'mysql') {
  it('gives the rows of a store written before the ledger their typed columns on upgrade', async () => {
    const backing = await adapter.create();
    try {
      const ss = sessions();
      const as = alerts();
      const open = dialect === 'sqlite' ? 'open' : 'is_open';
      const time = dialect === 'sqlite' ? 'time' : 'alert_time';
      await backing.sql(
        SCHEMA_3[dialect] +
          ss
            .map(
              (s) =>
                `INSERT INTO sessions (id, db, connect_ts, ${open}, body) VALUES (${[s.id, s.dbSystem.id, s.connectTs, opened(s) ? 1 : 0, JSON.stringify(s)].map(literal(dialect)).join(', ')});\n`,
            )
            .join('') +
          as
            .map(
              (a) =>
                `INSERT INTO alerts (id, rule, ${time}, body) VALUES (${[a.id, a.rule, a.time, JSON.stringify(a)].map(literal(dialect)).join(', ')});\n`,
            )
            .join('') +
          "INSERT INTO deliveries (alert_id, sink) VALUES ('a1', 'siem');\n" +
          `INSERT INTO dead_letters (body) VALUES (${literal(dialect)(JSON.stringify(DEAD[0]))});\n`,
      );
      const store = await backing.open();
      // SQLite's fifth version marks count columns that may be ahead of the bodies, its sixth bodies
      // that leave their OCIDs to the columns, its seventh bodies that leave their texts too. The
      // last version but one of each records when dead letters are stored, the one after repairs the
      // repeat counts of alerts stored with repeats merged into them, the next adds when each session
      // last did something: a session stored open counts from its connect; the next adds how a
      // session ended that the server logged no disconnect for (none of those stored before), the
      // next how many planted credentials were in force at its login (from the bodies), the next
      // who delivers each alert, with an index on when each claim ends (none of those stored
      // before is claimed), the next until when a look took what it could for each output (none
      // yet: the first look for each reads every record), the next until when each session was
      // active (from its outcome, connect, disconnect and last activity), the last an index on when
      // each alert last repeated.
      expect(await backing.schemaVersions()).toEqual(
        dialect === 'sqlite'
          ? [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
          : [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
      );
      expect(await backing.sql('SELECT sink FROM delivery_looks')).toEqual([]);
      expect(await backing.sql('SELECT id, claimant, claimed_until FROM alerts ORDER BY id')).toEqual(
        as.map((a) => ({
          id: dialect === 'sqlite' ? a.id : Buffer.from(a.id),
          claimant: null,
          claimed_until: null,
        })),
      );
      // Unclaimed: the first instance to ask sends what a sink has not received, and claims it.
      expect((await store.undelivered('siem')).map((a) => a.id)).toEqual(['a2', 'a3']);
      expect(await (await backing.open('other')).undelivered('siem')).toEqual([]);
      expect(
        await backing.sql('SELECT session_id, planted_credentials FROM audit_sessions ORDER BY connect_ts'),
      ).toEqual(ss.map((s, i) => ({ session_id: s.id, planted_credentials: i === 0 ? 1 : null })));
      const active = await backing.sql(
        'SELECT connect_ts, last_activity_ts FROM sessions ORDER BY connect_ts',
      );
      expect(active.map((r) => (r.last_activity_ts === null ? null : Number(r.last_activity_ts)))).toEqual(
        ss.map((s) => (opened(s) ? s.connectTs : null)),
      );
      const until = await backing.sql('SELECT connect_ts, active_until_ts FROM sessions ORDER BY connect_ts');
      expect(until.map((r) => Number(r.active_until_ts))).toEqual(ss.map(activeUntil));
      // A dead letter stored before: listed, with no time, and outside any time range.
      expect(await collect(store.deadLetters())).toEqual([{ seq: 1, ...DEAD[0] }]);
      expect(await collect(store.deadLetters({ from: 0 }))).toEqual([]);
      expect(await backing.sql('SELECT seq, stored_time, code FROM audit_dead_letters')).toEqual([
        { seq: 1, stored_time: null, code: 'SCHEMA_INVALID' },
      ]);
      const sessionRows = await backing.sql('SELECT * FROM audit_sessions ORDER BY connect_ts');
      expect(normalized(sessionRows, SESSION_FIELDS)).toEqual(ss.map((s) => expectedRow(SESSION_FIELDS, s)));
      const findingRows = await backing.sql('SELECT * FROM audit_findings ORDER BY finding_ts');
      expect(normalized(findingRows, ALERT_FIELDS)).toEqual(as.map((a) => expectedRow(ALERT_FIELDS, a)));
      expect(await backing.sql('SELECT finding_id, sink, delivered_ts FROM audit_deliveries')).toEqual([
        { finding_id: 'a1', sink: 'siem', delivered_ts: null },
      ]);
      expect((await collect(store.alerts({ rules: ['access.unattributed'] }))).map((a) => a.id)).toEqual([
        'a2',
      ]);
      // The dead letter has no time, so no retention: it stays until deleted.
      await store.commit(batch({ pruneLedgerBefore: Date.now() + 1 }));
      expect((await collect(store.deadLetters())).map((d) => d.seq)).toEqual([1]);
    } finally {
      await backing.dispose();
    }
  });
}

describe('audit ledger: SqliteStore (commit thread)', () => ledger(sqliteThreadAdapter));
describe('audit ledger: SqliteStore', () => {
  ledger(sqliteAdapter);
  upgrade(sqliteAdapter, 'sqlite');

  it('keeps session bodies without the OCIDs and texts their columns hold, and reads back the same JSON', async () => {
    const backing = await sqliteAdapter.create();
    try {
      const store = await backing.open();
      const written = sessions().map((s) => ({ ...s, disconnectTime: undefined }));
      const before = JSON.stringify(written);
      await store.commit(batch({ sessions: written }));
      // The body leaves the OCIDs and texts out of its JSON, not out of the sessions it was made from.
      expect(JSON.stringify(written)).toBe(before);
      const bodies = (await backing.sql('SELECT body FROM sessions')).map((r) => String(r.body));
      const held = [
        'ocid1.user.oc1..alice',
        'ocid1.group.oc1..dba',
        OTHER_DB.id,
        '"s1"',
        'alice@example.com',
      ];
      for (const value of [...held, 'DBAdmins', 'TOTP', 'replica-1', 'no-evidence', iso(at(10)), '"admin@%"'])
        expect(bodies.filter((b) => b.includes(value))).toEqual([]);
      const json = (list: Session[]) => list.map((s) => JSON.stringify(s));
      expect(json(await store.loadSessions(at(0)))).toEqual(json(written));
      expect(json(await collect(store.sessions()))).toEqual(json(written));

      // A body written before holds its OCIDs (schema 5) or its texts (schema 6), and is read as it is.
      const sql = (text: string) => `'${text.replaceAll("'", "''")}'`;
      const schema6 = JSON.stringify({ ...written[1]!, id: 0, dbSystem: { ...written[1]!.dbSystem, id: 0 } });
      await backing.sql(`UPDATE sessions SET body = ${sql(JSON.stringify(written[0]))} WHERE id = 's1'`);
      await backing.sql(`UPDATE sessions SET body = ${sql(schema6)} WHERE id = 's2'`);
      expect(json(await collect(store.sessions()))).toEqual(json(written));
    } finally {
      await backing.dispose();
    }
  });

  // The ledger grows with retention, and a function on a shared store opens its pipeline, and so
  // restores sessions, on every invocation.
  it('restores the open and recent sessions by index searches, never a scan of the ledger', async () => {
    const backing = await sqliteAdapter.create();
    try {
      await backing.open();
      const sql = restoredSessionsSql('open', SESSION_READ_COLUMNS).replace('?', '0');
      const steps = (await backing.sql(`EXPLAIN QUERY PLAN ${sql}`)).map((r) => String(r.detail));
      expect(steps).toContain('SEARCH sessions USING INDEX sessions_open (open=?)');
      expect(steps).toContain('SEARCH sessions USING INDEX sessions_connect (connect_ts>?)');
      expect(steps.filter((step) => step.startsWith('SCAN'))).toEqual([]);
    } finally {
      await backing.dispose();
    }
  });
});
describeMySql('audit ledger: MySqlStore', (server) => {
  ledger(mysqlAdapter(server));
  upgrade(mysqlAdapter(server), 'mysql');
});
