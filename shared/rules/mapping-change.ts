import { z } from 'zod';
import { accountName } from '../correlate/mappings.js';
import { defineRule, type Outcome, statementFields, statementSql } from '../detect/rule.js';
import { at, baseConfig, db, GROUPS } from '../detect/timeline.js';
import { acknowledgement, ExpectedMappingChanges, reverted } from './expected-changes.js';

const OCCURRENCE = 'mapping';

export const mappingChange = defineRule({
  id: 'mapping.change',
  title: 'IAM mapping changed',
  description:
    "An authentication_oci mapping (1-to-1 or group_mapping) is created, altered, dropped or renamed, or a PROXY grant changes, by statement or by writing mysql.user or mysql.proxies_priv directly. A change that maps (or remaps) a group to an account open to logins without IAM then says so (details.openToDirectLogin): the group's logins to it are taken for local ones.",
  severity: 'high',
  attack: ['T1098'],
  runbook:
    'Compare the new mapping with the approved one: which IAM group now reaches which MySQL account. An account the alert says is open to logins without IAM: lock it (ALTER USER ... ACCOUNT LOCK) or give it mysql_no_login, and review who logged in to it directly.',
  falsePositives: [
    'Planned onboarding of a new group mapping (declare it in rules.mapping.change.expected).',
  ],
  params: z.strictObject({ expected: ExpectedMappingChanges }),
  suppressFor: 0,
  on: {
    statement: (f, { params }) => {
      const dbName = f.db?.name ?? f.event.dbSystemId;
      const out: Outcome[] = reverted(f.reverts, () => OCCURRENCE, {
        key: f.event.key,
        ts: f.event.ts,
        note: `a later statement on ${dbName} restored the earlier definition`,
      });
      // Accounts a group is now mapped to that can be logged in to without IAM: its logins to them
      // are taken for local ones from now on, and no opening alert named the group.
      const open = f.mappedToOpen ?? [];
      const openAccounts = [...new Set(open.map((o) => accountName(o.account)))];
      // A statement that only restores earlier definitions ends their alerts and raises none.
      if (f.reverts.complete && !f.facts.proxyGrant && openAccounts.length === 0) return out;
      const changes = [
        ...f.mappingChanges.map((c) => `${c.op} ${accountName(c.account)}`),
        ...(f.facts.mappingTables ?? []),
      ];
      if (f.facts.proxyGrant) {
        const g = f.facts.proxyGrant;
        changes.push(`${g.revoke ? 'revoke' : 'grant'} proxy on ${accountName(g.proxied)}`);
      }
      if (changes.length === 0) return out;
      return [
        {
          subject: f.event.key,
          occurrence: OCCURRENCE,
          ts: f.event.ts,
          title: `IAM mapping changed on ${dbName}: ${changes.join(', ')}${
            openAccounts.length > 0
              ? `; a group now maps to ${openAccounts.join(', ')}, open to logins without IAM`
              : ''
          }`,
          ...statementFields(f),
          evidence: [f.event.key, ...new Set(open.map((o) => o.since))],
          details: {
            changes,
            sql: statementSql(f),
            ...(openAccounts.length > 0
              ? { openToDirectLogin: openAccounts, groups: [...new Set(open.map((o) => o.groupId))] }
              : {}),
          },
        },
        ...out,
        // A window plans the mapping, not an account open to logins without IAM: that stays open.
        ...(openAccounts.length > 0
          ? []
          : acknowledgement(
              'mapping.change',
              params.expected.map((w) => ({ ...w, scope: w.dbSystems })),
              {
                subject: f.event.key,
                occurrence: OCCURRENCE,
                ts: f.event.ts,
                names: [f.event.dbSystemId, f.db?.name],
              },
            )),
      ];
    },
  },
  cases: [
    {
      name: 'new group mapping',
      events: () => [alterGroupMapping(at(1), { 'ocid1.group.oc1..x': 'dba_proxy' })],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { identity: null, mysqlAccount: 'admin@%', details: { changes: ["alter ''@%"] } },
      },
    },
    {
      name: 'a group mapping changed and restored: the restore resolves the change and raises nothing',
      events: () => [
        alterGroupMapping(at(1), { 'ocid1.group.oc1..x': 'dba_proxy' }),
        alterGroupMapping(at(5), configuredGroupMapping()),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { mysqlAccount: 'admin@%', details: { changes: ["alter ''@%"] } },
        resolutions: 1,
        resolution: {
          time: '2026-11-02T09:05:00.000Z',
          reason: 'reverted',
          note: 'a later statement on prod-orders restored the earlier definition',
        },
      },
    },
    {
      name: 'a restore that maps a group back to an account opened meanwhile is raised, and says so',
      events: () => [
        alterGroupMapping(at(1), { [GROUPS.dba]: 'dba_proxy' }),
        byAdmin(at(2), 'alter_user', "ALTER USER 'dev_proxy'@'%' IDENTIFIED BY <secret> ACCOUNT UNLOCK"),
        alterGroupMapping(at(3), configuredGroupMapping()),
      ],
      expect: {
        alerts: 2,
        severity: 'high',
        match: { details: { changes: ["alter ''@%"] } },
        resolutions: 1,
        resolution: { time: '2026-11-02T09:03:00.000Z', reason: 'reverted' },
      },
    },
    {
      name: 'a group already mapped to an open account, now named with its host: nothing new is open to it',
      events: () => [
        byAdmin(at(1), 'alter_user', "ALTER USER 'dev_proxy'@'%' IDENTIFIED BY <secret> ACCOUNT UNLOCK"),
        alterGroupMapping(at(2), {
          [GROUPS.dba]: 'dba_proxy',
          [GROUPS.bg]: 'emergency_admin',
          [GROUPS.dev]: 'dev_proxy@%',
        }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          title: "IAM mapping changed on prod-orders: alter ''@%",
          details: { changes: ["alter ''@%"] },
        },
      },
    },
    // A group mapped to an account created unlocked, or locked.
    ...(
      [
        [
          'a group mapped to an account open to logins without IAM: the alert says so',
          '',
          {
            mysqlAccount: 'admin@%',
            title:
              "IAM mapping changed on prod-orders: alter ''@%; a group now maps to reports@%, open to logins without IAM",
            details: { changes: ["alter ''@%"], openToDirectLogin: ['reports@%'], groups: [GROUPS.dev] },
          },
        ],
        [
          'a group mapped to a locked account: the alert names no opening',
          ' ACCOUNT LOCK',
          { title: "IAM mapping changed on prod-orders: alter ''@%", details: { changes: ["alter ''@%"] } },
        ],
      ] as const
    ).map(([name, lock, match]) => ({
      name,
      events: () => [
        byAdmin(at(1), 'create_user', `CREATE USER 'reports'@'%' IDENTIFIED BY <secret>${lock}`),
        alterGroupMapping(at(2), { [GROUPS.dev]: 'reports' }),
      ],
      expect: { alerts: 1, severity: 'high' as const, match },
    })),
    {
      name: 'a second, different change resolves nothing',
      events: () => [
        alterGroupMapping(at(1), { 'ocid1.group.oc1..x': 'dba_proxy' }),
        alterGroupMapping(at(5), { 'ocid1.group.oc1..y': 'dba_proxy' }),
      ],
      expect: {
        alerts: 2,
        severity: 'high',
        match: { mysqlAccount: 'admin@%', details: { changes: ["alter ''@%"] } },
      },
    },
    {
      name: 'a 1-to-1 IAM account created then dropped',
      events: () => [
        db.query({
          at: at(1),
          conn: 3,
          account: 'admin',
          sqlCommand: 'create_user',
          sql: `CREATE USER 'eve'@'%' IDENTIFIED WITH 'authentication_oci' AS '{"tenancy":"t","user":"ocid1.user.oc1..eve"}'`,
        }),
        db.query({
          at: at(2),
          conn: 3,
          account: 'admin',
          sqlCommand: 'drop_user',
          sql: "DROP USER 'eve'@'%'",
        }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { mysqlAccount: 'admin@%', details: { changes: ['create eve@%'] } },
        resolutions: 1,
        resolution: {
          time: '2026-11-02T09:02:00.000Z',
          reason: 'reverted',
          note: 'a later statement on prod-orders restored the earlier definition',
        },
      },
    },
    {
      name: 'a change inside an expected-change window is acknowledged',
      config: {
        rules: {
          'mapping.change': {
            expected: [
              { from: '2026-11-02T08:00:00Z', to: '2026-11-02T10:00:00Z', reason: 'CHG-1234 onboarding' },
            ],
          },
        },
      },
      events: () => [alterGroupMapping(at(1), { 'ocid1.group.oc1..x': 'dba_proxy' })],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { mysqlAccount: 'admin@%', details: { changes: ["alter ''@%"] } },
        resolutions: 1,
        resolution: {
          time: '2026-11-02T09:01:00.000Z',
          reason: 'acknowledged',
          note: 'expected change: CHG-1234 onboarding',
          evidence: ['config:rules.mapping.change.expected.0'],
        },
      },
    },
    {
      name: 'a change inside an expected-change window that maps a group to an account open to logins without IAM stays open',
      config: {
        rules: {
          'mapping.change': {
            expected: [
              { from: '2026-11-02T08:00:00Z', to: '2026-11-02T10:00:00Z', reason: 'CHG-1234 onboarding' },
            ],
          },
        },
      },
      events: () => [
        byAdmin(at(1), 'create_user', "CREATE USER 'reports'@'%' IDENTIFIED BY <secret>"),
        alterGroupMapping(at(2), { [GROUPS.dev]: 'reports' }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { details: { changes: ["alter ''@%"], openToDirectLogin: ['reports@%'] } },
      },
    },
    {
      name: 'a window for another DB system does not acknowledge it',
      config: {
        rules: {
          'mapping.change': {
            expected: [
              {
                from: '2026-11-02T08:00:00Z',
                to: '2026-11-02T10:00:00Z',
                reason: 'CHG-1234',
                dbSystems: ['prod-billing'],
              },
            ],
          },
        },
      },
      events: () => [alterGroupMapping(at(1), { 'ocid1.group.oc1..x': 'dba_proxy' })],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { mysqlAccount: 'admin@%', details: { changes: ["alter ''@%"] } },
      },
    },
    {
      name: 'dropping a 1-to-1 IAM account',
      events: () => [
        db.query({
          at: at(1),
          conn: 3,
          account: 'admin',
          sqlCommand: 'drop_user',
          sql: "DROP USER 'carol'@'%'",
        }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { mysqlAccount: 'admin@%', details: { changes: ['drop carol@%'], sql: 'DROP USER ?@?' } },
      },
    },
    {
      name: 'granting PROXY on a proxied account',
      events: () => [
        db.query({
          at: at(1),
          conn: 3,
          account: 'admin',
          sqlCommand: 'grant',
          sql: "GRANT PROXY ON 'dba_proxy'@'%' TO ''@'%'",
        }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          title: 'IAM mapping changed on prod-orders: grant proxy on dba_proxy@%',
          details: { changes: ['grant proxy on dba_proxy@%'] },
        },
      },
    },
    {
      name: 'revoking PROXY on a proxied account',
      events: () => [
        db.query({
          at: at(1),
          conn: 3,
          account: 'admin',
          sqlCommand: 'revoke',
          sql: "REVOKE PROXY ON 'dba_proxy'@'%' FROM ''@'%'",
        }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          title: 'IAM mapping changed on prod-orders: revoke proxy on dba_proxy@%',
          details: { changes: ['revoke proxy on dba_proxy@%'] },
        },
      },
    },
    ...(
      [
        [
          'the anonymous account rewritten in mysql.user',
          'update',
          "UPDATE mysql.user SET authentication_string = '<redacted>' WHERE user = ''",
          'update mysql.user',
        ],
        [
          'a proxy row inserted',
          'insert',
          "INSERT INTO `mysql`.`proxies_priv` VALUES ('', '%', 'dba_proxy', '%', 0, '', NOW())",
          'insert mysql.proxies_priv',
        ],
        [
          'an account limit changed in mysql.user is silent',
          'update',
          "UPDATE mysql.user SET max_connections = 10 WHERE user = 'app'",
          undefined,
        ],
        [
          'an account limit changed for the accounts of a plugin is silent (the plugin is only read)',
          'update',
          "UPDATE mysql.user SET max_connections = 10 WHERE plugin = 'caching_sha2_password'",
          undefined,
        ],
        [
          'a table cleaned up by joining mysql.user is silent (it is only read)',
          'delete_multi',
          "DELETE s FROM shop.sessions s JOIN mysql.user u ON u.user = s.login WHERE u.account_locked = 'Y'",
          undefined,
        ],
      ] as const
    ).map(([name, sqlCommand, sql, change]) => ({
      name,
      events: () => [db.query({ at: at(1), conn: 3, account: 'admin', sqlCommand, sql })],
      expect: change
        ? { alerts: 1, severity: 'high' as const, match: { details: { changes: [change] } } }
        : { alerts: 0 },
    })),
    {
      name: 'dropping a local account is silent',
      events: () => [
        db.query({
          at: at(1),
          conn: 3,
          account: 'admin',
          sqlCommand: 'drop_user',
          sql: "DROP USER 'app'@'%'",
        }),
      ],
      expect: { alerts: 0 },
    },
  ],
});

/** A statement an admin runs at `ts` on connection 3. */
function byAdmin(ts: number, sqlCommand: string, sql: string) {
  return db.query({ at: ts, conn: 3, account: 'admin', sqlCommand, sql });
}

/** An admin sets the group mapping of the standard fleet's anonymous account. */
function alterGroupMapping(ts: number, groups: Record<string, string> | string) {
  const text = typeof groups === 'string' ? groups : JSON.stringify({ tenancy: 't', group_mapping: groups });
  return byAdmin(ts, 'alter_user', `ALTER USER ''@'%' IDENTIFIED WITH 'authentication_oci' AS '${text}'`);
}

/** The standard fleet's group mapping, exactly as configured. */
function configuredGroupMapping(): string {
  const anonymous = baseConfig().dbSystems?.[0]?.accounts?.find((a) => a.user === '');
  return anonymous?.authenticationString ?? JSON.stringify({ group_mapping: { [GROUPS.dba]: 'dba_proxy' } });
}
