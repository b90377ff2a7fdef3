import { z } from 'zod';
import { defineRule, privilegedSession, sessionFields } from '../detect/rule.js';
import { at, db, GROUPS, iam, USERS } from '../detect/timeline.js';
import { baselineParams, firstSeen } from './first-seen.js';

const DAYS = 24 * 60;
const HOUR = 3_600_000;
/** The UTC hour of a time, as Date's getUTCHours gives it (without a Date per session). */
const hourOf = (ts: number) => ((Math.floor(ts / HOUR) % 24) + 24) % 24;
/** The baseline value of each hour of the day, made once. */
const HOUR_VALUES = Array.from({ length: 24 }, (_, h) => `h${h}`);
const hourValue = (h: number) => {
  const i = ((h % 24) + 24) % 24;
  return HOUR_VALUES[i] ?? `h${i}`;
};

/** Alice (DBAdmins) as dba_proxy `minutes` (less `early` seconds) after 09:00 on day 0. */
const alice = (minutes: number, conn: number, early = 0) =>
  db.connect({ at: at(minutes) - early * 1000, conn, account: 'dba_proxy', user: 'alice', proxy: true });
/** Alice's working days: 09:00 and 14:00 on days 0 to 2. */
const usualDays = () =>
  [0, 1, 2].flatMap((d) => [alice(d * DAYS, 10 + 2 * d), alice(d * DAYS + 300, 11 + 2 * d)]);
const withParams = (params: Record<string, unknown>) => ({ rules: { 'access.unusual-hour': params } });

/** What a finding about Alice's DBA session at `hour` (`clock`) says, her usual hours being `usualHours`. */
const unusual = (hour: number, clock: string, usualHours: number[]) => ({
  alerts: 1,
  severity: 'low' as const,
  match: {
    identity: { principalId: USERS.alice },
    mysqlAccount: 'dba_proxy@%',
    title: `alice@example.com opened a privileged session on prod-orders at ${clock} UTC, an hour unusual for them`,
    details: { hour, usualHours, baseline: 'person' },
  },
});

