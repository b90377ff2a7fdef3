import { z } from 'zod';
import { defineRule } from '../detect/rule.js';
import { at, GROUPS, iam, USERS } from '../detect/timeline.js';

export const breakGlassStale = defineRule({
  id: 'break-glass.stale',
  title: 'Break-glass access left open past its maximum duration',
  description:
    'A break-glass group membership stays open past the group maxDuration (fired from the event-time watermark).',
  severity: 'high',
  attack: ['T1098', 'T1078.004'],
  runbook:
    'Remove the user from the break-glass group, confirm the emergency is closed, and review what the account did.',
  falsePositives: [
    'A documented, still-running emergency whose duration was extended without updating maxDuration.',
  ],
  params: z.strictObject({}),
  suppressFor: 0,
  on: {
    grantExpired: (f) => [
      {
        subject: f.grant,
        occurrence: 'stale',
        ts: f.deadlineTs,
        title: `${f.user.name} still holds break-glass group ${f.group.name} past its maximum duration`,
        identity: { principalId: f.user.id, name: f.user.name, attribution: null },
        group: f.group,
        evidence: [f.grant],
        details: {
          grantedAt: new Date(f.startTs).toISOString(),
          deadline: new Date(f.deadlineTs).toISOString(),
        },
      },
    ],
    grantEnded: (f) => [
      {
        resolves: { subject: f.grant, occurrence: 'stale' },
        ts: f.endTs,
        reason: 'membership-removed',
        note: `${f.user.name} was removed from ${f.group.name} at ${new Date(f.endTs).toISOString()}`,
        evidence: [f.removal],
      },
    ],
  },
  cases: [
    {
      name: 'membership open past maxDuration fires once',
      events: () => [
        iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg }),
        iam.signOn({ at: at(300), user: USERS.dave, ip: '1.1.1.1' }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          identity: { principalId: USERS.bob, attribution: null },
          group: { id: GROUPS.bg },
          details: { grantedAt: '2026-11-02T09:00:00.000Z', deadline: '2026-11-02T13:00:00.000Z' },
        },
      },
    },
    {
      name: 'a removal from another group resolves nothing',
      events: () => grantRemoved(at(300), GROUPS.dev),
      expect: {
        alerts: 1,
        severity: 'high',
        match: { identity: { principalId: USERS.bob }, group: { id: GROUPS.bg } },
      },
    },
    {
      name: 'the break-glass group deleted before maxDuration ends its grants: silent',
      events: () => [
        iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg }),
        iam.groupDeleted({ at: at(60), group: GROUPS.bg }),
        iam.signOn({ at: at(300), user: USERS.dave, ip: '1.1.1.1' }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'removed exactly at maxDuration (PT4H) is silent',
      boundary: { param: 'maxDuration', side: 'inside' },
      events: () => grantRemoved(at(240), GROUPS.bg),
      expect: { alerts: 0 },
    },
    {
      name: 'removed one second after maxDuration fires, and the removal resolves the alert',
      boundary: { param: 'maxDuration', side: 'outside' },
      events: () => grantRemoved(at(240) + 1_000, GROUPS.bg),
      expect: {
        alerts: 1,
        severity: 'high',
        match: { identity: { principalId: USERS.bob }, group: { id: GROUPS.bg } },
        resolutions: 1,
        resolution: {
          time: '2026-11-02T13:00:01.000Z',
          reason: 'membership-removed',
          note: 'bob@example.com was removed from BreakGlass at 2026-11-02T13:00:01.000Z',
        },
      },
    },
    {
      name: 'watermark one second before the deadline is silent',
      events: () => [iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg })],
      asOf: '2026-11-02T12:59:59Z',
      expect: { alerts: 0 },
    },
    {
      name: 'watermark at the deadline fires',
      events: () => [iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg })],
      asOf: '2026-11-02T13:00:00Z',
      expect: {
        alerts: 1,
        severity: 'high',
        match: { identity: { principalId: USERS.bob }, group: { id: GROUPS.bg } },
      },
    },
  ],
});

/** Bob is given break-glass access, then removed from `group` at `ts`; the watermark goes past it. */
function grantRemoved(ts: number, group: string) {
  return [
    iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg }),
    iam.removed({ at: ts, user: USERS.bob, group }),
    iam.signOn({ at: at(600), user: USERS.dave, ip: '1.1.1.1' }),
  ];
}
