import { z } from 'zod';
import { Duration } from '../../schemas/config.js';
import { defineRule } from '../detect/rule.js';
import { at, db } from '../detect/timeline.js';

export const authFailureBurst = defineRule({
  id: 'auth.failure-burst',
  title: 'Burst of failed logins',
  description:
    'At least `threshold` failed logins for one login user (per DB system) or one source IP (fleet-wide) within `window`.',
  severity: 'medium',
  attack: ['T1110'],
  runbook:
    'Check the source IP, lock the targeted account if it is local, and look for a success right after the burst.',
  falsePositives: ['A misconfigured application retrying with an expired password.'],
  params: z.strictObject({
    threshold: z.number().int().min(2).default(5),
    window: Duration.default(10 * 60_000),
  }),
  suppressFor: 3_600_000,
  on: {
    failedLogin: ({ session }, ctx) => {
      const { threshold, window } = ctx.params;
      const scopes: [string, string][] = [
        [`user:${session.dbSystem.id}|${session.login.user}`, `login user ${session.login.user}`],
      ];
      if (session.sourceIp) scopes.push([`ip:${session.sourceIp}`, `source IP ${session.sourceIp}`]);
      return scopes.flatMap(([subject, what]) => {
        const { count, first } = ctx.countInWindow(subject, session.connectKey, session.connectTs, window);
        if (count < threshold) return [];
        return [
          {
            subject,
            occurrence: first,
            ts: session.connectTs,
            title: `${count} failed logins for ${what} on ${session.dbSystem.name}`,
            dbSystem: session.dbSystem,
            loginUser: session.login.user,
            mysqlAccount: session.mysqlAccount,
            ...(session.sourceIp ? { sourceIp: session.sourceIp } : {}),
            identity: null,
            evidence: [session.connectKey],
            details: { failures: count, window, lastStatus: session.status },
          },
        ];
      });
    },
  },
  cases: [
    {
      name: 'five failures in ten minutes from one IP',
      events: () =>
        [1, 2, 3, 4, 5].map((i) =>
          db.connect({ at: at(i), conn: i, account: 'admin', ip: '203.0.113.7', status: 1045 }),
        ),
      expect: { alerts: 2, severity: 'medium' },
    },
    {
      name: 'four failures stay below the threshold',
      events: () =>
        [1, 2, 3, 4].map((i) =>
          db.connect({ at: at(i), conn: i, account: 'admin', ip: '203.0.113.7', status: 1045 }),
        ),
      expect: { alerts: 0 },
    },
    {
      name: 'failures spread over hours are silent',
      events: () =>
        [1, 2, 3, 4, 5].map((i) => db.connect({ at: at(i * 30), conn: i, account: 'admin', status: 1045 })),
      expect: { alerts: 0 },
    },
    {
      name: 'threshold override applies',
      config: { rules: { 'auth.failure-burst': { threshold: 3 } } },
      events: () => [1, 2, 3].map((i) => db.connect({ at: at(i), conn: i, account: 'admin', status: 1045 })),
      expect: { alerts: 1 },
    },
  ],
});
