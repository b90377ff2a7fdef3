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
      name: 'five failures (the threshold) in ten minutes from one IP: one alert per login user and per IP',
      boundary: { param: 'threshold', side: 'inside' },
      events: () =>
        [1, 2, 3, 4, 5].map((i) =>
          db.connect({ at: at(i), conn: i, account: 'admin', ip: '203.0.113.7', status: 1045 }),
        ),
      expect: {
        alerts: 2,
        severity: 'medium',
        match: {
          identity: null,
          loginUser: 'admin',
          mysqlAccount: 'admin@%',
          sourceIp: '203.0.113.7',
          time: '2026-11-02T09:05:00.000Z',
          details: { failures: 5, window: 600_000, lastStatus: 1045 },
        },
      },
    },
    {
      name: 'four failures stay below the threshold',
      boundary: { param: 'threshold', side: 'outside' },
      events: () =>
        [1, 2, 3, 4].map((i) =>
          db.connect({ at: at(i), conn: i, account: 'admin', ip: '203.0.113.7', status: 1045 }),
        ),
      expect: { alerts: 0 },
    },
    {
      name: 'five failures one second within the window (PT10M) fire',
      boundary: { param: 'window', side: 'inside' },
      events: () =>
        [at(0), at(1), at(2), at(3), at(10) - 1_000].map((ts, i) =>
          db.connect({ at: ts, conn: i + 1, account: 'admin', status: 1045 }),
        ),
      expect: {
        alerts: 1,
        severity: 'medium',
        match: { loginUser: 'admin', time: '2026-11-02T09:09:59.000Z', details: { failures: 5 } },
      },
    },
    {
      name: 'five failures spanning exactly the window are silent',
      boundary: { param: 'window', side: 'outside' },
      events: () =>
        [at(0), at(1), at(2), at(3), at(10)].map((ts, i) =>
          db.connect({ at: ts, conn: i + 1, account: 'admin', status: 1045 }),
        ),
      expect: { alerts: 0 },
    },
    {
      name: 'a second burst exactly suppressFor (1 h) after the first merges into its alert',
      boundary: { param: 'suppressFor', side: 'inside' },
      events: () =>
        [0, 1, 2, 3, 4, 60, 61, 62, 63, 64].map((m, i) =>
          db.connect({ at: at(m), conn: i + 1, account: 'admin', status: 1045 }),
        ),
      expect: {
        alerts: 1,
        severity: 'medium',
        match: { loginUser: 'admin', details: { occurrences: 2, lastTime: '2026-11-02T10:04:00.000Z' } },
      },
    },
    {
      name: 'a second burst one second after the suppression window is a new alert',
      boundary: { param: 'suppressFor', side: 'outside' },
      events: () =>
        [0, 1, 2, 3, 4, 60, 61, 62, 63, 64].map((m, i) =>
          db.connect({ at: at(m) + (m >= 60 ? 1_000 : 0), conn: i + 1, account: 'admin', status: 1045 }),
        ),
      expect: { alerts: 2, severity: 'medium', match: { loginUser: 'admin', details: { occurrences: 1 } } },
    },
    {
      name: 'failures spread over hours are silent',
      events: () =>
        [1, 2, 3, 4, 5].map((i) => db.connect({ at: at(i * 30), conn: i, account: 'admin', status: 1045 })),
      expect: { alerts: 0 },
    },
    {
      name: 'failures of different login users do not add up',
      events: () =>
        ['admin', 'app', 'admin', 'app', 'admin'].map((account, i) =>
          db.connect({ at: at(i), conn: i + 1, account, status: 1045 }),
        ),
      expect: { alerts: 0 },
    },
    {
      name: 'threshold override applies',
      config: { rules: { 'auth.failure-burst': { threshold: 3 } } },
      events: () => [1, 2, 3].map((i) => db.connect({ at: at(i), conn: i, account: 'admin', status: 1045 })),
      expect: {
        alerts: 1,
        severity: 'medium',
        match: { loginUser: 'admin', time: '2026-11-02T09:03:00.000Z', details: { failures: 3 } },
      },
    },
    {
      name: 'window override applies',
      config: { rules: { 'auth.failure-burst': { window: 'PT2M' } } },
      events: () =>
        [0, 1, 2, 3, 4].map((m, i) => db.connect({ at: at(m), conn: i + 1, account: 'admin', status: 1045 })),
      expect: { alerts: 0 },
    },
    {
      name: 'successful logins do not count',
      events: () =>
        [1, 2, 3, 4, 5].map((i) =>
          db.connect({ at: at(i), conn: i, account: 'admin', status: i === 3 ? 0 : 1045 }),
        ),
      expect: { alerts: 0 },
    },
  ],
});
