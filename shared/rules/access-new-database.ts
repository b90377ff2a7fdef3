import { z } from 'zod';
import type { ConfigInput } from '../../schemas/config.js';
import { defineRule, privilegedSession, sessionFields } from '../detect/rule.js';
import { at, baseConfig, DB, db, GROUPS, iam, USERS } from '../detect/timeline.js';
import { Memo } from '../memo.js';
import { baselineBoundaryCases, baselineParams, firstSeen, maxValuesParam } from './first-seen.js';

const DAYS = 24 * 60;

/** DB system `n` of the test fleet: the standard one is 1. */
const dbId = (n: number) => `${DB.id.slice(0, -1)}${n}`;

/** The standard fleet with two more DB systems like the first. */
function threeDbSystems(): Partial<ConfigInput> {
  const [first] = baseConfig().dbSystems ?? [];
  return { dbSystems: [1, 2, 3].map((n) => ({ ...first!, id: dbId(n), name: `prod-${n}` })) };
}

const bob = (ts: number, conn: number, n: number, account = 'dev_proxy') =>
  db.connect({ at: ts, conn, account, user: 'bob', ip: '10.0.1.5', proxy: true, db: dbId(n) });

/**
 * The values a session learns, by DB system and account: made once, where each connect built both
 * strings and hashed them to find their digests.
 */
const baselineValues = new Memo(10_000, (dbSystem: string) => ({
  system: `db:${dbSystem}`,
  accounts: new Memo(10_000, (account: string) => `account:${dbSystem}|${account}`),
}));

