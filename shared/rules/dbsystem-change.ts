import { z } from 'zod';
import type { Severity } from '../../schemas/alert.js';
import type { DbSystemOperation } from '../../schemas/events.js';
import { defineRule } from '../detect/rule.js';
import { at, DB, iam } from '../detect/timeline.js';

const NOAUDIT = 'ocid1.mysqlconfiguration.oc1..noaudit';
const STANDARD = 'ocid1.mysqlconfiguration.oc1..standard';

export const dbSystemChange = defineRule({
  id: 'dbsystem.change',
  title: 'DB system changed through OCI',
  description:
    "A monitored DB system is stopped, restarted or deleted, or given another MySQL configuration (a configuration carries the audit variables, such as audit_log_disable), through the OCI control plane: no SQL runs, so the audit log only falls quiet. High for those; medium for an update whose record does not say whether the configuration changed, and for a backup deleted; low for a MySQL configuration created, updated or deleted (it acts once a DB system is given it). DB systems not in the configuration's dbSystems are ignored.",
  severity: 'high',
  attack: ['T1562.001', 'T1489', 'T1485', 'T1490'],
  runbook:
    'Confirm the change with the DB system owner. For a new configuration, check its audit variables (audit_log_disable, the audit policies) and the audit filters once the DB system is back; for a stop or restart, check that auditing resumed (a startup event in the audit log, collect reading again); for a deletion, that it was decommissioned on purpose and its backups kept as required.',
  falsePositives: [
    'Planned maintenance: shape or version changes, configuration rollouts, restarts (mute them with a maintenance window).',
    'Backups deleted by the retention policy run as an administrator.',
  ],
  params: z.strictObject({}),
  suppressFor: 0,
  on: {
    iam: ({ event, db }) => {
      const change = event.source === 'iam' ? event.dbSystemChange : undefined;
      if (event.source !== 'iam' || !change) return [];
      const named = change.dbSystem?.id;
      // A DB system the fleet does not list is not monitored; a backup record may name none.
      if (named !== undefined && !db) return [];
      const { operation, configuration } = change;
      if (
        operation === 'update' &&
        configuration?.to !== undefined &&
        configuration.to === configuration.from
      )
        return [];
      const severity: Severity | undefined = operation.endsWith('-configuration')
        ? 'low'
        : operation === 'delete-backup' || (operation === 'update' && configuration?.to === undefined)
          ? 'medium'
          : undefined;
      const system = db?.name ?? db?.id ?? 'a DB system';
      const resource = change.resource?.name ?? change.resource?.id ?? '';
      const titles: Record<DbSystemOperation, string> = {
        update:
          configuration?.to === undefined
            ? `${system} updated; the record does not say whether its configuration changed`
            : `${system} given MySQL configuration ${configuration.to}`,
        stop: `${system} stopped`,
        restart: `${system} restarted`,
        delete: `${system} deleted`,
        'delete-backup': `Backup ${resource} of ${system} deleted`,
        'create-configuration': `MySQL configuration ${resource} created`,
        'update-configuration': `MySQL configuration ${resource} updated`,
        'delete-configuration': `MySQL configuration ${resource} deleted`,
      };
      return [
        {
          subject: event.key,
          occurrence: operation,
          ts: event.ts,
          ...(severity ? { severity } : {}),
          title: titles[operation],
          identity: event.actor.id
            ? { principalId: event.actor.id, name: event.actor.name ?? null, attribution: null }
            : null,
          dbSystem: db ? { id: db.id, name: system } : null,
          ...(event.actor.ip ? { sourceIp: event.actor.ip } : {}),
          evidence: [event.key],
          details: {
            operation,
            resource: change.resource?.id ?? null,
            configuration: configuration?.to ?? null,
            previousConfiguration: configuration?.from ?? null,
          },
        },
      ];
    },
  },
  cases: [
    {
      name: 'prod-orders given a configuration without auditing (the record names old and new)',
      events: () => [
        iam.dbSystem({ at: at(1), operation: 'update', configuration: { from: STANDARD, to: NOAUDIT } }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          title: `prod-orders given MySQL configuration ${NOAUDIT}`,
          identity: { principalId: 'ocid1.user.oc1..admin', name: 'iam-admin', attribution: null },
          dbSystem: { id: DB.id, name: 'prod-orders' },
          details: { operation: 'update', configuration: NOAUDIT, previousConfiguration: STANDARD },
        },
      },
    },
    {
      name: 'an update whose record does not name the configuration',
      events: () => [iam.dbSystem({ at: at(1), operation: 'update' })],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: { dbSystem: { id: DB.id }, details: { operation: 'update', configuration: null } },
      },
    },
    {
      name: 'an update that keeps the configuration (a new display name) is silent',
      events: () => [
        iam.dbSystem({ at: at(1), operation: 'update', configuration: { from: STANDARD, to: STANDARD } }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'prod-orders stopped, restarted, deleted',
      events: () => [
        iam.dbSystem({ at: at(1), operation: 'stop' }),
        iam.dbSystem({ at: at(2), operation: 'restart' }),
        iam.dbSystem({ at: at(3), operation: 'delete' }),
      ],
      expect: { alerts: 3, severity: 'high', match: { dbSystem: { id: DB.id, name: 'prod-orders' } } },
    },
    {
      name: 'a backup of prod-orders deleted',
      events: () => [
        iam.dbSystem({ at: at(1), operation: 'delete-backup', resource: 'ocid1.mysqlbackup.oc1..b1' }),
      ],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          title: 'Backup ocid1.mysqlbackup.oc1..b1 of prod-orders deleted',
          details: { operation: 'delete-backup', resource: 'ocid1.mysqlbackup.oc1..b1' },
        },
      },
    },
    {
      name: 'a MySQL configuration created',
      events: () => [
        {
          ...iam.dbSystem({ at: at(1), operation: 'create-configuration', resource: NOAUDIT }),
          dbSystemChange: { operation: 'create-configuration' as const, resource: { id: NOAUDIT } },
        },
      ],
      expect: {
        alerts: 1,
        severity: 'low',
        match: { title: `MySQL configuration ${NOAUDIT} created`, dbSystem: null },
      },
    },
    {
      name: 'a DB system the configuration does not list is ignored',
      events: () => [iam.dbSystem({ at: at(1), operation: 'stop', db: 'ocid1.mysqldbsystem.oc1..sandbox' })],
      expect: { alerts: 0 },
    },
  ],
});
