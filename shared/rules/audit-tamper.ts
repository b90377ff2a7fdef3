import { z } from 'zod';
import { accountName } from '../correlate/mappings.js';
import { deferredVia, defineRule, statementFields, statementSql } from '../detect/rule.js';
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
      const program = f.facts.storedProgram;
      const definer = program?.definer ?? (f.event.source === 'mysql' ? f.event.account : null);
      const via = {
        ...(program && definer ? { definer: accountName(definer) } : {}),
        ...deferredVia(f.facts),
      };
      return [
        {
          subject: f.event.key,
          occurrence: t.action,
          ts: f.event.ts,
          title: `Audit logging ${t.action.replaceAll('-', ' ')}${program ? ' by a stored program' : ''} on ${f.db?.name ?? f.event.dbSystemId}`,
          ...statementFields(f),
          evidence: [f.event.key],
          details: { action: t.action, sql: statementSql(f), ...via },
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
      name: 'an event that will remove the filter as another account',
      events: () => [
        db.query({
          at: at(1),
          conn: 4,
          account: 'admin',
          sqlCommand: 'create_event',
          sql: "CREATE DEFINER = 'dba_proxy'@'%' EVENT shop.e ON SCHEDULE EVERY 1 DAY DO SELECT audit_log_filter_remove_filter('log_all')",
        }),
      ],
      expect: {
        alerts: 1,
        severity: 'critical',
        match: {
          title: 'Audit logging filter removed by a stored program on prod-orders',
          details: { action: 'filter-removed', via: 'stored program', definer: 'dba_proxy@%' },
        },
      },
    },
    {
      name: 'a procedure that will disable audit logging',
      events: () => [
        db.query({
          at: at(1),
          conn: 4,
          account: 'admin',
          sqlCommand: 'create_procedure',
          sql: 'CREATE PROCEDURE ops.quiet() BEGIN SET GLOBAL audit_log_disable = ON; END',
        }),
      ],
      expect: {
        alerts: 1,
        severity: 'critical',
        match: { details: { action: 'audit-log-disabled', via: 'stored program', definer: 'admin@%' } },
      },
    },
    {
      name: 'a filter removal prepared from a literal',
      events: () => [
        db.query({
          at: at(1),
          conn: 4,
          account: 'admin',
          sqlCommand: 'prepare_sql',
          sql: "PREPARE st FROM 'SELECT audit_log_filter_remove_user(''%'')'",
        }),
      ],
      expect: {
        alerts: 1,
        severity: 'critical',
        match: { details: { action: 'filter-removed', via: 'prepared statement' } },
      },
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
    ...(
      [
        [
          'audit log disabled (9.x component)',
          'set_option',
          'SET GLOBAL audit_log.disable = true',
          'audit-log-disabled',
        ],
        [
          'audit log disabled (Percona component)',
          'set_option',
          'SET PERSIST audit_log_filter.disable = 1',
          'audit-log-disabled',
        ],
        [
          'audit log disabled with a quoted value',
          'set_option',
          "SET GLOBAL audit_log_disable := 'ON'",
          'audit-log-disabled',
        ],
        [
          'logging policy reduced',
          'set_option',
          "SET GLOBAL audit_log_policy = 'LOGINS'",
          'audit-policy-reduced',
        ],
        [
          'accounts left out by inclusion',
          'set_option',
          "SET GLOBAL audit_log_include_accounts = 'nobody@localhost'",
          'accounts-included',
        ],
        [
          'filter table written directly',
          'update',
          'UPDATE mysql.audit_log_filter SET filter = \'{"filter":{"log":false}}\' WHERE name = \'log_all\'',
          'filter-tables-changed',
        ],
        ['filters reloaded from the tables', 'select', 'SELECT audit_log_filter_flush()', 'filters-reloaded'],
        [
          'audit component uninstalled',
          'uninstall_component',
          "UNINSTALL COMPONENT 'file://component_audit_log'",
          'component-uninstalled',
        ],
        // MySQL reads a comment as a space and runs an executable comment's content, names may be
        // back-quoted, and a value that is not literally the safe one may be anything.
        [
          'a back-quoted filter function',
          'select',
          "SELECT `audit_log_filter_remove_filter`('log_all')",
          'filter-removed',
        ],
        [
          'a comment before the call',
          'select',
          "SELECT audit_log_filter_remove_filter/**/('log_all')",
          'filter-removed',
        ],
        [
          'a comment and a space before the call',
          'select',
          "SELECT audit_log_filter_set_user /* x */ ('%', 'log_none')",
          'filter-changed',
        ],
        [
          'the variable in an executable comment',
          'set_option',
          'SET GLOBAL /*!80000 audit_log_disable */ = ON',
          'audit-log-disabled',
        ],
        [
          'a comment before =',
          'set_option',
          'SET GLOBAL audit_log_disable /* off */ = ON',
          'audit-log-disabled',
        ],
        [
          'a comment before the plugin name',
          'uninstall_plugin',
          'UNINSTALL PLUGIN /**/ audit_log',
          'plugin-uninstalled',
        ],
        [
          'an expression as the value',
          'set_option',
          'SET @@global.audit_log_disable = 2-1',
          'audit-log-disabled',
        ],
        [
          'a user variable as the value',
          'set_option',
          'SET GLOBAL audit_log_disable = @on',
          'audit-log-disabled',
        ],
        [
          'after another assignment, persisted only',
          'set_option',
          'SET @x = 1, PERSIST_ONLY audit_log_statement_policy = NONE',
          'audit-policy-none',
        ],
      ] as const
    ).map(([name, sqlCommand, sql, action]) => ({
      name,
      events: () => [db.query({ at: at(1), conn: 4, account: 'admin', sqlCommand, sql })],
      expect: { alerts: 1, severity: 'critical' as const, match: { details: { action } } },
    })),
    ...(
      [
        ['audit log enabled', 'SET GLOBAL audit_log.disable = OFF'],
        ['logging everything', 'SET GLOBAL audit_log_policy = ALL'],
        ['the filter tables read', 'SELECT name, filter FROM mysql.audit_log_filter'],
        ['audit log enabled behind a comment', 'SET GLOBAL audit_log_disable = /* ON */ OFF'],
        ['the read buffer raised', 'SET SESSION audit_log_read_buffer_size = 4194304'],
        ['a user variable of that name', 'SET @audit_log_disable = ON'],
        ['a setting read', 'SELECT @@global.audit_log_disable, audit_log_read_bookmark()'],
        ['another plugin uninstalled', 'UNINSTALL PLUGIN validate_password'],
        ['a column of that name updated', 'UPDATE settings SET audit_log_disable = 1 WHERE id = 2'],
        [
          'the statement inside a literal',
          "INSERT INTO runbook (step) VALUES ('SET GLOBAL audit_log_disable = ON')",
        ],
        [
          'a function name inside a literal',
          "SELECT note FROM tickets WHERE body LIKE '%audit_log_filter_remove_filter(%'",
        ],
      ] as const
    ).map(([name, sql]) => ({
      name: `${name} is silent`,
      events: () => [db.query({ at: at(1), conn: 4, account: 'admin', sqlCommand: 'select', sql })],
      expect: { alerts: 0 },
    })),
  ],
});
