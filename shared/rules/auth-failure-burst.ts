import { z } from 'zod';
import { type ConfigInput, Duration, formatDuration } from '../../schemas/config.js';
import type { Session } from '../../schemas/session.js';
import { defineRule, type Finding, type RuleContext } from '../detect/rule.js';
import { at, baseConfig, DB, db } from '../detect/timeline.js';

type Counted = ReturnType<RuleContext<unknown>['countInWindow']>;

/**
 * Failures the rule counts together: of one login user on one DB system, from one source IP, or of one
 * login user fleet-wide.
 */
type Scope = {
  subject: string;
  /** Kept with each failure counted. */
  tag?: string;
  /** Whether the failures counted make a finding at `threshold`; `before`: without the latest one. */
  holds(c: Counted, threshold: number, before?: boolean): boolean;
  /** What the title names ("login user admin on prod-orders"), and the scope's own alert fields. */
  describe(c: Counted): {
    what: string;
    fields: Pick<Finding, 'dbSystem'> & Partial<Pick<Finding, 'sourceIp'>>;
    details?: Record<string, unknown>;
  };
};

/** DB systems and source addresses a fleet-wide alert lists, at most (it gives their numbers too). */
const MAX_LISTED = 10;

/** A scope whose alerts name the DB system of the failure that raised them (the per-IP one is fleet-wide). */
function namingDbSystem(subject: string, what: string, s: Session): Scope {
  return {
    subject,
    holds: (c, threshold, before) => c.count - (before ? 1 : 0) >= threshold,
    describe: () => ({
      what: `${what} on ${s.dbSystem.name}`,
      fields: { dbSystem: s.dbSystem, ...(s.sourceIp ? { sourceIp: s.sourceIp } : {}) },
    }),
  };
}

/**
 * One login user's failures on every DB system the pipeline reads, a finding only when they span two
 * DB systems or more (on one, they are the per-DB-system scope's). Each failure is tagged with where
 * it happened: `<DB system id> NUL <source IP> NUL <DB system name>`.
 */
function fleetWide(user: string, s: Session): Scope {
  const tag = [s.dbSystem.id, s.sourceIp ?? '', s.dbSystem.name].join(SEP);
  return {
    subject: `fleet-user:${user}`,
    tag,
    holds: (c, threshold, before) =>
      c.count - (before ? 1 : 0) >= threshold &&
      onSeveralDbSystems(c.tags, before ? c.tags.lastIndexOf(tag) : -1),
    describe: (c) => {
      const dbs = new Map<string, string>();
      const ips = new Set<string>();
      for (const t of c.tags) {
        const ip = t.indexOf(SEP) + 1;
        const name = t.indexOf(SEP, ip) + 1;
        dbs.set(t.slice(0, ip - 1), t.slice(name));
        if (name - 1 > ip) ips.add(t.slice(ip, name - 1));
      }
      const names = [...dbs.values()].sort();
      const addresses = [...ips].sort();
      return {
        what: `login user ${user} on ${names.length} DB systems`,
        fields: { dbSystem: null, ...(addresses.length === 1 ? { sourceIp: addresses[0]! } : {}) },
        details: {
          dbSystems: names.slice(0, MAX_LISTED),
          dbSystemCount: names.length,
          sourceIps: addresses.slice(0, MAX_LISTED),
          sourceIpCount: addresses.length,
        },
      };
    },
  };
}

const SEP = '\u0000';

/** Whether the tagged failures, but the one at `skip`, happened on two DB systems or more. */
function onSeveralDbSystems(tags: readonly string[], skip: number): boolean {
  let seen: string | undefined;
  for (let i = 0; i < tags.length; i++) {
    if (i === skip) continue;
    const tag = tags[i]!;
    const db = tag.slice(0, tag.indexOf(SEP));
    if (seen === undefined) seen = db;
    else if (db !== seen) return true;
  }
  return false;
}

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

