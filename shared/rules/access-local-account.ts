import { z } from 'zod';
import { defineRule, loginOccurrence, sessionFields } from '../detect/rule.js';
import { at, DB, db, GROUPS, USERS } from '../detect/timeline.js';
import { Memo } from '../memo.js';

/** `sql` run by admin at `minutes` after T0. */
const byAdmin = (minutes: number, sqlCommand: string, sql: string) =>
  db.query({ at: at(minutes), conn: 99, account: 'admin', sqlCommand, sql });

/** The configuration of an IAM-only DB system that lists these accounts alone. */
const iamOnlyWith = (
  ...accounts: { user: string; host: string; plugin: string; authenticationString: string }[]
) => ({
  dbSystems: [{ id: DB.id, name: DB.name, iamOnly: true, accounts }],
});

/** A MySQL LIKE-style pattern (`%` any run, `_` one character) as a regular expression. */
function likeRegExp(pattern: string, flags: string): RegExp {
  const body = pattern
    .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    .replaceAll('%', '.*')
    .replaceAll('_', '.');
  return new RegExp(`^${body}$`, flags);
}

/**
 * Patterns compiled (the allow-lists' few patterns are matched on every local login). MySQL user
 * names are case-sensitive (`ADMIN` is another account than `admin`), host names are not.
 */
const users = new Memo(1000, (pattern: string) => likeRegExp(pattern, ''));
const hosts = new Memo(1000, (pattern: string) => likeRegExp(pattern, 'i'));

export function allowListed(patterns: readonly string[], user: string, host: string): boolean {
  return patterns.some((p) => {
    const i = p.lastIndexOf('@');
    const [pu, ph] = i < 0 ? [p, '%'] : [p.slice(0, i), p.slice(i + 1)];
    return users.get(pu).test(user) && hosts.get(ph).test(host);
  });
}