export const accessUnusualHour = defineRule({
  id: 'access.unusual-hour',
  title: 'Privileged session at an hour unusual for the person',
  description:
    'A privileged session (privileged account or break-glass group) starts at a UTC hour more than `margin` hours from every hour the person has connected at in their baseline (their own history, any account); sessions nobody is named behind are baselined per account. Silent while the subject is learning.',
  severity: 'low',
  attack: ['T1078'],
  runbook:
    'Check for an incident or on-call shift that explains the hour; if none, confirm with the person and review what the session did.',
  falsePositives: ['On-call interventions at night.', 'A person travelling across time zones.'],
  params: z.strictObject({
    ...baselineParams,
    margin: z.number().int().min(0).max(11).default(1),
  }),
  suppressFor: 0,
  on: {
    session: (f, ctx) => {
      const { session } = f;
      const ts = f.authenticated.ts;
      const hour = hourOf(ts);
      return firstSeen(f, ctx, [hourValue(hour)], (baseline, subject) => {
        if (!privilegedSession(f)) return [];
        const { margin } = ctx.params;
        for (let d = -margin; d <= margin; d++) if (baseline.knows(hourValue(hour + d), ts)) return [];
        const usualHours = [...Array(24).keys()].filter((h) => baseline.knows(hourValue(h), ts));
        const who = session.identity?.name ?? session.mysqlAccount;
        return [
          {
            subject: `${subject}|${hourValue(hour)}`,
            occurrence: String(ts),
            ts,
            title: `${who} opened a privileged session on ${session.dbSystem.name} at ${String(hour).padStart(2, '0')}:00 UTC, an hour unusual for them`,
            ...sessionFields(session),
            evidence: session.attribution.evidence,
            details: {
              sessionId: session.id,
              hour,
              usualHours,
              baseline: session.identity ? 'person' : 'account',
            },
          },
        ];
      });
    },
  },
  cases: [
    {
      name: 'a DBA at 03:00 after weeks of daytime work',
      events: () => [...usualDays(), alice(15 * DAYS - 6 * 60, 20)],
      expect: unusual(3, '03:00', [9, 14]),
    },
    {
      name: 'privileged sessions nobody is named behind are baselined per account',
      events: () => {
        const anonymous = (minutes: number, conn: number) =>
          db.connect({ at: at(minutes), conn, account: 'dba_proxy', user: 'dba_proxy', proxy: true });
        return [anonymous(0, 1), anonymous(DAYS, 2), anonymous(15 * DAYS - 6 * 60, 3)];
      },
      expect: {
        alerts: 1,
        severity: 'low',
        match: {
          identity: null,
          title:
            'dba_proxy@% opened a privileged session on prod-orders at 03:00 UTC, an hour unusual for them',
          details: { hour: 3, usualHours: [9], baseline: 'account' },
        },
      },
    },
    {
      name: 'a DBA at a usual hour is silent',
      events: () => [...usualDays(), alice(15 * DAYS + 290, 20)],
      expect: { alerts: 0 },
    },
    {
      name: 'a non-privileged session at night is silent',
      events: () => [
        db.connect({ at: at(0), conn: 1, account: 'dev_proxy', user: 'bob', proxy: true }),
        db.connect({ at: at(15 * DAYS - 6 * 60), conn: 2, account: 'dev_proxy', user: 'bob', proxy: true }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'a new DBA at night inside the learning period is silent',
      events: () => [alice(0, 1), alice(2 * DAYS - 6 * 60, 2)],
      expect: { alerts: 0 },
    },
    {
      name: 'hours are learned from every session of the person, privileged or not',
      events: () => [
        db.connect({ at: at(11 * 60), conn: 1, account: 'dev_proxy', user: 'bob', proxy: true }),
        iam.added({ at: at(15 * DAYS), user: USERS.bob, group: GROUPS.dba }),
        db.connect({ at: at(15 * DAYS + 12 * 60), conn: 2, account: 'dba_proxy', user: 'bob', proxy: true }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'hours wrap around midnight',
      events: () => [alice(14 * 60, 1), alice(15 * DAYS + 15 * 60 + 30, 2)],
      expect: { alerts: 0 },
    },
    {
      name: 'margin: just inside, an hour next to a usual one is silent',
      boundary: { param: 'margin', side: 'inside' },
      events: () => [alice(0, 1), alice(15 * DAYS + 120, 2, 1)],
      expect: { alerts: 0 },
    },
    {
      name: 'margin: just outside, two hours away is unusual',
      boundary: { param: 'margin', side: 'outside' },
      events: () => [alice(0, 1), alice(15 * DAYS + 120, 2)],
      expect: unusual(11, '11:00', [9]),
    },
    {
      name: 'margin: 0 makes the next hour unusual',
      config: withParams({ margin: 0 }),
      events: () => [alice(0, 1), alice(15 * DAYS + 60, 2)],
      expect: unusual(10, '10:00', [9]),
    },
    {
      name: 'learningPeriod: just inside, a night session is only learned',
      boundary: { param: 'learningPeriod', side: 'inside' },
      config: withParams({ learningPeriod: 'PT12H' }),
      events: () => [alice(0, 1), alice(12 * 60, 2, 1)],
      expect: { alerts: 0 },
    },
    {
      name: 'learningPeriod: just outside, a night session is a finding',
      boundary: { param: 'learningPeriod', side: 'outside' },
      config: withParams({ learningPeriod: 'PT12H' }),
      events: () => [alice(0, 1), alice(12 * 60, 2)],
      expect: unusual(21, '21:00', [9]),
    },
    {
      name: 'expireAfter: an hour last used just inside it is still usual',
      boundary: { param: 'expireAfter', side: 'inside' },
      config: withParams({ learningPeriod: 'PT1H', expireAfter: 'P1D', margin: 0 }),
      events: () => [alice(30, 1), alice(89, 2), alice(DAYS + 30, 3, 1)],
      expect: { alerts: 0 },
    },
    {
      name: 'expireAfter: an hour last used just outside it is forgotten',
      boundary: { param: 'expireAfter', side: 'outside' },
      config: withParams({ learningPeriod: 'PT1H', expireAfter: 'P1D', margin: 0 }),
      events: () => [alice(30, 1), alice(89, 2), alice(DAYS + 30, 3)],
      expect: unusual(9, '09:00', [10]),
    },
    {
      name: 'expireAfter: a person back after it learns again',
      config: withParams({ learningPeriod: 'PT1H', expireAfter: 'P1D' }),
      events: () => [alice(0, 1), alice(DAYS + 12 * 60, 2)],
      expect: { alerts: 0 },
    },
  ],
});
