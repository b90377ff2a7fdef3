// Golden files: the exact OCSF, CEF and ECS lines for a small timeline that raises every rule, with
// representative sessions and events, produced by the real pipeline. After a deliberate mapping change, review
// the diff and refresh them with `npm run test:update` (a test run never writes them).
import { describe, expect, it } from 'vitest';
import type { CanonicalEvent } from '../../schemas/events.js';
import { RULES } from '../../shared/detect/registry.js';
import { at, db, GROUPS, gap, iam, USERS } from '../../shared/detect/timeline.js';
import {
  DEFAULT_CONTEXT,
  type FormatContext,
  formatAlert,
  formatSession,
  formatSessionEnd,
  formatSessionSwitches,
  type OutputFormat,
} from '../../shared/emit/formats/format.js';
import { runTimeline } from '../helpers/run-timeline.js';

// Built first: event keys come from a counter in the timeline module, so the order is part of the golden output.
const EVENTS: CanonicalEvent[] = [
  // A DBA signs on with MFA, logs in through the DBAdmins group mapping and creates a user.
  iam.signOn({ at: at(0), user: USERS.alice, ip: '10.0.0.5', mfa: 'TOTP' }),
  db.connect({
    at: at(5),
    conn: 1,
    account: 'dba_proxy',
    user: 'alice',
    ip: '10.0.0.5',
    proxy: true,
    attributes: { _client_name: 'libmysql', _client_version: '8.4.3', program_name: 'mysql', _os: 'Linux' },
  }),
  db.query({
    at: at(6),
    conn: 1,
    account: 'dba_proxy',
    sqlCommand: 'create_user',
    sql: "CREATE USER 'rep'@'%' IDENTIFIED BY 'Sup3rS3cret'",
  }),
  db.disconnect({ at: at(9), conn: 1, account: 'dba_proxy' }),
  // A 1-to-1 IAM account reads a table.
  db.connect({ at: at(10), conn: 2, account: 'carol', ip: '10.0.0.7' }),
  db.query({
    at: at(11),
    conn: 2,
    account: 'carol',
    sqlCommand: 'select',
    sql: "SELECT * FROM shop.orders WHERE card = '4111-1111'",
  }),
  // IAM changes: a break-glass grant and the database authentication policy.
  iam.added({ at: at(12), user: USERS.bob, group: GROUPS.bg }),
  iam.policy({
    at: at(13),
    kind: 'policy_updated',
    statements: [
      'ALLOW service mysql_dp_auth TO {AUTHENTICATION_INSPECT, GROUP_MEMBERSHIP_INSPECT} IN TENANCY',
    ],
  }),
  // Failed logins to a local account, a local application login, and a proxied login nobody can be named behind.
  ...[20, 21, 22].map((m, i) =>
    db.connect({ at: at(m), conn: 10 + i, account: 'admin', ip: '203.0.113.9', status: 1045 }),
  ),
  db.connect({ at: at(30), conn: 20, account: 'app', ip: '10.1.1.1' }),
  db.connect({ at: at(40), conn: 21, account: 'dba_proxy', user: 'dba_proxy', ip: '10.7.7.7', proxy: true }),
  // The break-glass grant is used, and left open past its four hours.
  db.connect({ at: at(14), conn: 3, account: 'emergency_admin', user: 'bob', ip: '10.0.0.6', proxy: true }),
  // Alice leaves the DBA group and connects through it again; Bob claims the DBA account.
  iam.removed({ at: at(50), user: USERS.alice, group: GROUPS.dba }),
  db.connect({ at: at(60), conn: 22, account: 'dba_proxy', user: 'alice', ip: '10.0.0.5', proxy: true }),
  db.connect({ at: at(61), conn: 23, account: 'dba_proxy', user: 'bob', ip: '10.0.0.6', proxy: true }),
  // The allow-listed admin drops a 1-to-1 IAM account and removes the audit filter.
  db.connect({ at: at(69), conn: 30, account: 'admin', ip: '10.0.0.9' }),
  db.query({ at: at(70), conn: 30, account: 'admin', sqlCommand: 'drop_user', sql: "DROP USER 'carol'@'%'" }),
  db.query({
    at: at(71),
    conn: 30,
    account: 'admin',
    sqlCommand: 'select',
    sql: "SELECT audit_log_filter_remove_filter('log_all')",
  }),
  // Bob signs on without a second factor and uses the DBA account; part of the audit log is pruned unread.
  iam.signOn({ at: at(75), user: USERS.bob, ip: '10.0.0.6' }),
  iam.added({ at: at(76), user: USERS.bob, group: GROUPS.dba }),
  db.connect({ at: at(80), conn: 24, account: 'dba_proxy', user: 'bob', ip: '10.0.0.6', proxy: true }),
  gap.mysql({ from: at(85), to: at(90), reason: 'pruned' }),
  iam.signOn({ at: at(300), user: USERS.dave, ip: '10.0.0.8' }),
  // An administrator puts an API key on Bob's user, now a DBA.
  iam.credential({ at: at(301), user: USERS.bob }),
  // The DB system is stopped through the MySQL HeatWave API.
  iam.dbSystem({ at: at(302), operation: 'stop' }),
  // Bob logs in to the DBA account while the key put on his user is in force, just before the stop.
  db.connect({ at: at(301.5), conn: 25, account: 'dba_proxy', user: 'bob', ip: '10.0.0.6', proxy: true }),
  // The allow-listed admin's connection is switched to Dave, to Bob, reset by its pool, and back.
  db.connect({
    at: at(303),
    conn: 31,
    account: 'admin',
    ip: '10.0.0.9',
    attributes: { _client_name: 'mysql-connector-python', _client_version: '9.1.0' },
  }),
  db.changeUser({ at: at(304), conn: 31, account: 'dev_proxy', user: 'dave', os: USERS.dave, proxy: true }),
  db.changeUser({ at: at(305), conn: 31, account: 'dev_proxy', user: 'bob', os: USERS.bob, proxy: true }),
  db.changeUser({ at: at(306), conn: 31, account: 'dev_proxy', user: 'bob', os: USERS.bob, proxy: true }),
  db.changeUser({ at: at(307), conn: 31, account: 'admin' }),
  db.disconnect({ at: at(308), conn: 31, account: 'admin' }),
];

