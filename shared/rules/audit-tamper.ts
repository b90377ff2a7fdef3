import { z } from 'zod';
import { defineRule, statementFields, statementSql } from '../detect/rule.js';
import { at, db } from '../detect/timeline.js';

export const auditTamper = defineRule({
  id: 'audit.tamper',
  title: 'Audit logging tampered with',
  description:
    'Audit filters removed or changed, the audit plugin or component unloaded, or audit logging disabled.',
  severity: 'critical',
  attack: ['T1562.008'],
  runbook:
    'Restore the audit filter, find who ran the statement, and treat the gap in the audit trail as an incident.',
  falsePositives: ['Planned audit filter changes (still worth a record).'],
  params: z.strictObject({}),
  suppressFor: 0,
  on: {
    statement: (f) => {
      const t = f.facts.auditTamper;
      if (!t) return [];
      return [
        {
          subject: f.event.key,
          occurrence: t.action,
          ts: f.event.ts,
          title: `Audit logging ${t.action.replaceAll('-', ' ')} on ${f.db?.name ?? f.event.dbSystemId}`,
          ...statementFields(f),
          evidence: [f.event.key],
          details: { action: t.action, sql: statementSql(f) },
        },
      ];
    },
  },
  cases: [
    {
      name: 'audit filter removed',
      events: () => [
        db.query({
          at: at(1),
          conn: 4,
          account: 'admin',
          sqlCommand: 'select',
          sql: "SELECT audit_log_filter_remove_filter('log_all')",
        }),
      ],
      expect: {
        alerts: 1,
        severity: 'critical',
        match: {
          mysqlAccount: 'admin@%',
          details: { action: 'filter-removed', sql: 'SELECT audit_log_filter_remove_filter(?)' },
        },
      },
    },
    {
      name: 'audit plugin uninstalled',
      events: () => [
        db.query({
          at: at(1),
          conn: 4,
          account: 'admin',
          sqlCommand: 'uninstall_plugin',
          sql: 'UNINSTALL PLUGIN audit_log',
        }),
      ],
      expect: { alerts: 1, severity: 'critical', match: { details: { action: 'plugin-uninstalled' } } },
    },
    {
      name: 'reading the audit log is silent',
      events: () => [
        db.query({
          at: at(1),
          conn: 4,
          account: 'admin',
          sqlCommand: 'select',
          sql: 'SELECT audit_log_read(\'{"start":{}}\')',
        }),
      ],
      expect: { alerts: 0 },
    },
  ],
});