export const accessLocalAccount = defineRule({
  id: 'access.local-account',
  title: 'Local account bypassing IAM',
  description: 'A non-IAM MySQL account logs in on an iamOnly DB system and is not allow-listed.',
  severity: 'high',
  attack: ['T1078.003'],
  runbook:
    'Identify who holds the local password, rotate it, and move the user to an IAM mapping or allow-list the service account.',
  falsePositives: ['Service accounts that are not yet in allowedLocalAccounts.'],
  params: z.strictObject({}),
  suppressFor: 3_600_000,
  on: {
    session: (f) => {
      const { session, db: dbc } = f;
      if (session.attribution.method !== 'local-account' || !dbc?.iamOnly) return [];
      if (allowListed(dbc.allowedLocalAccounts, session.account.user, session.account.host)) return [];
      return [
        {
          subject: `${session.dbSystem.id}|${session.mysqlAccount}`,
          occurrence: loginOccurrence(f, session.id),
          ts: f.authenticated.ts,
          title: `Local account ${session.mysqlAccount} logged in to ${session.dbSystem.name}, which is IAM-only`,
          ...sessionFields(session),
          evidence: [f.authenticated.key],
          details: { sessionId: session.id },
        },
      ];
    },
  },
  cases: [
    {
      name: 'application account on an IAM-only system',
      events: () => [db.connect({ at: at(1), conn: 1, account: 'app', ip: '10.1.1.1' })],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { identity: null, mysqlAccount: 'app@%', loginUser: 'app', sourceIp: '10.1.1.1' },
      },
    },
    {
      name: 'a second login exactly suppressFor (1 h) later merges into the first alert',
      boundary: { param: 'suppressFor', side: 'inside' },
      events: () => [
        db.connect({ at: at(1), conn: 1, account: 'app' }),
        db.connect({ at: at(61), conn: 2, account: 'app' }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          mysqlAccount: 'app@%',
          time: '2026-11-02T09:01:00.000Z',
          details: { occurrences: 2, lastTime: '2026-11-02T10:01:00.000Z' },
        },
      },
    },
    {
      name: 'a second login one second after the suppression window is a new alert',
      boundary: { param: 'suppressFor', side: 'outside' },
      events: () => [
        db.connect({ at: at(1), conn: 1, account: 'app' }),
        db.connect({ at: at(61) + 1_000, conn: 2, account: 'app' }),
      ],
      expect: { alerts: 2, severity: 'high', match: { mysqlAccount: 'app@%', details: { occurrences: 1 } } },
    },
    {
      name: 'allow-list patterns: % and _ match any run and one character, a pattern without a host any host',
      config: {
        dbSystems: [
          { id: DB.id, name: DB.name, iamOnly: true, allowedLocalAccounts: ['svc%@%', 'batch', 'etl.job@%'] },
        ],
      },
      events: () => [
        db.connect({ at: at(1), conn: 1, account: 'svc_reporting' }),
        db.connect({ at: at(2), conn: 2, account: 'batch' }),
        db.connect({ at: at(3), conn: 3, account: 'etl.job' }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'user names are case-sensitive in allow-list patterns, host names are not',
      config: {
        dbSystems: [
          { id: DB.id, name: DB.name, iamOnly: true, allowedLocalAccounts: ['admin@%', 'ops@LocalHost'] },
        ],
      },
      events: () => [
        db.connect({ at: at(1), conn: 1, account: 'ADMIN' }),
        db.connect({ at: at(2), conn: 2, account: 'ops', host: 'localhost' }),
      ],
      expect: { alerts: 1, severity: 'high', match: { mysqlAccount: 'ADMIN@%', loginUser: 'ADMIN' } },
    },
    {
      name: 'an IAM account the configuration names with its host in another case is that account, as in MySQL',
      config: iamOnlyWith({
        user: 'carol',
        host: 'LocalHost',
        plugin: 'authentication_oci',
        authenticationString: JSON.stringify({ user: USERS.carol }),
      }),
      events: () => [db.connect({ at: at(1), conn: 1, account: 'carol', host: 'localhost' })],
      expect: { alerts: 0 },
    },
    {
      name: 'a dot in an allow-list pattern is only a dot',
      config: {
        dbSystems: [{ id: DB.id, name: DB.name, iamOnly: true, allowedLocalAccounts: ['etl.job@%'] }],
      },
      events: () => [db.connect({ at: at(1), conn: 1, account: 'etlXjob' })],
      expect: { alerts: 1, severity: 'high', match: { mysqlAccount: 'etlXjob@%' } },
    },
    {
      name: 'a DB system missing from the configuration is silent',
      events: () => [
        db.connect({ at: at(1), conn: 1, account: 'app', db: 'ocid1.mysqldbsystem.oc1..unknown' }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'a proxied account logged in to after a statement opened it to logins without IAM',
      events: () => [
        byAdmin(1, 'alter_user', "ALTER USER 'dev_proxy'@'%' IDENTIFIED BY <secret> ACCOUNT UNLOCK"),
        db.connect({ at: at(2), conn: 1, account: 'dev_proxy', ip: '10.9.9.9' }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          identity: null,
          mysqlAccount: 'dev_proxy@%',
          loginUser: 'dev_proxy',
          title: 'Local account dev_proxy@% logged in to prod-orders, which is IAM-only',
        },
      },
    },
    {
      name: 'a look-alike of a proxied account on another host is a local account',
      events: () => [
        byAdmin(1, 'create_user', "CREATE USER 'dev_proxy'@'10.%' IDENTIFIED BY <secret>"),
        db.connect({ at: at(2), conn: 1, account: 'dev_proxy', host: '10.%', ip: '10.9.9.9' }),
        db.connect({ at: at(3), conn: 2, account: 'dev_proxy', user: 'bob', ip: '10.9.9.9' }),
      ],
      expect: { alerts: 1, severity: 'high', match: { mysqlAccount: 'dev_proxy@10.%', identity: null } },
    },
    {
      name: 'a mapping that names its account with a host: the user on another host is a local account',
      config: iamOnlyWith({
        user: '',
        host: '%',
        plugin: 'authentication_oci',
        authenticationString: JSON.stringify({ group_mapping: { [GROUPS.dev]: "'dev_proxy'@'%'" } }),
      }),
      events: () => [
        db.connect({ at: at(1), conn: 1, account: 'dev_proxy', host: '10.%', user: 'bob' }),
        db.connect({ at: at(2), conn: 2, account: 'dev_proxy', user: 'bob' }),
      ],
      expect: { alerts: 1, severity: 'high', match: { mysqlAccount: 'dev_proxy@10.%', loginUser: 'bob' } },
    },
    {
      name: 'a proxy account the server names that maps no group is a local login',
      events: () => {
        const connect = db.connect({ at: at(1), conn: 1, account: 'dev_proxy', user: 'bob' });
        return [{ ...connect, login: { ...connect.login!, proxy: "'app'@'%'" } }];
      },
      expect: { alerts: 1, severity: 'high', match: { mysqlAccount: 'dev_proxy@%', loginUser: 'bob' } },
    },
    {
      name: 'group logins to a proxied account: ordinary, named by the server, after a grant, after it was locked again',
      events: () => [
        db.connect({ at: at(1), conn: 1, account: 'dev_proxy', user: 'bob' }),
        byAdmin(2, 'grant', "GRANT SELECT ON shop.* TO 'dev_proxy'@'%'"),
        db.connect({ at: at(3), conn: 2, account: 'dev_proxy', user: 'bob' }),
        byAdmin(4, 'alter_user', "ALTER USER 'dev_proxy'@'%' IDENTIFIED BY <secret> ACCOUNT UNLOCK"),
        db.connect({ at: at(5), conn: 3, account: 'dev_proxy', user: 'bob', proxy: true }),
        byAdmin(6, 'alter_user', "ALTER USER 'dev_proxy'@'%' ACCOUNT LOCK"),
        db.connect({ at: at(7), conn: 4, account: 'dev_proxy', user: 'dave' }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'allow-listed admin is silent',
      events: () => [db.connect({ at: at(1), conn: 1, account: 'admin' })],
      expect: { alerts: 0 },
    },
    {
      name: 'system that is not IAM-only is silent',
      config: {
        dbSystems: [
          {
            id: DB.id,
            name: DB.name,
            iamOnly: false,
            accounts: [{ user: 'app', host: '%', plugin: 'mysql_native_password' }],
          },
        ],
      },
      events: () => [db.connect({ at: at(1), conn: 1, account: 'app' })],
      expect: { alerts: 0 },
    },
  ],
});