export const accessNewDatabase = defineRule({
  id: 'access.new-database',
  title: 'Person reached a DB system or account new for them',
  description:
    'A person (not an account) reaches a DB system, or an account on it, absent from their baseline; high when the account is privileged. Sessions nobody is named behind are baselined per account. Silent while the subject is learning.',
  severity: 'low',
  attack: ['T1078', 'T1021'],
  runbook:
    'Check that the person has a reason to work on this DB system (a ticket, a team change); for a privileged account confirm the change with their manager.',
  falsePositives: [
    'A team change or a new project.',
    'An on-call shift on systems the person rarely touches.',
  ],
  params: z.strictObject({ ...baselineParams, maxValues: maxValuesParam(4096) }),
  suppressFor: 0,
  on: {
    session: (f, ctx) => {
      const { session } = f;
      const { system, accounts } = baselineValues.get(session.dbSystem.id);
      const account = accounts.get(session.mysqlAccount);
      return firstSeen(f, ctx, [system, account], (baseline, subject) => {
        const ts = f.authenticated.ts;
        if (baseline.knows(account, ts)) return [];
        const newSystem = !baseline.knows(system, ts);
        const who = session.identity?.name ?? session.mysqlAccount;
        return [
          {
            subject: `${subject}|${account}`,
            occurrence: String(ts),
            ts,
            severity: privilegedSession(f) ? 'high' : 'low',
            title: newSystem
              ? `${who} reached ${session.dbSystem.name} for the first time (as ${session.mysqlAccount})`
              : `${who} used ${session.mysqlAccount} on ${session.dbSystem.name} for the first time`,
            ...sessionFields(session),
            evidence: session.attribution.evidence,
            details: {
              sessionId: session.id,
              newDbSystem: newSystem,
              baseline: session.identity ? 'person' : 'account',
            },
          },
        ];
      });
    },
  },
  cases: [
    {
      name: 'a developer on a DB system never used before',
      config: threeDbSystems(),
      events: () => [bob(at(0), 1, 1), bob(at(DAYS), 2, 1), bob(at(15 * DAYS), 3, 2)],
      expect: {
        alerts: 1,
        severity: 'low',
        match: {
          identity: { principalId: USERS.bob },
          mysqlAccount: 'dev_proxy@%',
          title: 'bob@example.com reached prod-2 for the first time (as dev_proxy@%)',
          details: { newDbSystem: true, baseline: 'person' },
        },
      },
    },
    {
      name: 'a shared account nobody is named behind, on a new DB system: its own baseline',
      config: threeDbSystems(),
      events: () => [
        db.unnamed({ at: at(0), conn: 1, db: dbId(1) }),
        db.unnamed({ at: at(DAYS), conn: 2, db: dbId(1) }),
        db.unnamed({ at: at(15 * DAYS), conn: 3, db: dbId(2) }),
      ],
      expect: {
        alerts: 1,
        severity: 'low',
        match: {
          identity: null,
          title: 'dev_proxy@% reached prod-2 for the first time (as dev_proxy@%)',
          details: { newDbSystem: true, baseline: 'account' },
        },
      },
    },
    {
      name: 'two new DB systems in the same second are two alerts',
      config: threeDbSystems(),
      events: () => [
        bob(at(0), 1, 1),
        bob(at(DAYS), 2, 1),
        bob(at(15 * DAYS), 3, 2),
        bob(at(15 * DAYS), 4, 3),
      ],
      expect: {
        alerts: 2,
        severity: 'low',
        match: { identity: { principalId: USERS.bob }, details: { newDbSystem: true, baseline: 'person' } },
      },
    },
    {
      name: 'a known DB system and account is silent',
      config: threeDbSystems(),
      events: () => [bob(at(0), 1, 1), bob(at(DAYS), 2, 2), bob(at(15 * DAYS), 3, 2)],
      expect: { alerts: 0 },
    },
    {
      name: 'a privileged account used for the first time on a known DB system is high',
      events: () => [
        bob(at(0), 1, 1),
        iam.added({ at: at(15 * DAYS), user: USERS.bob, group: GROUPS.dba }),
        bob(at(15 * DAYS + 5), 2, 1, 'dba_proxy'),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          identity: { principalId: USERS.bob },
          mysqlAccount: 'dba_proxy@%',
          title: 'bob@example.com used dba_proxy@% on prod-orders for the first time',
          details: { newDbSystem: false },
        },
      },
    },
    {
      name: 'a new hire reaching several DB systems inside the learning period is silent',
      config: threeDbSystems(),
      events: () => [bob(at(0), 1, 1), bob(at(2 * DAYS), 2, 2), bob(at(4 * DAYS), 3, 3)],
      expect: { alerts: 0 },
    },
    {
      name: 'another person behind the same shared account has their own baseline',
      config: threeDbSystems(),
      events: () => [
        bob(at(0), 1, 2),
        db.connect({ at: at(1), conn: 2, account: 'dev_proxy', user: 'dave', db: dbId(1), proxy: true }),
        db.connect({
          at: at(15 * DAYS),
          conn: 3,
          account: 'dev_proxy',
          user: 'dave',
          db: dbId(2),
          proxy: true,
        }),
      ],
      expect: {
        alerts: 1,
        severity: 'low',
        match: { identity: { principalId: USERS.dave }, details: { newDbSystem: true } },
      },
    },
    {
      name: 'an identity mismatch is reported but never learned',
      events: () => [
        bob(at(0), 1, 1),
        bob(at(15 * DAYS), 2, 1, 'dba_proxy'),
        iam.added({ at: at(15 * DAYS + 60), user: USERS.bob, group: GROUPS.dba }),
        bob(at(16 * DAYS), 3, 1, 'dba_proxy'),
      ],
      expect: {
        alerts: 2,
        severity: 'high',
        match: { identity: { principalId: USERS.bob }, mysqlAccount: 'dba_proxy@%' },
      },
    },
    ...baselineBoundaryCases(
      'access.new-database',
      (ts, conn, variant) => [bob(ts, conn, variant + 1)],
      { severity: 'low', match: { identity: { principalId: USERS.bob }, details: { newDbSystem: true } } },
      2,
      threeDbSystems(),
    ),
  ],
});
