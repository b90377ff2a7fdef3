import { z } from 'zod';
import { accountName } from '../correlate/mappings.js';
import { defineRule, statementFields, statementSql } from '../detect/rule.js';
import { at, db } from '../detect/timeline.js';

export const mappingChange = defineRule({
  id: 'mapping.change',
  title: 'IAM mapping changed',
  description:
    'An authentication_oci mapping (1-to-1 or group_mapping) is created, altered, dropped or renamed, or a PROXY grant changes.',
  severity: 'high',
  attack: ['T1098'],
  runbook: 'Compare the new mapping with the approved one: which IAM group now reaches which MySQL account.',
  falsePositives: ['Planned onboarding of a new group mapping.'],
  params: z.strictObject({}),
  suppressFor: 0,
  on: {
    statement: (f) => {
      const changes = f.mappingChanges.map((c) => `${c.op} ${accountName(c.account)}`);
      if (f.facts.proxyGrant) {
        const g = f.facts.proxyGrant;
        changes.push(`${g.revoke ? 'revoke' : 'grant'} proxy on ${accountName(g.proxied)}`);
      }
      if (changes.length === 0) return [];
      return [
        {
          subject: f.event.key,
          occurrence: 'mapping',
          ts: f.event.ts,
          title: `IAM mapping changed on ${f.db?.name ?? f.event.dbSystemId}: ${changes.join(', ')}`,
          ...statementFields(f),
          evidence: [f.event.key],
          details: { changes, sql: statementSql(f) },
        },
      ];
    },
  },
  cases: [
    {
      name: 'new group mapping',
      events: () => [
        db.query({
          at: at(1),
          conn: 3,
          account: 'admin',
          sqlCommand: 'alter_user',
          sql: `ALTER USER ''@'%' IDENTIFIED WITH 'authentication_oci' AS '{"tenancy":"t","group_mapping":{"ocid1.group.oc1..x":"dba_proxy"}}'`,
        }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { identity: null, mysqlAccount: 'admin@%', details: { changes: ["alter ''@%"] } },
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