/** Pinned so that a release does not rewrite the golden files. */
const ctx: FormatContext = {
  ...DEFAULT_CONTEXT,
  product: { ...DEFAULT_CONTEXT.product, version: '0.0.0-golden' },
};

async function linesOf(format: OutputFormat): Promise<string> {
  const run = await runTimeline(EVENTS, { config: { rules: { 'auth.failure-burst': { threshold: 3 } } } });
  const alerts = [...run.alerts].sort((a, b) => a.time.localeCompare(b.time) || a.id.localeCompare(b.id));
  const sessions = [...run.sessions].sort((a, b) => a.connectTs - b.connectTs || a.id.localeCompare(b.id));
  const lines = [
    ...alerts.map((a) => formatAlert(format, a, ctx)),
    ...sessions.flatMap((s) => [
      formatSession(format, s, ctx),
      ...formatSessionSwitches(format, s, ctx),
      formatSessionEnd(format, s, ctx),
    ]),
  ];
  return `${lines.filter((l) => l !== undefined).join('\n')}\n`;
}

describe('golden outputs', () => {
  it('the timeline raises the representative alerts', async () => {
    const run = await runTimeline(EVENTS, { config: { rules: { 'auth.failure-burst': { threshold: 3 } } } });
    expect(run.alerts.map((a) => a.rule).sort()).toEqual([
      'access.after-revocation',
      'access.identity-mismatch',
      'access.local-account',
      'access.planted-credential',
      'access.unattributed',
      'access.without-mfa',
      'audit.gap',
      'audit.tamper',
      'auth.failure-burst',
      'auth.failure-burst',
      'break-glass.stale',
      'break-glass.used',
      'dbsystem.change',
      'iam.auth-policy-change',
      'iam.credential-change',
      'iam.privileged-group-change',
      'iam.privileged-group-change',
      'iam.privileged-group-change',
      'mapping.change',
      'privilege.change',
      'privilege.change',
    ]);
    // Every rule but those that learn a baseline for weeks before they speak, so that each rule's
    // alert (id, title, evidence, details) is pinned in every format.
    const learning = ['access.new-source', 'access.new-database', 'access.unusual-hour'];
    expect(new Set(run.alerts.map((a) => a.rule))).toEqual(
      new Set(RULES.map((r) => r.id).filter((id) => !learning.includes(id))),
    );
    expect(run.sessions).toHaveLength(14);
    // The switched connection: three switches (the pool's reset is none), each pinned in every format.
    const switched = run.sessions.find((s) => s.connectionId === 31)!;
    expect(
      switched.switches?.map((sw) => [sw.from.mysqlAccount, sw.mysqlAccount, sw.identity?.name]),
    ).toEqual([
      ['admin@%', 'dev_proxy@%', 'dave@example.com'],
      ['dev_proxy@%', 'dev_proxy@%', 'bob@example.com'],
      ['dev_proxy@%', 'admin@%', undefined],
    ]);
  });

  it('OCSF', async () => {
    await expect(await linesOf('ocsf')).toMatchFileSnapshot('./golden/ocsf.jsonl');
  });

  it('CEF', async () => {
    await expect(await linesOf('cef')).toMatchFileSnapshot('./golden/cef.log');
  });

  it('ECS', async () => {
    await expect(await linesOf('ecs')).toMatchFileSnapshot('./golden/ecs.jsonl');
  });
});
