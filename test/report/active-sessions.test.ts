// The reports take each session active at some time in their period, not only those that connected
// in it: a DBA's session opened before the period and used through it is a use of the entitlement in
// it; a break-glass session's statements of the period are in its log; the attribution evidence
// still counts each session once, in the period it connected in. On SQLite and on MySQL alike, also
// on a store written before the ledger kept until when each session was active.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ReportDocument } from '../../schemas/report.js';
import { at, db, GROUPS, iam, USERS } from '../../shared/detect/timeline.js';
import { REPORTS } from '../../shared/report/registry.js';
import { holdsActivity, runReports } from '../../shared/report/run-reports.js';
import { fillActiveUntil, UNFILLED_SESSIONS } from '../../shared/state/mysql-store.js';
import type { StateStore } from '../../shared/state/state-store.js';
import { collect } from '../helpers/collect.js';
import { describeMySql, type TestDatabase } from '../helpers/mysql-server.js';
import {
  ACTIVE_UNTIL_AND_LATER,
  type Adapter,
  type Backing,
  backingPerTest,
  batch,
  mysqlAdapter,
  runPipeline,
  session,
  sqliteAdapter,
  withoutActiveUntil,
} from '../state/store-fixtures.js';
import { figure, rowsOf } from './report-fixtures.js';

const iso = (ts: number) => new Date(ts).toISOString();
/** The period the reports are about: from 11:00 to 19:00 on the scenario's day. */
const PERIOD = { from: at(120), to: at(600) };
const DB_ID = 'ocid1.mysqldbsystem.oc1..prod1';

/**
 * Sessions that connected before the period and were used in it: Alice's (DBAdmins, dba_proxy)
 * with a failed statement in the period and its disconnect at 13:10; Bob's break-glass one, with a
 * statement before the period and one in it, still open; an application's, still open. Dave's group
 * login is the one session that connects in the period; Carol's ended before it.
 */
function timeline() {
  return [
    iam.signOn({ at: at(0), user: USERS.alice, ip: '10.0.0.5', mfa: 'TOTP' }),
    db.connect({ at: at(5), conn: 1, account: 'dba_proxy', user: 'alice', ip: '10.0.0.5', proxy: true }),
    db.query({ at: at(6), conn: 1, account: 'dba_proxy', sqlCommand: 'select', sql: 'SELECT 1' }),
    db.connect({ at: at(20), conn: 7, account: 'carol' }),
    db.disconnect({ at: at(30), conn: 7, account: 'carol' }),
    db.connect({ at: at(50), conn: 20, account: 'app', ip: '10.1.1.1' }),
    iam.added({ at: at(100), user: USERS.bob, group: GROUPS.bg }),
    db.connect({ at: at(110), conn: 2, account: 'emergency_admin', user: 'bob', proxy: true }),
    db.query({ at: at(112), conn: 2, account: 'emergency_admin', sqlCommand: 'select', sql: 'SELECT 11' }),
    db.query({ at: at(130), conn: 2, account: 'emergency_admin', sqlCommand: 'select', sql: 'SELECT 13' }),
    db.query({ at: at(150), conn: 20, account: 'app', sqlCommand: 'select', sql: 'SELECT 15' }),
    iam.signOn({ at: at(199), user: USERS.dave, ip: '10.0.0.9' }),
    db.connect({
      at: at(200),
      conn: 3,
      account: 'dev_proxy',
      user: 'dev_proxy',
      ip: '10.0.0.9',
      proxy: true,
    }),
    db.query({
      at: at(210),
      conn: 1,
      account: 'dba_proxy',
      sqlCommand: 'select',
      sql: 'SELEC 2',
      status: 1064,
    }),
    db.disconnect({ at: at(250), conn: 1, account: 'dba_proxy' }),
  ];
}

const reportsOf = async (store: StateStore, dbSystem?: string) =>
  new Map<string, ReportDocument>(
    (
      await runReports(store, {
        reports: REPORTS.map((r) => r.id),
        period: PERIOD,
        ...(dbSystem === undefined ? {} : { dbSystem }),
        generatedAt: at(600),
      })
    ).map((d) => [d.report, d]),
  );

