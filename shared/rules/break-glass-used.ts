import { z } from 'zod';
import { defineRule, sessionFields } from '../detect/rule.js';
import { at, db, GROUPS, iam, USERS } from '../detect/timeline.js';

export const breakGlassUsed = defineRule({
  id: 'break-glass.used',
  title: 'Break-glass access used',
  description:
    'A session resolves through a break-glass group: once per grant and DB system, and once more (critical) after the TTL.',
  severity: 'high',
  attack: ['T1078.004'],
  runbook:
    'Confirm the emergency ticket, that the person is who the attribution says, and review the session activity.',
  falsePositives: ['Planned break-glass drills.'],
  params: z.strictObject({}),
  suppressFor: 0,
  on: {
    session: (f) => {
      const bg = f.breakGlass;
      if (!bg) return [];
      const late = f.authenticated.ts > bg.startTs + bg.maxDuration;
      return [
        {
          subject: `${bg.grant}|${f.session.dbSystem.id}`,
          occurrence: late ? 'after-ttl' : 'within-ttl',
          ts: f.authenticated.ts,
          severity: late ? 'critical' : 'high',
          title: `${f.session.identity?.name ?? 'someone'} used break-glass access on ${f.session.dbSystem.name}${late ? ' after its maximum duration' : ''}`,
          ...sessionFields(f.session),
          evidence: f.session.attribution.evidence,
          details: { sessionId: f.session.id, grant: bg.grant, afterTtl: late },
        },
      ];
    },
  },
  cases: [
    {
      name: 'two sessions within the TTL give one alert',
      events: () => [
        iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg }),
        db.connect({ at: at(10), conn: 1, account: 'emergency_admin', user: 'bob', proxy: true }),
        db.connect({ at: at(20), conn: 2, account: 'emergency_admin', user: 'bob', proxy: true }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          identity: { principalId: USERS.bob, attribution: { method: 'login-name', confidence: 'asserted' } },
          group: { id: GROUPS.bg },
          mysqlAccount: 'emergency_admin@%',
          details: { afterTtl: false, occurrences: 1 },
        },
      },
    },
    {
      name: 'use at the end of the TTL (maxDuration PT4H) is high',
      boundary: { param: 'maxDuration', side: 'inside' },
      events: () => [
        iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg }),
        db.connect({ at: at(240), conn: 1, account: 'emergency_admin', user: 'bob', proxy: true }),
      ],
      expect: { alerts: 1, severity: 'high', match: { details: { afterTtl: false } } },
    },
    {
      name: 'use one second after the TTL is critical',
      boundary: { param: 'maxDuration', side: 'outside' },
      events: () => [
        iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg }),
        db.connect({ at: at(240) + 1_000, conn: 1, account: 'emergency_admin', user: 'bob', proxy: true }),
      ],
      expect: {
        alerts: 1,
        severity: 'critical',
        match: {
          identity: { principalId: USERS.bob },
          group: { id: GROUPS.bg },
          details: { afterTtl: true },
        },
      },
    },
    {
      name: 'ordinary group login is silent',
      events: () => [db.connect({ at: at(10), conn: 1, account: 'dba_proxy', user: 'alice', proxy: true })],
      expect: { alerts: 0 },
    },
  ],
});
