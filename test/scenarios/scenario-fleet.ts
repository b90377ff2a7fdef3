// A compact incident timeline on the standard test fleet, used by the property and restart tests.
import type { ConfigInput } from '../../schemas/config.js';
import type { CanonicalEvent } from '../../schemas/events.js';
import type { Snapshot } from '../../schemas/snapshot.js';
import { at, db, GROUPS, iam, USERS } from '../../shared/detect/timeline.js';
import { accountSnapshot, localAccount } from '../helpers/account-snapshots.js';

export function incidentTimeline(): CanonicalEvent[] {
  return [
    iam.signOn({ at: at(0), user: USERS.alice, ip: '10.0.0.5', mfa: 'TOTP' }),
    db.connect({ at: at(5), conn: 1, account: 'dba_proxy', user: 'alice', ip: '10.0.0.5', proxy: true }),
    db.query({
      at: at(6),
      conn: 1,
      account: 'dba_proxy',
      sqlCommand: 'grant',
      sql: "GRANT SELECT ON shop.* TO 'app'@'%'",
    }),
    iam.added({ at: at(10), user: USERS.bob, group: GROUPS.bg }),
    db.connect({ at: at(15), conn: 2, account: 'emergency_admin', user: 'bob', proxy: true }),
    iam.signOn({ at: at(16), user: USERS.dave, ip: '10.0.0.9' }),
    db.connect({ at: at(18), conn: 3, account: 'dev_proxy', user: 'dev_proxy', ip: '10.0.0.9', proxy: true }),
    db.disconnect({ at: at(25), conn: 1, account: 'dba_proxy' }),
    iam.removed({ at: at(30), user: USERS.alice, group: GROUPS.dba }),
    db.connect({ at: at(40), conn: 4, account: 'dba_proxy', user: 'alice', proxy: true }),
    ...[41, 42, 43, 44, 45].map((m, i) =>
      db.connect({ at: at(m), conn: 10 + i, account: 'admin', ip: '203.0.113.9', status: 1045 }),
    ),
    db.connect({ at: at(50), conn: 20, account: 'app', ip: '10.1.1.1' }),
    db.query({
      at: at(51),
      conn: 20,
      account: 'app',
      sqlCommand: 'select',
      sql: "SELECT audit_log_filter_remove_user('%')",
    }),
    db.connect({
      at: at(60),
      conn: 21,
      account: 'dba_proxy',
      user: 'dba_proxy',
      ip: '10.7.7.7',
      proxy: true,
    }),
    db.connect({ at: at(260), conn: 5, account: 'emergency_admin', user: 'bob', proxy: true }),
    iam.signOn({ at: at(320), user: USERS.dave, ip: '10.0.0.9' }),
  ];
}

const AUTH = 'ALLOW service mysql_dp_auth TO {AUTHENTICATION_INSPECT, GROUP_MEMBERSHIP_INSPECT} IN TENANCY';
const mapping = (groups: Record<string, string>) =>
  `ALTER USER ''@'%' IDENTIFIED WITH 'authentication_oci' AS '${JSON.stringify({ tenancy: 'ocid1.tenancy.oc1..example', group_mapping: groups })}'`;
const ORIGINAL = { [GROUPS.dba]: 'dba_proxy', [GROUPS.bg]: 'emergency_admin', [GROUPS.dev]: 'dev_proxy' };

/** What the lifecycle's mapping changes need: an expected-change window for one of them. */
export const LIFECYCLE_CONFIG: Partial<ConfigInput> = {
  rules: {
    'mapping.change': {
      expected: [{ from: '2026-11-02T09:39:00Z', to: '2026-11-02T09:41:00Z', reason: 'CHG-42' }],
    },
  },
};

/**
 * An alert lifecycle: alerts that end and their resolutions. Events in time order; the last one (a
 * sign-on) arrives later than the lateness.
 */
