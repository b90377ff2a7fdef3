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
  },
  cases: [
    {
      name: 'membership open past maxDuration fires once',
      events: () => [
        iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg }),
        iam.signOn({ at: at(300), user: USERS.dave, ip: '1.1.1.1' }),
      ],
      expect: { alerts: 1, severity: 'high' },
    },
    {
      name: 'removed within maxDuration is silent',
      events: () => [
        iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg }),
        iam.removed({ at: at(120), user: USERS.bob, group: GROUPS.bg }),
        iam.signOn({ at: at(600), user: USERS.dave, ip: '1.1.1.1' }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'watermark before the deadline is silent',
      events: () => [iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg })],
      asOf: '2026-11-02T12:00:00Z',
      expect: { alerts: 0 },
    },
  ],
});
