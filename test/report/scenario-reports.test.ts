// Each report over the incident scenario (test/scenarios/scenario-fleet.ts, with attacker-controlled
// text injected), against what the timeline says happened; every document validates against the
// committed JSON Schema, which is the zod contract.
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Alert } from '../../schemas/alert.js';
import { type ReportDocument, reportJsonSchemaText } from '../../schemas/report.js';
import { at, baseConfig, db, GROUPS, iam, T0, USERS } from '../../shared/detect/timeline.js';
import { AuditError } from '../../shared/errors.js';
import { REPORTS } from '../../shared/report/registry.js';
import { renderCsv } from '../../shared/report/render-csv.js';
import { renderHtml } from '../../shared/report/render-html.js';
import { runReports } from '../../shared/report/run-reports.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import type { StateStore } from '../../shared/state/state-store.js';
import { incidentTimeline, LIFECYCLE_CONFIG, lifecycle } from '../scenarios/scenario-fleet.js';
import { batch, runPipeline, session } from '../state/store-fixtures.js';
import {
  allReports,
  DAY_PERIOD,
  FORMULA,
  figure,
  HOSTILE,
  rowsOf,
  scenarioStore,
} from './report-fixtures.js';

const HOUR = 3_600_000;
const iso = (ts: number) => new Date(ts).toISOString();
const SESSION = (conn: number, minute: number) => `ocid1.mysqldbsystem.oc1..prod1:${conn}:${iso(at(minute))}`;

let store: StateStore;
let docs: Map<string, ReportDocument>;

beforeAll(async () => {
  store = await scenarioStore();
  docs = new Map((await allReports(store)).map((d) => [d.report, d]));
});
const doc = (id: string) => docs.get(id)!;

describe('report documents', () => {
  it('are one per report, in the registry order, about the period asked for', () => {
    expect([...docs.keys()]).toEqual(REPORTS.map((r) => r.id));
    for (const d of docs.values()) {
      expect(d.period).toEqual({ from: iso(DAY_PERIOD.from), to: iso(DAY_PERIOD.to) });
      expect(d.previousPeriod).toEqual({ from: iso(DAY_PERIOD.from - 24 * HOUR), to: iso(DAY_PERIOD.from) });
      expect(d.dbSystem).toBeNull();
      expect(d.controls.length).toBeGreaterThan(0);
      for (const s of d.sections) {
        expect(s.table.totalRows).toBeGreaterThanOrEqual(s.table.rows.length);
        for (const r of s.table.rows) expect(r).toHaveLength(s.table.columns.length);
        if (s.chart)
          for (const series of s.chart.series) expect(series.values).toHaveLength(s.chart.categories.length);
      }
    }
  });

  it('validate against schemas/report.schema.json, which is the zod contract (npm run schemas)', () => {
    const committed = readFileSync(new URL('../../schemas/report.schema.json', import.meta.url), 'utf8');
    expect(committed).toBe(reportJsonSchemaText());
    const validate = new Ajv2020({ strict: false }).compile(JSON.parse(committed));
    for (const d of docs.values()) expect(validate(d), JSON.stringify(validate.errors)).toBe(true);
    const broken = {
      ...doc('access-review'),
      sections: [{ id: 'Bad Id', title: '', description: '', table: {} }],
    };
    expect(validate(broken)).toBe(false);
  });

  it('limit themselves to a DB system named by id or name, and refuse one the state does not know', async () => {
    const byName = await allReports(store, DAY_PERIOD, 'prod-orders');
    expect(byName[0]!.dbSystem).toEqual({ id: 'ocid1.mysqldbsystem.oc1..prod1', name: 'prod-orders' });
    const error = await allReports(store, DAY_PERIOD, 'nope').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AuditError);
    expect((error as AuditError).code).toBe('USAGE');
  });
});