/** DB system `n` (from 1) of the test fleet `fleetOf` configures. */
const prod = (n: number) => ({ id: `${DB.id}-${n}`, name: `prod-${n}` });

/** The standard fleet with `size` DB systems like its own, named prod-1 to prod-<size>. */
function fleetOf(size: number): Partial<ConfigInput> {
  const [standard] = baseConfig().dbSystems ?? [];
  return { dbSystems: Array.from({ length: size }, (_, i) => ({ ...standard!, ...prod(i + 1) })) };
}

/**
 * Failed logins of `account` (admin) at these times, the i-th on DB system `dbOf(i)` of `fleetOf`
 * from address `ip(i)` (198.51.100.<i + 1>; none: a local socket): a guessing run spread over a
 * fleet and a pool of addresses.
 */
function spray(
  times: number[],
  dbOf: (i: number) => number,
  { account = 'admin', ip = (i: number): string | undefined => `198.51.100.${i + 1}` } = {},
) {
  return times.map((ts, i) => {
    const address = ip(i);
    return db.connect({
      at: ts,
      conn: i + 1,
      account,
      status: 1045,
      db: prod(dbOf(i)).id,
      ...(address ? { ip: address } : {}),
    });
  });
}

/** The i-th failure on DB system i mod `size` + 1. */
const rotating = (size: number) => (i: number) => (i % size) + 1;