export function lifecycle(): { events: CanonicalEvent[]; late: CanonicalEvent } {
  const events = [
    iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg }),
    db.connect({ at: at(10), conn: 1, account: 'dev_proxy', user: 'dev_proxy', ip: '10.0.0.9', proxy: true }),
    db.query({
      at: at(20),
      conn: 3,
      account: 'admin',
      sqlCommand: 'alter_user',
      sql: mapping({ 'ocid1.group.oc1..x': 'dba_proxy' }),
    }),
    db.query({ at: at(25), conn: 3, account: 'admin', sqlCommand: 'alter_user', sql: mapping(ORIGINAL) }),
    iam.policy({ at: at(30), kind: 'policy_created', statements: [AUTH] }),
    iam.policy({ at: at(35), kind: 'policy_deleted', statements: [AUTH] }),
    db.query({
      at: at(40),
      conn: 3,
      account: 'admin',
      sqlCommand: 'alter_user',
      sql: mapping({ 'ocid1.group.oc1..y': 'dba_proxy' }),
    }),
    iam.removed({ at: at(300), user: USERS.bob, group: GROUPS.bg }),
  ];
  return { events, late: iam.signOn({ at: at(5), user: USERS.dave, ip: '10.0.0.9', mfa: 'TOTP' }) };
}

/** A retention shorter than the person's connection below, and a ledger kept no longer. */
export const LONG_SESSION_CONFIG: Partial<ConfigInput> = { retention: 'P2D', auditRetention: 'P2D' };

/**
 * Carol's connection (a 1-to-1 IAM account) open from day 0 to day 5, one batch a day: a statement
 * a day up to `activeUntil`, then bob's sign-ons move the clock; on day 5, a GRANT and the disconnect.
 */
export function longSession(activeUntil: number): CanonicalEvent[][] {
  const day = (d: number, minutes = 0) => at(d * 24 * 60 + minutes);
  const carol = { conn: 7, account: 'carol' };
  const batches: CanonicalEvent[][] = [[db.connect({ at: day(0), ...carol })]];
  for (let d = 1; d <= 5; d++)
    batches.push([
      d <= activeUntil
        ? db.query({ at: day(d), ...carol, sqlCommand: 'select', sql: 'SELECT * FROM shop.orders' })
        : iam.signOn({ at: day(d), user: USERS.bob, ip: '10.0.0.7' }),
    ]);
  batches[5]!.push(
    db.query({ at: day(5, 60), ...carol, sqlCommand: 'grant', sql: "GRANT SELECT ON shop.* TO 'app'@'%'" }),
    db.disconnect({ at: day(5, 120), ...carol }),
  );
  return batches;
}

/**
 * Password logins straight to proxied accounts, the server naming no proxy account: the state's
 * baseline snapshot (s1) shows dev_proxy unlocked, a later one (s2, at 09:30) dba_proxy unlocked
 * with nothing audited; ops_proxy is created with a password and then a mapping points the
 * Developers group at it; an audited ACCOUNT LOCK closes dba_proxy at 09:45. Alice and bob sign on
 * before each login they make under their own name.
 */
export function directLogins(): { snapshots: Snapshot[]; events: CanonicalEvent[] } {
  const repointed = { ...ORIGINAL, [GROUPS.dev]: 'ops_proxy' };
  const mappingAccount = {
    user: '',
    host: '%',
    plugin: 'authentication_oci',
    authenticationString: JSON.stringify({ tenancy: 'ocid1.tenancy.oc1..example', group_mapping: repointed }),
    locked: false,
    privileges: [],
  };
  const alice = (minute: number, conn: number, proxy = false) =>
    db.connect({ at: at(minute), conn, account: 'dba_proxy', user: 'alice', ip: '10.0.0.5', proxy });
  const bob = (minute: number, conn: number, account: string) =>
    db.connect({ at: at(minute), conn, account, user: 'bob', ip: '10.0.0.7' });
  const admin = (minute: number, sqlCommand: string, sql: string) =>
    db.query({ at: at(minute), conn: 99, account: 'admin', sqlCommand, sql });
  return {
    snapshots: [
      accountSnapshot('s1', at(-60), { unlocked: ['dev_proxy'] }),
      accountSnapshot('s2', at(30), {
        unlocked: ['dev_proxy', 'dba_proxy'],
        extra: [mappingAccount, localAccount('ops_proxy', false)],
      }),
    ],
    events: [
      iam.signOn({ at: at(0), user: USERS.alice, ip: '10.0.0.5' }),
      alice(5, 1),
      alice(6, 2, true),
      iam.signOn({ at: at(7), user: USERS.bob, ip: '10.0.0.7' }),
      bob(8, 3, 'dev_proxy'),
      admin(12, 'create_user', "CREATE USER 'ops_proxy'@'%' IDENTIFIED BY <secret>"),
      admin(15, 'alter_user', mapping(repointed)),
      bob(20, 4, 'ops_proxy'),
      alice(40, 5),
      admin(45, 'alter_user', "ALTER USER 'dba_proxy'@'%' ACCOUNT LOCK"),
      alice(50, 6),
    ],
  };
}