describe('access review', () => {
  it('lists each entitlement with its use in the period and flags the unused ones', () => {
    const d = doc('access-review');
    const rows = rowsOf(d, 'entitlements').map((r) => [
      r.person,
      r.via,
      r.mysql_account,
      r.privileged,
      r.sessions,
      r.unused,
    ]);
    expect(rows).toEqual([
      ['alice@example.com', 'DBAdmins', 'dba_proxy', true, 1, false],
      ['bob@example.com', 'BreakGlass', 'emergency_admin', true, 2, false],
      ['bob@example.com', 'Developers', 'dev_proxy', false, 0, true],
      ['carol@example.com', '(personal account)', 'carol', false, 0, true],
      ['dave@example.com', 'Developers', 'dev_proxy', false, 1, false],
    ]);
    const [alice, bob] = rowsOf(d, 'entitlements');
    // Alice held DBAdmins from the snapshot until 09:30; Bob got break-glass at 09:10 and kept it.
    // Last use is when the session was last in use: Alice's until its disconnect at 09:25, Bob's
    // (still open) until its last activity, its connect at 13:20.
    expect([alice!.held_from, alice!.held_until, alice!.last_use]).toEqual([null, iso(at(30)), iso(at(25))]);
    expect([bob!.held_from, bob!.held_until, bob!.last_use]).toEqual([iso(at(10)), null, iso(at(260))]);
    expect(bob!.tables).toEqual(['shop.<script>window.__pwned=2</script>']);
    expect(figure(d, 'Not used in the period')).toBe(2);
  });

  it('sets apart sessions no entitlement explains (Alice after leaving DBAdmins)', () => {
    const d = doc('access-review');
    expect(rowsOf(d, 'outside-entitlements')).toEqual([
      {
        connect_time: iso(at(40)),
        person: 'alice@example.com',
        group: 'DBAdmins',
        db_system: 'prod-orders',
        mysql_account: 'dba_proxy@%',
        method: 'login-name',
        confidence: 'asserted',
        problem: 'left-group',
        session_id: SESSION(4, 40),
      },
    ]);
    const people = rowsOf(d, 'people').map((r) => [
      r.person,
      r.groups,
      r.entitlements,
      r.used,
      r.sessions_outside,
    ]);
    expect(people).toEqual([
      ['alice@example.com', ['DBAdmins'], 1, 1, 1],
      ['bob@example.com', ['BreakGlass', 'Developers'], 2, 1, 0],
      ['carol@example.com', [], 1, 0, 0],
      ['dave@example.com', ['Developers'], 1, 1, 0],
    ]);
  });

  it('counts the use of an account a group mapped to before the mapping changed in the period', async () => {
    const repointed = {
      [GROUPS.dba]: 'dba_proxy2',
      [GROUPS.bg]: 'emergency_admin',
      [GROUPS.dev]: 'dev_proxy',
    };
    const s = await scenarioStore([
      iam.signOn({ at: at(0), user: USERS.alice, ip: '10.0.0.5', mfa: 'TOTP' }),
      db.connect({ at: at(5), conn: 1, account: 'dba_proxy', user: 'alice', ip: '10.0.0.5', proxy: true }),
      db.disconnect({ at: at(20), conn: 1, account: 'dba_proxy' }),
      // Later in the day, DBAdmins is pointed at another account.
      db.query({
        at: at(60),
        conn: 3,
        account: 'admin',
        sqlCommand: 'alter_user',
        sql: `ALTER USER ''@'%' IDENTIFIED WITH 'authentication_oci' AS '${JSON.stringify({ tenancy: 'ocid1.tenancy.oc1..example', group_mapping: repointed })}'`,
      }),
    ]);
    const [review] = await runReports(s, { reports: ['access-review'], period: DAY_PERIOD, generatedAt: T0 });
    // Alice's session went through DBAdmins to dba_proxy, which it mapped to then: an entitlement used.
    expect(rowsOf(review!, 'outside-entitlements')).toEqual([]);
    expect(
      rowsOf(review!, 'entitlements')
        .filter((r) => r.person === 'alice@example.com')
        .map((r) => [r.via, r.mysql_account, r.sessions]),
    ).toEqual([
      ['DBAdmins', 'dba_proxy', 1],
      ['DBAdmins', 'dba_proxy2', 0],
    ]);
    await s.close();
  });

  it('counts the use of a personal account created and dropped within the period', async () => {
    const personal = JSON.stringify({ tenancy: 'ocid1.tenancy.oc1..example', user: USERS.dave });
    const s = await scenarioStore([
      db.query({
        at: at(10),
        conn: 3,
        account: 'admin',
        sqlCommand: 'create_user',
        sql: `CREATE USER 'dave_own'@'%' IDENTIFIED WITH 'authentication_oci' AS '${personal}'`,
      }),
      db.connect({ at: at(20), conn: 1, account: 'dave_own', ip: '10.0.0.9' }),
      db.disconnect({ at: at(30), conn: 1, account: 'dave_own' }),
      db.query({
        at: at(40),
        conn: 3,
        account: 'admin',
        sqlCommand: 'drop_user',
        sql: "DROP USER 'dave_own'@'%'",
      }),
    ]);
    const [review] = await runReports(s, { reports: ['access-review'], period: DAY_PERIOD, generatedAt: T0 });
    expect(rowsOf(review!, 'outside-entitlements')).toEqual([]);
    expect(
      rowsOf(review!, 'entitlements')
        .filter((r) => r.person === 'dave@example.com' && r.mysql_account === 'dave_own')
        .map((r) => [r.via, r.sessions]),
    ).toEqual([['(personal account)', 1]]);
    await s.close();
  });

  it('shows the privileges the configuration lists for an account', async () => {
    const base = baseConfig();
    const db = base.dbSystems![0]!;
    const grant = 'GRANT ALL PRIVILEGES ON *.* TO `dba_proxy`@`%`';
    const appGrant = 'GRANT SELECT, INSERT ON `orders`.* TO `app`@`%`';
    const other = SqliteStore.open(':memory:');
    await runPipeline(other, [incidentTimeline()], {
      config: {
        dbSystems: [
          {
            ...db,
            accounts: [
              ...db.accounts!.map((a) => (a.user === 'app' ? { ...a, grants: [appGrant] } : a)),
              { user: 'dba_proxy', host: '%', plugin: 'mysql_no_login', grants: [grant] },
            ],
          },
        ],
      },
    });
    const [review] = await runReports(other, {
      reports: ['access-review'],
      period: DAY_PERIOD,
      generatedAt: T0,
    });
    expect(rowsOf(review!, 'entitlements')[0]).toMatchObject({
      mysql_account: 'dba_proxy',
      privileges: [grant],
    });
    expect(rowsOf(review!, 'local-accounts')[0]).toMatchObject({
      mysql_account: 'app@%',
      privileges: [appGrant],
    });
    expect(rowsOf(doc('access-review'), 'entitlements')[0]).toMatchObject({ privileges: [] });
    await other.close();
  });

  it('lists the application and system accounts used in the period, with their use', () => {
    const d = doc('access-review');
    expect(rowsOf(d, 'local-accounts')).toEqual([
      {
        db_system: 'prod-orders',
        mysql_account: 'app@%',
        privileged: false,
        privileges: [],
        sessions: 1,
        // Still open: in use until its last statement.
        last_use: iso(at(51)),
        sources: ['10.1.1.1'],
        tables: [],
      },
    ]);
    expect(figure(d, 'Local (application and system) accounts used')).toBe(1);
  });
});