/** What the reports of the period must say of the sessions active in it. */
function expectActiveSessions(docs: Map<string, ReportDocument>): void {
  const review = docs.get('access-review')!;
  const alice = rowsOf(review, 'entitlements').find((r) => r.person === 'alice@example.com')!;
  // Used in the period through a session opened before it, last until its disconnect.
  expect([alice.mysql_account, alice.sessions, alice.last_use, alice.unused]).toEqual([
    'dba_proxy',
    1,
    iso(at(250)),
    false,
  ]);
  const bob = rowsOf(review, 'entitlements').find((r) => r.via === 'BreakGlass')!;
  expect([bob.sessions, bob.last_use]).toEqual([1, iso(at(130))]);
  // The application's session, still open, last in use at its statement of the period.
  expect(rowsOf(review, 'local-accounts').map((r) => [r.mysql_account, r.sessions, r.last_use])).toEqual([
    ['app@%', 1, iso(at(150))],
  ]);
  // Carol's session ended before the period: her personal account is unused in it.
  expect(rowsOf(review, 'entitlements').find((r) => r.person === 'carol@example.com')!.unused).toBe(true);

  const log = docs.get('break-glass-log')!;
  expect(rowsOf(log, 'sessions').map((r) => [r.person, r.connected, r.disconnected])).toEqual([
    ['bob@example.com', iso(at(110)), null],
  ]);
  // The statements it ran in the period only.
  expect(rowsOf(log, 'statements').map((r) => [r.time, r.sql])).toEqual([[iso(at(130)), 'SELECT ?']]);

  const failed = docs.get('failed-access')!;
  expect(
    rowsOf(failed, 'failed-statements').map((r) => [
      r.person,
      r.mysql_account,
      r.sessions,
      r.failed_statements,
    ]),
  ).toEqual([['alice@example.com', 'dba_proxy@%', 1, 1]]);
  // Logins are those of the period: the application logged in before it.
  expect(rowsOf(failed, 'local-account-use')).toEqual([]);

  // Each session once, in the period it connected in: Dave's alone.
  const evidence = docs.get('attribution-evidence')!;
  expect(figure(evidence, 'Sessions on shared accounts')).toBe(1);
  expect(rowsOf(evidence, 'by-account').map((r) => [r.mysql_account, r.sessions])).toEqual([
    ['dev_proxy@%', 1],
  ]);
}

/** The sessions a query reads, as connection@connect. */
const idsOf = (store: StateStore) => async (q: Parameters<StateStore['sessions']>[0]) =>
  (await collect(store.sessions(q))).map((s) => `${s.connectionId}@${iso(s.connectTs)}`);

/** The sessions active in PERIOD: those that connected before it and were in use in it, then Dave's. */
const ACTIVE_IDS = [`1@${iso(at(5))}`, `20@${iso(at(50))}`, `2@${iso(at(110))}`, `3@${iso(at(200))}`];

/** Until when each of the timeline's sessions was active, as its row says, in connect order. */
const activeUntilColumn = async (backing: Backing) =>
  (
    await backing.sql(
      `SELECT connection_id, active_until_ts FROM sessions WHERE db = '${DB_ID}' ORDER BY connect_ts`,
    )
  ).map((r) => [Number(r.connection_id), Number(r.active_until_ts)]);

/**
 * What activeUntilColumn reads once filled: Alice's and Carol's until their disconnect, the
 * application's and Bob's (still open) until their last statement, Dave's at his connect.
 */
const FILLED = [
  [1, at(250)],
  [7, at(30)],
  [20, at(150)],
  [2, at(130)],
  [3, at(200)],
];

