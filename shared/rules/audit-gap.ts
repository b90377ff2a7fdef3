import { z } from 'zod';
import type { GapEvent } from '../../schemas/events.js';
import { defineRule } from '../detect/rule.js';
import { at, DB, db, gap } from '../detect/timeline.js';

const WHY: Record<string, string> = {
  pruned: 'the log was rotated and pruned before it was read',
  oversized: 'the server skipped events larger than the read buffer',
  'log-reset': "the instance's log went back in time",
  'server-changed': 'another server now answers at this instance (failover or replacement)',
  'delivery-outage': 'delivery failed for longer than the source keeps data',
};

/** Nothing is missing after a clock step back, but a server clock set back is worth a look. */
function clockStepTitle(where: string, event: GapEvent): string {
  const minutes = Math.round((Date.parse(event.from) - event.ts) / 60_000);
  return `Clock stepped back on ${where}: the server's clock went back by ${minutes} minute${minutes === 1 ? '' : 's'} at ${event.to ?? event.time}; events are ordered by the log from then on`;
}

export const auditGap = defineRule({
  id: 'audit.gap',
  title: 'Part of an audit trail could not be read',
  description:
    "Events of an instance's audit log were lost before they were read: pruned before collection, skipped for size, a log that went back in time or a different server at the instance, or a delivery outage longer than the source keeps data. Also a server clock that stepped back by `lateness` or more (severity high): nothing is missing, the events after the step are applied in the log's order.",
  severity: 'critical',
  attack: ['T1562.008', 'T1070'],
  runbook:
    'Nothing that happened on the instance in the range is known. Check why (collector down, retention too short, read buffer too small, failover), read what still exists elsewhere, and treat the range as unaudited in reports. For a clock step: find who or what set the server clock back (NTP, a manual change) and read the audit events of the range by the log order, not by time.',
  falsePositives: [
    'A planned failover or instance replacement (the gap is still real: the old instance kept events nobody read).',
    'A clock step: an NTP correction of a clock that ran fast.',
  ],
  params: z.strictObject({}),
  suppressFor: 0,
  on: {
    gap: ({ event, db }) => {
      const where = [db?.name ?? event.dbSystemName ?? event.dbSystemId ?? event.trail, event.instance]
        .filter(Boolean)
        .join('/');
      const range = event.to ? `${event.from} to ${event.to}` : `after ${event.from}`;
      const step = event.reason === 'clock-step';
      return [
        {
          subject: event.key,
          occurrence: event.reason,
          ts: event.ts,
          title: step
            ? clockStepTitle(where, event)
            : `Audit trail gap on ${where}: ${WHY[event.reason]} (${range})`,
          ...(step ? { severity: 'high' as const } : {}),
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
      name: "a server clock that stepped back: nothing is missing, the log's order counts from then on",
      events: () => [gap.mysql({ from: at(50), to: at(5), reason: 'clock-step', instance: 'replica-1' })],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          title:
            "Clock stepped back on prod-orders/replica-1: the server's clock went back by 45 minutes at 2026-11-02T09:05:00.000Z; events are ordered by the log from then on",
          details: {
            reason: 'clock-step',
            from: '2026-11-02T09:50:00.000Z',
            to: '2026-11-02T09:05:00.000Z',
          },
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