describe('break-glass log', () => {
  it('shows the grant still open past its maximum, its sessions, what they ran and the alerts it raised', () => {
    const d = doc('break-glass-log');
    expect(rowsOf(d, 'grants')).toEqual([
      expect.objectContaining({
        person: 'bob@example.com',
        group: 'BreakGlass',
        granted: iso(at(10)),
        ended: null,
        still_open: true,
        duration_ms: DAY_PERIOD.to - at(10),
        max_duration_ms: 4 * HOUR,
        over_maximum: true,
        sessions: 2,
        statements: 1,
        db_systems: ['prod-orders'],
        alerts: 4,
      }),
    ]);
    // Each grant by its start, to the second and in UTC as every time a report shows, then its person.
    expect(d.sections.find((s) => s.id === 'grants')!.chart!.categories).toEqual([
      '2026-11-02 09:10:00 UTC bob@example.com',
    ]);
    expect(
      rowsOf(d, 'sessions').map((r) => [r.connected, r.statements, r.table_access, r.session_id]),
    ).toEqual([
      [iso(at(15)), 1, 1, SESSION(2, 15)],
      [iso(at(260)), 0, 0, SESSION(5, 260)],
    ]);
    // The client program his first session's connection named (markup, escaped in HTML).
    expect(rowsOf(d, 'sessions').map((r) => r.client)).toEqual([`${HOSTILE} (libmysql 8.4.3)`, null]);
    // bob is named by the login name his client sent, confirmed by no sign-on: a claim, shown as one.
    expect(rowsOf(d, 'sessions').map((r) => [r.person, r.method, r.confidence])).toEqual([
      ['bob@example.com', 'login-name', 'asserted'],
      ['bob@example.com', 'login-name', 'asserted'],
    ]);
    expect(rowsOf(d, 'statements')).toEqual([
      expect.objectContaining({
        person: 'bob@example.com',
        confidence: 'asserted',
        time: iso(at(16)),
        command: 'select',
        sql: `SELECT ? /* ${HOSTILE} */`,
        status: 0,
      }),
    ]);
    expect(rowsOf(d, 'alerts').map((r) => [r.rule, r.severity, r.time])).toEqual([
      ['iam.privileged-group-change', 'medium', iso(at(10))],
      ['break-glass.used', 'high', iso(at(15))],
      ['break-glass.stale', 'high', iso(at(250))],
      ['break-glass.used', 'critical', iso(at(260))],
    ]);
  });

  it('ends a grant at its removal and lists no grant outside the period', async () => {
    const s = await scenarioStore([
      iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg }),
      db.connect({ at: at(5), conn: 1, account: 'emergency_admin', user: 'bob', proxy: true }),
      iam.removed({ at: at(95), user: USERS.bob, group: GROUPS.bg }),
      iam.signOn({ at: at(600), user: USERS.dave, ip: '10.0.0.9' }),
    ]);
    const [log] = await runReports(s, { reports: ['break-glass-log'], period: DAY_PERIOD, generatedAt: T0 });
    expect(rowsOf(log!, 'grants').map((r) => [r.ended, r.still_open, r.duration_ms, r.over_maximum])).toEqual(
      [[iso(at(95)), false, 95 * 60_000, false]],
    );
    const [later] = await runReports(s, {
      reports: ['break-glass-log'],
      period: { from: at(100), to: at(700) },
      generatedAt: T0,
    });
    expect(rowsOf(later!, 'grants')).toEqual([]);
    await s.close();
  });

  it('ends a grant opened by a repeated add with the membership it fell in', async () => {
    // The same addition reported twice (a sync that saw it, then its audit event, late): one membership.
    const s = await scenarioStore([
      iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg }),
      iam.added({ at: at(10), user: USERS.bob, group: GROUPS.bg }),
      iam.removed({ at: at(60), user: USERS.bob, group: GROUPS.bg }),
    ]);
    const [log] = await runReports(s, { reports: ['break-glass-log'], period: DAY_PERIOD, generatedAt: T0 });
    expect(
      rowsOf(log!, 'grants').map((r) => [r.granted, r.ended, r.still_open, r.duration_ms, r.over_maximum]),
    ).toEqual([
      [iso(at(0)), iso(at(60)), false, 60 * 60_000, false],
      [iso(at(10)), iso(at(60)), false, 50 * 60_000, false],
    ]);
    expect(figure(log!, 'Still open at the end of the period')).toBe(0);
    expect(figure(log!, 'Held past their maximum duration')).toBe(0);
    await s.close();
  });

  it('says of a session whose server logged no disconnect what its end is', async () => {
    const s = await scenarioStore([
      iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg }),
      db.connect({ at: at(5), conn: 1, account: 'emergency_admin', user: 'bob', proxy: true }),
      db.disconnect({ at: at(8), conn: 1, account: 'emergency_admin' }),
      db.connect({ at: at(10), conn: 2, account: 'emergency_admin', user: 'bob', proxy: true }),
      // A crash: no shutdown record, the startup is the end (an upper bound).
      db.startup({ at: at(30) }),
    ]);
    const [log] = await runReports(s, { reports: ['break-glass-log'], period: DAY_PERIOD, generatedAt: T0 });
    const restarted =
      'no disconnect logged: its server restarted (the end is the startup time, an upper bound)';
    expect(rowsOf(log!, 'sessions').map((r) => [r.connected, r.disconnected, r.end_reason])).toEqual([
      [iso(at(5)), iso(at(8)), null],
      [iso(at(10)), iso(at(30)), restarted],
    ]);
    // The HTML page and the CSV file say it too.
    expect(renderHtml(log!)).toContain(`<td>${restarted}</td>`);
    const csv = renderCsv(log!).find((f) => f.name === 'break-glass-log.sessions.csv')!.text;
    expect(csv.split('\r\n')[0]).toContain('"disconnected","end_reason"');
    expect(csv).toContain(`"${iso(at(30))}","${restarted}"`);
    await s.close();
  });

  it('shows a grant as it stood at the end of the period, whenever it was removed', async () => {
    const s = await scenarioStore([
      iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg }),
      iam.removed({ at: at(360), user: USERS.bob, group: GROUPS.bg }),
    ]);
    const grants = async (period: { from: number; to: number }) => {
      const [log] = await runReports(s, {
        reports: ['break-glass-log'],
        period,
        generatedAt: T0 + 48 * HOUR,
      });
      return {
        open: figure(log!, 'Still open at the end of the period'),
        over: figure(log!, 'Held past their maximum duration'),
        rows: rowsOf(log!, 'grants').map((r) => [r.ended, r.still_open, r.duration_ms, r.over_maximum]),
      };
    };
    // At 02:00 the grant was open and had been held two hours of its four.
    expect(await grants({ from: DAY_PERIOD.from, to: at(120) })).toEqual({
      open: 1,
      over: 0,
      rows: [[null, true, 2 * HOUR, false]],
    });
    expect(await grants({ from: at(240), to: at(300) })).toEqual({
      open: 1,
      over: 1,
      rows: [[null, true, 5 * HOUR, true]],
    });
    expect(await grants(DAY_PERIOD)).toEqual({
      open: 0,
      over: 1,
      rows: [[iso(at(360)), false, 6 * HOUR, true]],
    });
    await s.close();
  });
});

