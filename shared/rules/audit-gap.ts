import { z } from 'zod';
import { defineRule } from '../detect/rule.js';
import { at, DB, db, gap } from '../detect/timeline.js';

const WHY: Record<string, string> = {
  pruned: 'the log was rotated and pruned before it was read',
  oversized: 'the server skipped events larger than the read buffer',
  'log-reset': "the instance's log went back in time",
  'server-changed': 'another server now answers at this instance (failover or replacement)',
  'delivery-outage': 'delivery failed for longer than the source keeps data',
};

export const auditGap = defineRule({
  id: 'audit.gap',
  title: 'Part of an audit trail could not be read',
  description:
    "Events of an instance's audit log were lost before they were read: pruned before collection, skipped for size, a log that went back in time or a different server at the instance, or a delivery outage longer than the source keeps data.",
  severity: 'critical',
  attack: ['T1562.008', 'T1070'],
  runbook:
    'Nothing that happened on the instance in the range is known. Check why (collector down, retention too short, read buffer too small, failover), read what still exists elsewhere, and treat the range as unaudited in reports.',
  falsePositives: [
    'A planned failover or instance replacement (the gap is still real: the old instance kept events nobody read).',
  ],
  params: z.strictObject({}),
  suppressFor: 0,
  on: {
    gap: ({ event, db }) => {
      const where = [db?.name ?? event.dbSystemName ?? event.dbSystemId ?? event.trail, event.instance]
        .filter(Boolean)
        .join('/');
      const range = event.to ? `${event.from} to ${event.to}` : `after ${event.from}`;
      return [
        {
          subject: event.key,
          occurrence: event.reason,
          ts: event.ts,
          title: `Audit trail gap on ${where}: ${WHY[event.reason]} (${range})`,
          dbSystem: event.dbSystemId
            ? { id: event.dbSystemId, name: db?.name ?? event.dbSystemName ?? event.dbSystemId }
            : null,
          identity: null,
          evidence: [event.key],
          details: {
            trail: event.trail,
            reason: event.reason,
            from: event.from,
            ...(event.instance ? { instance: event.instance } : {}),
            ...(event.to ? { to: event.to } : {}),
            ...(event.skipped !== undefined ? { skipped: event.skipped } : {}),
            ...(event.detail ? { detail: event.detail } : {}),
          },
        },
      ];
    },
  },
  cases: [
    {
      name: 'log pruned past the last event read',
      events: () => [gap.mysql({ from: at(1), to: at(30), reason: 'pruned' })],
      expect: {
        alerts: 1,
        severity: 'critical',
        match: {
          identity: null,
          dbSystem: { id: DB.id },
          title:
            'Audit trail gap on prod-orders/primary: the log was rotated and pruned before it was read (2026-11-02T09:01:00.000Z to 2026-11-02T09:30:00.000Z)',
          details: {
            reason: 'pruned',
            instance: 'primary',
            from: '2026-11-02T09:01:00.000Z',
            to: '2026-11-02T09:30:00.000Z',
          },
        },
      },
    },
    {
      name: 'events skipped for size on a read replica',
      events: () => [
        gap.mysql({ from: at(1), to: at(2), reason: 'oversized', instance: 'replica-1', skipped: 2 }),
      ],
      expect: {
        alerts: 1,
        severity: 'critical',
        match: {
          title:
            'Audit trail gap on prod-orders/replica-1: the server skipped events larger than the read buffer (2026-11-02T09:01:00.000Z to 2026-11-02T09:02:00.000Z)',
          details: { reason: 'oversized', instance: 'replica-1', skipped: 2 },
        },
      },
    },
    {
      name: 'a log that went back in time, with no end to the gap',
      events: () => [gap.mysql({ from: at(5), reason: 'log-reset' })],
      expect: {
        alerts: 1,
        severity: 'critical',
        match: {
          title:
            "Audit trail gap on prod-orders/primary: the instance's log went back in time (after 2026-11-02T09:05:00.000Z)",
          details: { reason: 'log-reset', from: '2026-11-02T09:05:00.000Z' },
        },
      },
    },
    {
      name: 'another server at the instance, with what the collector saw',
      events: () => [
        { ...gap.mysql({ from: at(5), to: at(6), reason: 'server-changed' }), detail: 'server_uuid changed' },
      ],
      expect: {
        alerts: 1,
        severity: 'critical',
        match: {
          title:
            'Audit trail gap on prod-orders/primary: another server now answers at this instance (failover or replacement) (2026-11-02T09:05:00.000Z to 2026-11-02T09:06:00.000Z)',
          dbSystem: { id: DB.id, name: DB.name },
          details: { reason: 'server-changed', detail: 'server_uuid changed' },
        },
      },
    },
    {
      name: 'a delivery outage of the OCI audit trail names the trail, and no DB system',
      events: () => {
        const {
          dbSystemId: _,
          dbSystemName: __,
          instance: ___,
          ...g
        } = gap.mysql({
          from: at(5),
          reason: 'delivery-outage',
        });
        return [{ ...g, trail: 'oci-audit' as const }];
      },
      expect: {
        alerts: 1,
        severity: 'critical',
        match: {
          title:
            'Audit trail gap on oci-audit: delivery failed for longer than the source keeps data (after 2026-11-02T09:05:00.000Z)',
          dbSystem: null,
          details: { trail: 'oci-audit', reason: 'delivery-outage' },
        },
      },
    },
    {
      name: 'the configured name of the DB system wins over the one the collector recorded',
      events: () => [
        { ...gap.mysql({ from: at(1), to: at(2), reason: 'pruned' }), dbSystemName: 'orders-old' },
      ],
      expect: {
        alerts: 1,
        severity: 'critical',
        match: {
          title:
            'Audit trail gap on prod-orders/primary: the log was rotated and pruned before it was read (2026-11-02T09:01:00.000Z to 2026-11-02T09:02:00.000Z)',
          dbSystem: { id: DB.id, name: DB.name },
        },
      },
    },
    {
      name: 'a DB system no longer configured is named as the collector recorded it',
      events: () => [
        {
          ...gap.mysql({ from: at(1), to: at(2), reason: 'pruned' }),
          dbSystemId: 'ocid1.mysqldbsystem.oc1..retired',
          dbSystemName: 'orders-retired',
        },
      ],
      expect: {
        alerts: 1,
        severity: 'critical',
        match: {
          title:
            'Audit trail gap on orders-retired/primary: the log was rotated and pruned before it was read (2026-11-02T09:01:00.000Z to 2026-11-02T09:02:00.000Z)',
          dbSystem: { id: 'ocid1.mysqldbsystem.oc1..retired', name: 'orders-retired' },
        },
      },
    },
    {
      name: 'the same gap reported twice (a re-read) is one alert',
      events: () => {
        const g = gap.mysql({ from: at(1), to: at(30), reason: 'pruned' });
        return [g, { ...g }];
      },
      expect: { alerts: 1, severity: 'critical', match: { details: { reason: 'pruned', occurrences: 1 } } },
    },
    {
      name: 'a log read without a gap raises nothing',
      events: () => [
        db.connect({ at: at(1), conn: 7, account: 'admin' }),
        db.disconnect({ at: at(2), conn: 7, account: 'admin' }),
      ],
      expect: { alerts: 0 },
    },
  ],
});