function activeSessions(adapter: Adapter) {
  const backingNow = backingPerTest(adapter);

  it('reads the sessions active in a range, those that connected before it first, in connect order', async () => {
    const store = await backingNow().open();
    await runPipeline(store, [timeline()]);
    const ids = idsOf(store);
    expect(await ids({ ...PERIOD, active: true })).toEqual(ACTIVE_IDS);
    expect(await ids({ ...PERIOD, active: true, dbSystem: 'ocid1.mysqldbsystem.oc1..other' })).toEqual([]);
    // Without `active`: by connect, as exports read them.
    expect(await ids(PERIOD)).toEqual([`3@${iso(at(200))}`]);
    // A period in which only a session opened before it was in use holds activity.
    expect(await holdsActivity(store, { from: at(240), to: at(245) }, DB_ID)).toBe(true);
  });

  it('counts a session in every report period it was active in, each report as it documents', async () => {
    const store = await backingNow().open();
    await runPipeline(store, [timeline()]);
    expectActiveSessions(await reportsOf(store));
    expectActiveSessions(await reportsOf(store, 'prod-orders'));
  });

  it('upgrades a store written before it kept until when each session was active', async () => {
    const backing = backingNow();
    const writer = await backing.open();
    await runPipeline(writer, [timeline()]);
    await writer.close();
    const mysql = adapter.name === 'MySqlStore';
    const versions = await backing.schemaVersions();
    await backing.sql(
      [
        ...withoutActiveUntil(mysql),
        mysql
          ? `DELETE FROM schema_version WHERE version > ${versions.length - ACTIVE_UNTIL_AND_LATER}`
          : `PRAGMA user_version = ${versions.length - ACTIVE_UNTIL_AND_LATER}`,
      ].join(';\n'),
    );
    const store = await backing.open();
    expect(await backing.schemaVersions()).toEqual(versions);
    expect(await activeUntilColumn(backing)).toEqual(FILLED);
    expectActiveSessions(await reportsOf(store));
  });

  it('reads the sessions an instance of the version before wrote after the upgrade, without active_until_ts', async () => {
    const backing = backingNow();
    const store = await backing.open();
    await runPipeline(store, [timeline()]);
    // Such an instance, still running, writes its rows with its columns only (the new one null).
    await backing.sql('UPDATE sessions SET active_until_ts = NULL');
    const ids = idsOf(store);
    expect(await ids({ ...PERIOD, active: true })).toEqual(ACTIVE_IDS);
    // Carol's ended before PERIOD (left out above), but is read in a period before her disconnect.
    expect(await ids({ from: at(25), to: at(26), active: true })).toEqual([
      `1@${iso(at(5))}`,
      `7@${iso(at(20))}`,
    ]);
    expectActiveSessions(await reportsOf(store));
  });
}

/**
 * Bob's break-glass session connects before the period under his grant, which ends (he leaves the
 * group) before the period too; the session goes on and runs a statement in the period.
 */
function outlivedGrant() {
  return [
    iam.added({ at: at(100), user: USERS.bob, group: GROUPS.bg }),
    db.connect({ at: at(110), conn: 2, account: 'emergency_admin', user: 'bob', proxy: true }),
    iam.removed({ at: at(115), user: USERS.bob, group: GROUPS.bg }),
    db.query({ at: at(130), conn: 2, account: 'emergency_admin', sqlCommand: 'select', sql: 'SELECT 13' }),
  ];
}

describe('break-glass log of a session that outlived its grant', () => {
  const backingNow = backingPerTest(sqliteAdapter);

  it('shows the grant the session of the period was made under, and the alerts it raised in it', async () => {
    const store = await backingNow().open();
    await runPipeline(store, [outlivedGrant()]);
    const log = (await reportsOf(store)).get('break-glass-log')!;
    const [session] = rowsOf(log, 'sessions');
    expect([session?.person, session?.connected]).toEqual(['bob@example.com', iso(at(110))]);
    expect(rowsOf(log, 'statements').map((r) => r.time)).toEqual([iso(at(130))]);
    // Its grant, ended before the period, with the session; and its statement after the grant ended.
    expect(rowsOf(log, 'grants').map((r) => [r.grant_id, r.ended, r.still_open, r.sessions])).toEqual([
      [session?.grant_id, iso(at(115)), false, 1],
    ]);
    expect(figure(log, 'Grants')).toBe(1);
    const alerts = rowsOf(log, 'alerts');
    expect(alerts.map((r) => [r.grant_id, r.time])).toContainEqual([session?.grant_id, iso(at(130))]);
  });
});