describe('attribution evidence', () => {
  it('counts shared-account sessions by method and confidence and lists those tied to nobody', () => {
    const d = doc('attribution-evidence');
    expect(figure(d, 'Sessions on shared accounts')).toBe(7);
    expect(figure(d, 'Not tied to anyone')).toBe(2);
    expect(rowsOf(d, 'by-account').map((r) => [r.mysql_account, r.sessions, r.tied, r.not_tied])).toEqual([
      ['dba_proxy@%', 4, 2, 2],
      ['dev_proxy@%', 1, 1, 0],
      ['emergency_admin@%', 2, 2, 0],
    ]);
    expect(rowsOf(d, 'by-method').map((r) => [r.method, r.confidence, r.sessions])).toEqual([
      ['login-name', 'corroborated', 1],
      ['login-name', 'asserted', 3],
      ['signon-correlated', 'corroborated', 1],
      ['unattributed', 'none', 2],
    ]);
    expect(rowsOf(d, 'not-tied').map((r) => [r.connect_time, r.login_user, r.source_ip, r.problem])).toEqual([
      [iso(at(60)), 'dba_proxy', '10.7.7.7', 'no-evidence'],
      [iso(at(70)), HOSTILE, '10.9.9.9', 'no-evidence'],
    ]);
    expect(rowsOf(d, 'not-entitled').map((r) => [r.person, r.problem])).toEqual([
      ['alice@example.com', 'left-group'],
    ]);
    expect(figure(d, 'Made while a credential someone else created was in force')).toBe(0);
  });

  it('gives no share of shared-account sessions in a period that has none', async () => {
    const [d] = await runReports(store, {
      reports: ['attribution-evidence'],
      period: { from: DAY_PERIOD.from - 48 * HOUR, to: DAY_PERIOD.from - 24 * HOUR },
      generatedAt: T0 + 24 * HOUR,
    });
    expect(figure(d!, 'Sessions on shared accounts')).toBe(0);
    // Not "100 %" each: three confidences of 100 % would add up to 300 % of nothing.
    for (const label of [
      'Tied to a person',
      'Confidence verified',
      'Confidence corroborated',
      'Confidence asserted',
    ])
      expect(figure(d!, label), label).toBe('n/a');
  });

  it('lists the sessions, shared or personal, made while a credential someone else created was in force', async () => {
    const s = await scenarioStore([
      iam.credential({ at: at(0), user: USERS.alice }),
      db.connect({ at: at(30), conn: 1, account: 'dba_proxy', user: 'alice', os: 'alice', proxy: true }),
      iam.credential({ at: at(40), user: USERS.carol, by: USERS.bob, type: 'auth-token' }),
      db.connect({ at: at(50), conn: 2, account: 'carol', ip: '10.0.0.7' }),
      db.connect({ at: at(60), conn: 3, account: 'dev_proxy', user: 'bob', os: 'bob', proxy: true }),
      // Alice's connection, made with the key in force, then switched to a local account.
      db.connect({ at: at(70), conn: 4, account: 'dba_proxy', user: 'alice', os: 'alice', proxy: true }),
      db.changeUser({ at: at(71), conn: 4, account: 'admin' }),
    ]);
    const [d] = await runReports(s, {
      reports: ['attribution-evidence'],
      period: DAY_PERIOD,
      generatedAt: T0,
    });
    expect(figure(d!, 'Made while a credential someone else created was in force')).toBe(3);
    expect(
      rowsOf(d!, 'planted-credential').map((r) => [
        r.connect_time,
        r.person,
        r.mysql_account,
        r.confidence,
        r.credential,
        r.created_by,
        r.created_at,
      ]),
    ).toEqual([
      [iso(at(30)), 'alice@example.com', 'dba_proxy@%', 'asserted', 'api-key', 'iam-admin', iso(at(0))],
      [iso(at(50)), 'carol@example.com', 'carol@%', 'asserted', 'auth-token', 'bob@example.com', iso(at(40))],
      [iso(at(70)), 'alice@example.com', 'dba_proxy@%', 'asserted', 'api-key', 'iam-admin', iso(at(0))],
    ]);
    await s.close();
  });
});

