import { z } from 'zod';
import { Duration, formatDuration } from '../../schemas/config.js';
import { defineRule } from '../detect/rule.js';
import { at, db } from '../detect/timeline.js';

/** Failed logins of `admin` at these times (from `ip` when given). */
function failures(times: number[], ip?: string) {
  return times.map((ts, i) =>
    db.connect({ at: ts, conn: i + 1, account: 'admin', status: 1045, ...(ip ? { ip } : {}) }),
  );
}

/** `n` times, `minutes` apart from T0. */
function every(minutes: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => at(i * minutes));
}

export const authFailureBurst = defineRule({
  id: 'auth.failure-burst',
  title: 'Burst of failed logins',
  description:
    'At least `threshold` failed logins for one login user (per DB system) or one source IP (fleet-wide) within `window`, or `longThreshold` within `longWindow` (a slow run kept under the burst threshold).',
  severity: 'medium',
  attack: ['T1110'],
  runbook:
    'Check the source IP, lock the targeted account if it is local, and look for a success right after the burst.',
  falsePositives: [
    'A misconfigured application retrying with an expired password.',
    'People mistyping a password, over a day, on a shared network address.',
  ],
  params: z
    .strictObject({
      threshold: z.number().int().min(2).default(5),
      window: Duration.default(10 * 60_000),
      /** 0: no long window. */
      longThreshold: z
        .number()
        .int()
        .refine((n) => n === 0 || n >= 2, 'expected 0 (no long window) or at least 2')
        .default(20),
      longWindow: Duration.default(24 * 3_600_000),
    })
    .refine((p) => p.longThreshold === 0 || (p.longThreshold > p.threshold && p.longWindow > p.window), {
      message:
        'the long window counts more failures (longThreshold > threshold) over a longer time (longWindow > window)',
      path: ['longThreshold'],
    }),
  suppressFor: 3_600_000,
  on: {
    failedLogin: ({ session }, ctx) => {
      const { threshold, window, longThreshold, longWindow } = ctx.params;
      const scopes: [string, string][] = [
        [`user:${session.dbSystem.id}|${session.login.user}`, `login user ${session.login.user}`],
      ];
      if (session.sourceIp) scopes.push([`ip:${session.sourceIp}`, `source IP ${session.sourceIp}`]);
      const finding = (
        subject: string,
        occurrence: string,
        title: string,
        details: Record<string, unknown>,
      ) => ({
        subject,
        occurrence,
        ts: session.connectTs,
        title,
        dbSystem: session.dbSystem,
        loginUser: session.login.user,
        mysqlAccount: session.mysqlAccount,
        ...(session.sourceIp ? { sourceIp: session.sourceIp } : {}),
        identity: null,
        evidence: [session.connectKey],
        details: { ...details, lastStatus: session.status },
      });
      return scopes.flatMap(([subject, what]) => {
        const burst = ctx.countInWindow(subject, session.connectKey, session.connectTs, window);
        const long =
          longThreshold > 0
            ? ctx.countInWindow(`${subject}|long`, session.connectKey, session.connectTs, longWindow)
            : undefined;
        if (burst.count >= threshold)
          return [
            finding(
              subject,
              burst.first,
              `${burst.count} failed logins for ${what} on ${session.dbSystem.name}`,
              {
                failures: burst.count,
                window,
              },
            ),
          ];
        // Raised once, when the long window first holds longThreshold failures (not again while the
        // count stays at or above it), unless that failure completes a burst: the burst's alert
        // reports it.
        if (long?.count !== longThreshold) return [];
        return [
          finding(
            `${subject}|long`,
            long.first,
            `${long.count} failed logins for ${what} on ${session.dbSystem.name} within ${formatDuration(longWindow)}`,
            { failures: long.count, window: longWindow, longWindow: true },
          ),
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
      name: 'twenty failures in a day, never five in ten minutes (longThreshold): one alert per login user and per IP',
      boundary: { param: 'longThreshold', side: 'inside' },
      events: () => failures(every(3, 20), '203.0.113.7'),
      expect: {
        alerts: 2,
        severity: 'medium',
        match: {
          sourceIp: '203.0.113.7',
          time: '2026-11-02T09:57:00.000Z',
          details: { failures: 20, window: 86_400_000, longWindow: true, lastStatus: 1045 },
        },
      },
    },
    {
      name: 'nineteen failures in a day stay below longThreshold',
      boundary: { param: 'longThreshold', side: 'outside' },
      events: () => failures(every(3, 19), '203.0.113.7'),
      expect: { alerts: 0 },
    },
    {
      name: 'twenty failures an hour apart, the last one second within longWindow (PT24H), fire',
      boundary: { param: 'longWindow', side: 'inside' },
      events: () => failures([...every(60, 19), at(24 * 60) - 1_000]),
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          loginUser: 'admin',
          title: '20 failed logins for login user admin on prod-orders within P1D',
          details: { failures: 20, longWindow: true },
        },
      },
    },
    {
      name: 'twenty failures spanning exactly longWindow are silent',
      boundary: { param: 'longWindow', side: 'outside' },
      events: () => failures([...every(60, 19), at(24 * 60)]),
      expect: { alerts: 0 },
    },
    {
      name: 'failures kept at four in ten minutes for two hours raise the long window once',
      events: () => failures(every(2.5, 48)),
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          loginUser: 'admin',
          time: '2026-11-02T09:47:30.000Z',
          details: { failures: 20, longWindow: true },
        },
      },
    },
    {
      name: 'a burst that reaches longThreshold is one burst alert, not a second long-window one',
      events: () => failures(every(0.25, 20)),
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          loginUser: 'admin',
          time: '2026-11-02T09:01:00.000Z',
          details: { failures: 5, window: 600_000 },
        },
      },
    },
    {
      name: 'longThreshold 0 switches the long window off',
      config: { rules: { 'auth.failure-burst': { longThreshold: 0 } } },
      events: () => failures(every(3, 20)),
      expect: { alerts: 0 },
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