describe('sessions active in a report period: SqliteStore', () => activeSessions(sqliteAdapter));
describeMySql('sessions active in a report period: MySqlStore', (server) =>
  activeSessions(mysqlAdapter(server)),
);

/** docs/mysql-store.md: noted before the upgrade, the earliest connect of the sessions then open. */
const REPAIR_SINCE = 'SELECT MIN(connect_ts) AS since FROM sessions WHERE is_open = 1';
/** docs/mysql-store.md: once every instance runs the version of the upgrade (the value: REPAIR_SINCE). */
const REPAIR = 'UPDATE sessions SET active_until_ts = NULL WHERE connect_ts >= ?';

describeMySql(
  'upgrade of a MySQL store written before it kept until when each session was active',
  (server) => {
    // Each open fills one page (500 rows) of the sessions stored before.
    const adapter = mysqlAdapter(server, { fillActiveUntil: { pages: 1 } });
    const backingNow = backingPerTest(adapter) as () => Backing & TestDatabase;
    /** The scenario's store with every row's active_until_ts null, and a connection of its own. */
    const unfilledStore = async () => {
      const backing = backingNow();
      const writer = await backing.open();
      await runPipeline(writer, [timeline()]);
      await writer.close();
      await backing.sql('UPDATE sessions SET active_until_ts = NULL');
      return { backing, raw: await backing.raw() };
    };

    it('migrates without filling under the migration lock; later opens fill the rows, the reports read the same', async () => {
      const backing = backingNow();
      const writer = await backing.open();
      await runPipeline(writer, [timeline()]);
      // 1,100 sessions of another DB system that ended the day before: stored first, filled first.
      const other = { id: 'ocid1.mysqldbsystem.oc1..other', name: 'other' };
      const dayBefore = at(0) - 86_400_000;
      await writer.commit(
        batch({
          sessions: Array.from({ length: 1100 }, (_, i) =>
            session(`before-${i}`, dayBefore + i * 1000, {
              dbSystem: other,
              disconnectTime: iso(dayBefore + i * 1000 + 500),
            }),
          ),
        }),
      );
      await writer.close();
      const versions = await backing.schemaVersions();
      await backing.sql(
        [
          ...withoutActiveUntil(true),
          `DELETE FROM schema_version WHERE version > ${versions.length - ACTIVE_UNTIL_AND_LATER}`,
        ].join(';\n'),
      );
      const nulls = async () =>
        Number((await backing.sql('SELECT COUNT(*) AS n FROM sessions WHERE active_until_ts IS NULL'))[0]!.n);

      const first = await backing.open();
      expect(await backing.schemaVersions()).toEqual(versions);
      // The migration added the column and the key and let go of its lock; one page was filled after.
      expect(await nulls()).toBe(1105 - 500);
      const raw = await backing.raw();
      try {
        const [rows] = await raw.query('SELECT GET_LOCK(?, 0) AS got', [`hwaudit.migrate.${backing.name}`]);
        expect((rows as { got: number }[])[0]!.got).toBe(1);
        await raw.query('SELECT RELEASE_LOCK(?)', [`hwaudit.migrate.${backing.name}`]);
      } finally {
        await raw.end();
      }
      expectActiveSessions(await reportsOf(first));

      // Two instances open at once: each fills a page, the same one or not.
      await Promise.all([backing.open(), backing.open()]);
      expect(await nulls()).toBeLessThanOrEqual(105);
      expectActiveSessions(await reportsOf(first));
      await backing.open();
      expect(await nulls()).toBe(0);
      expect(await activeUntilColumn(backing)).toEqual(FILLED);
      expect(
        Number(
          (
            await backing.sql(
              `SELECT COUNT(*) AS n FROM sessions WHERE db = '${other.id}' AND active_until_ts = connect_ts + 500`,
            )
          )[0]!.n,
        ),
      ).toBe(1100);
      expectActiveSessions(await reportsOf(first));
      // Once every row is filled, an open's look for one is a lookup in the key, not a scan.
      const [plan] = await backing.sql(`EXPLAIN ${UNFILLED_SESSIONS}`);
      expect([plan!.key, plan!.type]).toEqual(['sessions_active', 'ref']);
    });

    it('fills a row a commit wrote between the read of a page and its update from what the commit wrote', async () => {
      const { backing, raw } = await unfilledStore();
      try {
        let between = true;
        const conn = {
          query: async (sql: string, params?: unknown[]) => {
            if (between && sql.startsWith('UPDATE sessions SET active_until_ts')) {
              between = false;
              // The application's session ran a statement, written by an instance of the version
              // before (no active_until_ts); Bob's, by one of this version.
              await raw.query('UPDATE sessions SET last_activity_ts = ? WHERE connection_id = 20', [at(400)]);
              await raw.query(
                'UPDATE sessions SET last_activity_ts = ?, active_until_ts = ? WHERE connection_id = 2',
                [at(300), at(300)],
              );
            }
            return raw.query(sql, params);
          },
        };
        await fillActiveUntil(conn as never, { ms: 10_000, pages: 5 });
      } finally {
        await raw.end();
      }
      // The application's from the statement written in between, Bob's as the commit wrote it.
      expect(await activeUntilColumn(backing)).toEqual(
        FILLED.map(([id, until]) => [id, id === 20 ? at(400) : id === 2 ? at(300) : until]),
      );
    });

    it('the repair docs/mysql-store.md gives reads again a session open at the upgrade that an instance of the version before went on writing after an open filled it', async () => {
      const { backing, raw } = await unfilledStore();
      try {
        // The statements are those the documentation gives.
        const doc = readFileSync(new URL('../../docs/mysql-store.md', import.meta.url), 'utf8').replace(
          /\s+/g,
          ' ',
        );
        expect(doc).toContain(`\`${REPAIR_SINCE}\``);
        expect(doc).toContain(`\`${REPAIR.replace('?', '<')}`);
        // Before the upgrade (every row null, as the version before wrote it): what the repair needs.
        const upgrade = at(650);
        const [noted] = await raw.query(REPAIR_SINCE);
        const since = Number((noted as { since: number | string | null }[])[0]!.since ?? upgrade);
        const store = await backing.open();
        expect(await activeUntilColumn(backing)).toEqual(FILLED);
        // The version before, still running, writes a statement of the application's session.
        await raw.query('UPDATE sessions SET last_activity_ts = ? WHERE connection_id = 20', [at(700)]);
        // Once every instance runs this version, the repair.
        await raw.query(REPAIR, [since]);
        await backing.open();
        const later = { from: at(690), to: at(710), active: true };
        expect(await idsOf(store)(later)).toEqual([`20@${iso(at(50))}`]);
      } finally {
        await raw.end();
      }
    });

    it('keeps to its second while another connection holds the sessions table (a later version migrating it)', async () => {
      const { backing, raw } = await unfilledStore();
      try {
        await raw.query('LOCK TABLES sessions WRITE');
        const started = Date.now();
        const opening = backing.open();
        const ms = await Promise.race([
          opening.then(() => Date.now() - started),
          new Promise<number>((resolve) => setTimeout(() => resolve(Number.POSITIVE_INFINITY), 8000)),
        ]);
        await raw.query('UNLOCK TABLES');
        await opening;
        expect(ms).toBeLessThan(4000);
      } finally {
        await raw.end();
      }
    }, 90_000);

    it('keeps to its second when a row of its page is locked by a transaction that stays open', async () => {
      const { backing, raw } = await unfilledStore();
      try {
        // Another instance's transaction holds the application's session row (server default lock
        // wait: 50 s).
        await raw.query('START TRANSACTION');
        await raw.query('SELECT id FROM sessions WHERE connection_id = 20 FOR UPDATE');
        const started = Date.now();
        await backing.open();
        const ms = Date.now() - started;
        expect(ms).toBeLessThan(4000);
        await raw.query('ROLLBACK');
      } finally {
        await raw.end();
      }
      // The next open fills the page the lock kept it from.
      await backing.open();
      expect(await activeUntilColumn(backing)).toEqual(FILLED);
    }, 90_000);
  },
);