/** bob on the break-glass account, named only by the login name his client sent, runs a GRANT. */
const assertedGrant = () => [
  iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg }),
  // The client sent "bob" as its login name; no sign-on confirms it.
  db.connect({ at: at(5), conn: 1, account: 'emergency_admin', user: 'bob', proxy: true }),
  db.query({
    at: at(6),
    conn: 1,
    account: 'emergency_admin',
    sqlCommand: 'grant',
    sql: "GRANT SELECT ON shop.* TO 'app'@'%'",
  }),
];

describe('privileged and authentication changes', () => {
  it('lists each change with who made it', () => {
    const d = doc('privileged-changes');
    expect(
      rowsOf(d, 'changes').map((r) => [r.time, r.kind, r.made_by, r.mysql_account, r.targets, r.sql]),
    ).toEqual([
      [
        iso(at(6)),
        'privilege',
        'alice@example.com',
        'dba_proxy@%',
        ['app@%'],
        'GRANT SELECT ON shop.* TO ?@?',
      ],
      [iso(at(10)), 'group', 'iam-admin', null, ['bob@example.com', 'BreakGlass'], null],
      [iso(at(30)), 'group', 'iam-admin', null, ['alice@example.com', 'DBAdmins'], null],
      [iso(at(51)), 'audit configuration', 'app@%', 'app@%', [], 'SELECT audit_log_filter_remove_user(?)'],
    ]);
    // alice is named behind the GRANT by her login name and her sign-on from the client's address.
    expect(rowsOf(d, 'changes').map((r) => [r.made_by, r.made_by_confidence])).toEqual([
      ['alice@example.com', 'corroborated'],
      ['iam-admin', null],
      ['iam-admin', null],
      ['app@%', null],
    ]);
    expect(rowsOf(d, 'membership-changes')).toEqual([
      {
        time: iso(at(10)),
        person: 'bob@example.com',
        group: 'BreakGlass',
        change: 'added',
        accounts: ['emergency_admin on prod-orders'],
      },
      {
        time: iso(at(30)),
        person: 'alice@example.com',
        group: 'DBAdmins',
        change: 'removed',
        accounts: ['dba_proxy on prod-orders'],
      },
    ]);
  });

  it('says how surely the person behind a change was named: an asserted name is a claim', async () => {
    const s = await scenarioStore(assertedGrant());
    const [changes] = await runReports(s, {
      reports: ['privileged-changes'],
      period: DAY_PERIOD,
      generatedAt: T0,
    });
    expect(
      rowsOf(changes!, 'changes')
        .filter((r) => r.kind === 'privilege')
        .map((r) => [r.made_by, r.made_by_confidence]),
    ).toEqual([['bob@example.com', 'asserted']]);
    await s.close();
  });
  it('says which changes were acknowledged or reverted by the end of the period', async () => {
    const s = SqliteStore.open(':memory:');
    await runPipeline(s, [lifecycle().events], { config: LIFECYCLE_CONFIG });
    const [d] = await runReports(s, { reports: ['privileged-changes'], period: DAY_PERIOD, generatedAt: T0 });
    expect(
      rowsOf(d!, 'changes')
        .filter((r) => r.kind === 'mapping' || r.kind === 'policy')
        .map((r) => [r.time, r.kind, r.resolution]),
    ).toEqual([
      [iso(at(20)), 'mapping', 'reverted'],
      [iso(at(30)), 'policy', 'reverted'],
      // Inside the expected-change window CHG-42: planned.
      [iso(at(40)), 'mapping', 'acknowledged'],
    ]);
    await s.close();
  });
});