export const authFailureBurst = defineRule({
  id: 'auth.failure-burst',
  title: 'Burst of failed logins',
  description:
    'At least `threshold` failed logins for one login user (per DB system) or one source IP (fleet-wide) within `window`, or `longThreshold` within `longWindow` (a slow run kept under the burst threshold). Also for one login user fleet-wide, when the failures span two DB systems or more (a guessing run spread over the fleet and over several addresses). Fleet-wide is every DB system the pipeline reads: all of them for the collector and a replay, only those of its partitions for a stream consumer.',
  severity: 'medium',
  attack: ['T1110'],
  runbook:
    'Check the source IP, lock the targeted account if it is local, and look for a success right after the burst (for a fleet-wide alert, on each DB system it lists).',
  falsePositives: [
    'A misconfigured application retrying with an expired password (deployed against several DB systems: the fleet-wide login user count).',
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
      const user = session.login.user;
      const scopes: Scope[] = [
        namingDbSystem(`user:${session.dbSystem.id}|${user}`, `login user ${user}`, session),
        ...(session.sourceIp
          ? [namingDbSystem(`ip:${session.sourceIp}`, `source IP ${session.sourceIp}`, session)]
          : []),
        fleetWide(user, session),
      ];
      const finding = (scope: Scope, subject: string, c: Counted, long: boolean) => {
        const { what, fields, details } = scope.describe(c);
        return {
          subject,
          occurrence: c.first,
          ts: session.connectTs,
          title: `${c.count} failed logins for ${what}${long ? ` within ${formatDuration(longWindow)}` : ''}`,
          loginUser: user,
          mysqlAccount: session.mysqlAccount,
          identity: null,
          evidence: [session.connectKey],
          ...fields,
          details: {
            failures: c.count,
            window: long ? longWindow : window,
            ...details,
            ...(long ? { longWindow: true } : {}),
            lastStatus: session.status,
          },
        };
      };
      return scopes.flatMap((scope) => {
        const count = (key: string, ms: number) =>
          ctx.countInWindow(key, session.connectKey, session.connectTs, ms, scope.tag);
        const burst = count(scope.subject, window);
        const long = longThreshold > 0 ? count(`${scope.subject}|long`, longWindow) : undefined;
        if (scope.holds(burst, threshold)) return [finding(scope, scope.subject, burst, false)];
        // Raised once, when the long window first holds longThreshold failures (not again while it
        // keeps holding them), unless that failure completes a burst: the burst's alert reports it.
        if (!long || !scope.holds(long, longThreshold) || scope.holds(long, longThreshold, true)) return [];
        return [finding(scope, `${scope.subject}|long`, long, true)];
      });
    },
  },
  cases: [
    {
      name: 'four failures on each of ten DB systems in ten minutes from ten addresses: one fleet-wide alert for the login user',
      config: fleetOf(10),
      events: () => spray(every(0.2, 40), rotating(10)),
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          identity: null,
          dbSystem: null,
          loginUser: 'admin',
          mysqlAccount: 'admin@%',
          time: '2026-11-02T09:00:48.000Z',
          title: '5 failed logins for login user admin on 5 DB systems',
          details: {
            failures: 5,
            window: 600_000,
            dbSystems: ['prod-1', 'prod-2', 'prod-3', 'prod-4', 'prod-5'],
            dbSystemCount: 5,
            sourceIps: ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4', '198.51.100.5'],
            sourceIpCount: 5,
            lastStatus: 1045,
          },
        },
      },
    },
    {
      name: 'four failures on one DB system and one on another among them: the fleet-wide alert',
      config: fleetOf(2),
      events: () => spray(every(1, 5), (i) => (i === 1 ? 2 : 1)),
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          dbSystem: null,
          title: '5 failed logins for login user admin on 2 DB systems',
          details: { dbSystems: ['prod-1', 'prod-2'], dbSystemCount: 2, sourceIpCount: 5 },
        },
      },
    },
    {
      name: 'five failures over two DB systems from one address: the source IP alert and the fleet-wide one, both naming it',
      config: fleetOf(2),
      events: () => spray(every(1, 5), rotating(2), { ip: () => '203.0.113.9' }),
      expect: {
        alerts: 2,
        severity: 'medium',
        match: { loginUser: 'admin', sourceIp: '203.0.113.9', details: { failures: 5 } },
      },
    },
    {
      name: 'five failures over two DB systems from a local socket: the fleet-wide alert lists no address',
      config: fleetOf(2),
      events: () => spray(every(1, 5), rotating(2), { ip: () => undefined }),
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          dbSystem: null,
          details: { dbSystems: ['prod-1', 'prod-2'], sourceIps: [], sourceIpCount: 0 },
        },
      },
    },
    {
      name: 'two login users, each failing five times over two DB systems: one fleet-wide alert each',
      config: fleetOf(2),
      events: () => [
        ...spray(every(1, 5), rotating(2)),
        ...spray(
          every(1, 5).map((ts) => ts + 30_000),
          rotating(2),
          { account: 'app', ip: (i) => `198.51.100.${i + 11}` },
        ),
      ],
      expect: {
        alerts: 2,
        severity: 'medium',
        match: { dbSystem: null, details: { failures: 5, dbSystemCount: 2, sourceIpCount: 5 } },
      },
    },
    {
      name: 'five failures on one DB system from five addresses: the per-DB-system alert only, not a fleet-wide one',
      config: fleetOf(2),
      events: () => spray(every(1, 5), () => 1),
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          dbSystem: { id: prod(1).id, name: 'prod-1' },
          title: '5 failed logins for login user admin on prod-1',
          sourceIp: '198.51.100.5',
          details: { failures: 5, window: 600_000 },
        },
      },
    },
    {
      name: 'four failures on one DB system from four addresses stay below the threshold',
      config: fleetOf(2),
      events: () => spray(every(1, 4), () => 2),
      expect: { alerts: 0 },
    },
    {
      name: 'a burst on one DB system and a failure on another: the DB system alert and the fleet-wide one',
      config: fleetOf(2),
      events: () => spray(every(1, 6), (i) => (i < 5 ? 1 : 2)),
      expect: { alerts: 2, severity: 'medium', match: { loginUser: 'admin', details: { window: 600_000 } } },
    },
    {
      name: 'five failures on five DB systems, the last one second within the window (PT10M): fleet-wide alert',
      boundary: { param: 'window', side: 'inside' },
      config: fleetOf(5),
      events: () => spray([at(0), at(1), at(2), at(3), at(10) - 1_000], rotating(5)),
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          dbSystem: null,
          time: '2026-11-02T09:09:59.000Z',
          details: { failures: 5, dbSystemCount: 5 },
        },
      },
    },
    {
      name: 'five failures on five DB systems spanning exactly the window are silent',
      boundary: { param: 'window', side: 'outside' },
      config: fleetOf(5),
      events: () => spray([at(0), at(1), at(2), at(3), at(10)], rotating(5)),
      expect: { alerts: 0 },
    },
    {
      name: 'failures over three DB systems kept at four in ten minutes are silent',
      config: fleetOf(3),
      events: () => spray(every(2.5, 12), rotating(3)),
      expect: { alerts: 0 },
    },
    {
      name: 'a second fleet-wide burst exactly suppressFor (1 h) after the first merges into its alert',
      boundary: { param: 'suppressFor', side: 'inside' },
      config: fleetOf(5),
      events: () => spray([0, 1, 2, 3, 4, 60, 61, 62, 63, 64].map(at), rotating(5)),
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          dbSystem: null,
          details: { dbSystemCount: 5, occurrences: 2, lastTime: '2026-11-02T10:04:00.000Z' },
        },
      },
    },
    {
      name: 'a second fleet-wide burst one second after the suppression window is a new alert',
      boundary: { param: 'suppressFor', side: 'outside' },
      config: fleetOf(5),
      events: () =>
        spray(
          [0, 1, 2, 3, 4, 60, 61, 62, 63, 64].map((m) => at(m) + (m >= 60 ? 1_000 : 0)),
          rotating(5),
        ),
      expect: {
        alerts: 2,
        severity: 'medium',
        match: { dbSystem: null, details: { dbSystemCount: 5, occurrences: 1 } },
      },
    },
    {
      name: 'twenty failures in a day over twelve DB systems and twenty addresses, never five in ten minutes: one fleet-wide long-window alert',
      boundary: { param: 'longThreshold', side: 'inside' },
      config: fleetOf(12),
      events: () => spray(every(3, 20), rotating(12)),
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          dbSystem: null,
          loginUser: 'admin',
          time: '2026-11-02T09:57:00.000Z',
          title: '20 failed logins for login user admin on 12 DB systems within P1D',
          details: {
            failures: 20,
            window: 86_400_000,
            dbSystems: [
              'prod-1',
              'prod-10',
              'prod-11',
              'prod-12',
              'prod-2',
              'prod-3',
              'prod-4',
              'prod-5',
              'prod-6',
              'prod-7',
            ],
            dbSystemCount: 12,
            sourceIps: [1, 10, 11, 12, 13, 14, 15, 16, 17, 18].map((n) => `198.51.100.${n}`),
            sourceIpCount: 20,
            longWindow: true,
          },
        },
      },
    },
    {
      name: 'nineteen failures in a day over twelve DB systems stay below longThreshold',
      boundary: { param: 'longThreshold', side: 'outside' },
      config: fleetOf(12),
      events: () => spray(every(3, 19), rotating(12)),
      expect: { alerts: 0 },
    },
    {
      name: 'twenty failures in a day on one DB system, then one on another: its long-window alert, then the fleet-wide one',
      config: fleetOf(2),
      events: () => spray([...every(3, 20), at(60)], (i) => (i < 20 ? 1 : 2)),
      expect: { alerts: 2, severity: 'medium', match: { loginUser: 'admin', details: { longWindow: true } } },
    },
    {
      name: 'fleet-wide failures kept at four in ten minutes for two hours raise the long window once',
      config: fleetOf(3),
      events: () => spray(every(2.5, 48), rotating(3)),
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          dbSystem: null,
          time: '2026-11-02T09:47:30.000Z',
          details: { failures: 20, longWindow: true },
        },
      },
    },
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