describe('the confidence of the people named', () => {
  // bob's client sent "bob" as its login name on the break-glass account and nothing confirms it:
  // he is named, asserted; his GRANT is an alert, one statement of his failed.
  let s: StateStore;
  let reports: ReportDocument[];
  beforeAll(async () => {
    s = await scenarioStore([
      ...assertedGrant(),
      db.query({
        at: at(7),
        conn: 1,
        account: 'emergency_admin',
        sqlCommand: 'select',
        sql: 'SELEC 1',
        status: 1064,
      }),
    ]);
    reports = await runReports(s, {
      reports: ['alert-summary', 'failed-access'],
      period: DAY_PERIOD,
      generatedAt: T0,
    });
    return () => s.close();
  });
  /** The report's rows of `sectionId` and its CSV file of that section. */
  const table = (report: string, sectionId: string) => {
    const d = reports.find((r) => r.report === report)!;
    const csv = renderCsv(d).find((f) => f.name === `${report}.${sectionId}.csv`)!.text;
    return { d, rows: rowsOf(d, sectionId), csv };
  };

  it('alert summary: each alert that names a person says how surely', () => {
    const { d, rows, csv } = table('alert-summary', 'alerts');
    const grant = rows.filter((r) => r.rule === 'privilege.change');
    expect(grant.map((r) => [r.person, r.person_confidence])).toEqual([['bob@example.com', 'asserted']]);
    expect(csv.split('\r\n')[0]).toContain('"person","person_confidence"');
    expect(csv).toContain('"bob@example.com","asserted"');
    expect(renderHtml(d)).toContain('<th scope="col">Confidence</th>');
  });

  it('failed access: failed statements say how surely their person was named', () => {
    const { d, rows, csv } = table('failed-access', 'failed-statements');
    expect(rows.map((r) => [r.person, r.confidence, r.failed_statements])).toEqual([
      ['bob@example.com', 'asserted', 1],
    ]);
    expect(csv.split('\r\n')[0]).toContain('"person","confidence"');
    expect(csv).toContain('"bob@example.com","asserted"');
    expect(renderHtml(d)).toContain('<th scope="col">Confidence</th>');
  });
});

describe('failed access and local-account use', () => {
  it('groups failed logins, lists the bursts, and the local account on the IAM-only system', () => {
    const d = doc('failed-access');
    expect(
      rowsOf(d, 'failed-logins').map((r) => [
        r.login_user,
        r.source_ip,
        r.error_code,
        r.attempts,
        r.first,
        r.last,
      ]),
    ).toEqual([
      ['admin', '203.0.113.9', 1045, 5, iso(at(41)), iso(at(45))],
      [FORMULA, '198.51.100.7', 1045, 1, iso(at(71)), iso(at(71))],
    ]);
    expect(rowsOf(d, 'failure-bursts').map((r) => r.failures)).toEqual([5, 5]);
    expect(rowsOf(d, 'local-account-use')).toEqual([
      {
        db_system: 'prod-orders',
        mysql_account: 'app@%',
        allow_listed: false,
        sessions: 1,
        alerts: 1,
        source_ips: ['10.1.1.1'],
        first: iso(at(50)),
        last: iso(at(50)),
      },
    ]);
  });

  it('counts the alert of a local-account login merged into one raised before the period, and the burst repeated into it', async () => {
    const s = await scenarioStore();
    try {
      const alerts: Alert[] = [];
      for await (const a of s.alerts()) alerts.push(a);
      const local = alerts.find((a) => a.rule === 'access.local-account')!;
      const burst = alerts.find((a) => a.rule === 'auth.failure-burst')!;
      // app@% logs in again ten minutes later, merged into the alert of its first login.
      const again = session('later', at(60), {
        mysqlAccount: 'app@%',
        account: { user: 'app', host: '%' },
        login: { user: 'app', os: '', ip: '10.1.1.1', proxy: '' },
        sourceIp: '10.1.1.1',
        proxied: false,
        attribution: { method: 'local-account', confidence: 'verified', evidence: [] },
      });
      await s.commit(
        batch({
          sessions: [again],
          alertUpdates: [
            { id: local.id, occurrences: 2, lastTime: iso(at(60)) },
            { id: burst.id, occurrences: 2, lastTime: iso(at(60)) },
          ],
        }),
      );
      const [d] = await runReports(s, {
        reports: ['failed-access'],
        period: { from: at(55), to: DAY_PERIOD.to },
        generatedAt: T0,
      });
      expect(rowsOf(d!, 'local-account-use').map((r) => [r.mysql_account, r.sessions, r.alerts])).toEqual([
        ['app@%', 1, 1],
      ]);
      expect(rowsOf(d!, 'failure-bursts').map((r) => [r.time, r.last_time, r.occurrences])).toEqual([
        [burst.time, iso(at(60)), 2],
      ]);
      expect(figure(d!, 'Failure bursts')).toBe(1);
    } finally {
      await s.close();
    }
  });
});

describe('alert summary', () => {
  it('counts alerts by rule, severity, DB system and day', () => {
    const d = doc('alert-summary');
    expect(figure(d, 'Alerts in the period')).toBe(13);
    const byRule = Object.fromEntries(rowsOf(d, 'by-rule').map((r) => [r.rule, r.alerts]));
    expect(byRule).toEqual({
      'access.after-revocation': 1,
      'access.local-account': 1,
      'access.unattributed': 2,
      'audit.tamper': 1,
      'auth.failure-burst': 2,
      'break-glass.stale': 1,
      'break-glass.used': 2,
      'iam.privileged-group-change': 2,
      'privilege.change': 1,
    });
    expect(rowsOf(d, 'by-severity').map((r) => [r.severity, r.alerts])).toEqual([
      ['critical', 3],
      ['high', 4],
      ['medium', 6],
      ['low', 0],
      ['info', 0],
    ]);
    expect(rowsOf(d, 'by-db-system').map((r) => [r.db_system, r.alerts])).toEqual([
      ['(no DB system: IAM)', 3],
      ['prod-orders', 10],
    ]);
    expect(rowsOf(d, 'by-day').map((r) => [r.day, r.alerts])).toEqual([
      ['2026-11-02', 13],
      ['2026-11-03', 0],
    ]);
    expect(rowsOf(d, 'alerts')).toHaveLength(13);
  });

  it('says which alerts were resolved by the end of the period, when and why', async () => {
    const s = SqliteStore.open(':memory:');
    await runPipeline(s, [lifecycle().events], { config: LIFECYCLE_CONFIG });
    const summary = async (to: number) => {
      const [d] = await runReports(s, {
        reports: ['alert-summary'],
        period: { from: DAY_PERIOD.from, to },
        generatedAt: T0,
      });
      return d!;
    };
    const d = await summary(DAY_PERIOD.to);
    const rows = rowsOf(d, 'alerts').map((r) => [r.rule, r.time, r.resolved, r.resolution]);
    expect(rows).toContainEqual(['mapping.change', iso(at(40)), iso(at(40)), 'acknowledged']);
    expect(rows).toContainEqual(['break-glass.stale', iso(at(240)), iso(at(300)), 'membership-removed']);
    const open = rows.filter((r) => r[2] === null).length;
    expect(open).toBeLessThan(rows.length);
    expect(figure(d, 'Still open at the end of the period')).toBe(open);
    // At 04:30 the membership was not removed yet: the stale grant was still open then.
    const earlier = rowsOf(await summary(at(270)), 'alerts').map((r) => [r.rule, r.resolved, r.resolution]);
    expect(earlier).toContainEqual(['break-glass.stale', null, null]);
    await s.close();
  });

  it('compares with the previous period of the same length', async () => {
    // 11:00 to 15:00: the stale and the late break-glass alerts; 07:00 to 11:00 holds the other 11.
    const [d] = await runReports(store, {
      reports: ['alert-summary'],
      period: { from: at(120), to: at(360) },
      generatedAt: T0,
    });
    expect([figure(d!, 'Alerts in the period'), figure(d!, 'Alerts in the previous period')]).toEqual([
      2, 11,
    ]);
    const used = rowsOf(d!, 'by-rule').find((r) => r.rule === 'break-glass.used');
    expect([used?.alerts, used?.previous, used?.change_percent]).toEqual([1, 1, 0]);
    const unattributed = rowsOf(d!, 'by-rule').find((r) => r.rule === 'access.unattributed');
    expect([unattributed?.alerts, unattributed?.previous, unattributed?.change_percent]).toEqual([
      0, 2, -100,
    ]);
  });
});
