import { z } from 'zod';
import { defineRule, loginOccurrence, type SessionFact, sessionFields } from '../detect/rule.js';
import { at, db, GROUPS, iam, type RuleCase, USERS } from '../detect/timeline.js';

/** A session this rule reports: a named person who had left the group or was no longer active. */
export function isAccessAfterRevocation({ session, result }: SessionFact): boolean {
  return session.identity !== null && (!!result.removalKey || !!result.userState);
}

export const accessAfterRevocation = defineRule({
  id: 'access.after-revocation',
  title: 'Database access after IAM revocation',
  description:
    'A session resolves through a group the person had already left, or is made by a deleted or deactivated IAM user; or a session opened before the revocation runs statements after it (MySQL does not end it). Late-arriving removals raise it when they arrive.',
  severity: 'critical',
  attack: ['T1078.004'],
  runbook:
    'Kill the session, check why the database accepted the login (token still valid, cached mapping), and review its activity.',
  falsePositives: ['IAM removal recorded with a wrong time.'],
  params: z.strictObject({}),
  suppressFor: 0,
  on: {
    session: (f) => {
      const { session, result } = f;
      if (!isAccessAfterRevocation(f) || !session.identity) return [];
      const why = result.userState
        ? `IAM user ${result.userState.state}`
        : `left group ${session.group?.name ?? ''}`;
      return [
        {
          subject: session.id,
          occurrence: loginOccurrence(f, 'revoked'),
          ts: f.authenticated.ts,
          title: `${session.identity.name} connected to ${session.dbSystem.name} after revocation (${why})`,
          ...sessionFields(session),
          evidence: session.attribution.evidence,
          details: {
            sessionId: session.id,
            ...(result.removalKey ? { removal: result.removalKey } : {}),
            ...(result.userState ? { userState: result.userState.state } : {}),
          },
        },
      ];
    },
    revokedActivity: ({ session, event, revocation }) => [
      {
        subject: session.id,
        occurrence: `active-after:${revocation.key}`,
        ts: event.ts,
        title: `${session.identity?.name ?? 'A person'}'s session on ${session.dbSystem.name} ran statements after revocation (${revocation.why})`,
        ...sessionFields(session),
        evidence: [revocation.key, event.key],
        details: {
          sessionId: session.id,
          revokedAt: new Date(revocation.ts).toISOString(),
          revocation: revocation.key,
        },
      },
    ],
  },
  cases: [
    {
      name: 'member who left before connecting',
      events: () => [
        iam.removed({ at: at(0), user: USERS.alice, group: GROUPS.dba }),
        db.connect({ at: at(30), conn: 1, account: 'dba_proxy', user: 'alice', proxy: true }),
      ],
      expect: {
        alerts: 1,
        severity: 'critical',
        match: {
          identity: {
            principalId: USERS.alice,
            attribution: { method: 'login-name', confidence: 'asserted', problem: 'left-group' },
          },
          group: { id: GROUPS.dba },
          mysqlAccount: 'dba_proxy@%',
          title: 'alice@example.com connected to prod-orders after revocation (left group DBAdmins)',
        },
      },
    },
    ...(
      [
        [
          'removal by membership OCID only',
          () => iam.removed({ at: at(0), membershipId: 'ocid1.groupmembership.oc1..alice-dba' }),
        ],
        [
          'a member of a group deleted before connecting',
          () => iam.groupDeleted({ at: at(0), group: GROUPS.dba }),
        ],
      ] as const
    ).map(
      ([name, removal]): RuleCase => ({
        name,
        events: () => [
          removal(),
          db.connect({ at: at(30), conn: 1, account: 'dba_proxy', user: 'alice', proxy: true }),
        ],
        expect: {
          alerts: 1,
          severity: 'critical',
          match: {
            identity: { principalId: USERS.alice, attribution: { problem: 'left-group' } },
            group: { id: GROUPS.dba },
          },
        },
      }),
    ),
    {
      name: 'deactivated 1-to-1 user',
      events: () => [
        iam.userState({ at: at(0), user: USERS.carol, kind: 'user_deactivated' }),
        db.connect({ at: at(30), conn: 1, account: 'carol' }),
      ],
      expect: {
        alerts: 1,
        severity: 'critical',
        match: {
          identity: {
            principalId: USERS.carol,
            attribution: { method: 'mapped-user', confidence: 'verified', problem: 'user-inactive' },
          },
          mysqlAccount: 'carol@%',
          title: 'carol@example.com connected to prod-orders after revocation (IAM user inactive)',
          details: { userState: 'inactive' },
        },
      },
    },
    {
      name: 'a failed login after revocation is silent',
      events: () => [
        iam.removed({ at: at(0), user: USERS.alice, group: GROUPS.dba }),
        db.connect({ at: at(30), conn: 1, account: 'dba_proxy', user: 'alice', proxy: true, status: 1045 }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'a session opened before the removal runs statements after it: once, at the first',
      events: () => [
        db.connect({ at: at(0), conn: 1, account: 'dba_proxy', user: 'alice', proxy: true }),
        db.query({ at: at(10), conn: 1, account: 'dba_proxy', sqlCommand: 'select', sql: 'SELECT 1' }),
        iam.removed({ at: at(30), user: USERS.alice, group: GROUPS.dba }),
        db.query({ at: at(60), conn: 1, account: 'dba_proxy', sqlCommand: 'delete', sql: 'DELETE FROM t' }),
        db.query({ at: at(61), conn: 1, account: 'dba_proxy', sqlCommand: 'select', sql: 'SELECT 2' }),
      ],
      expect: {
        alerts: 1,
        severity: 'critical',
        match: {
          time: '2026-11-02T10:00:00.000Z',
          title:
            "alice@example.com's session on prod-orders ran statements after revocation (left group DBAdmins)",
          identity: { principalId: USERS.alice },
          details: { revokedAt: '2026-11-02T09:30:00.000Z' },
        },
      },
    },
    {
      name: 'a 1-to-1 user deactivated while connected, whose session goes on',
      events: () => [
        db.connect({ at: at(0), conn: 1, account: 'carol' }),
        iam.userState({ at: at(30), user: USERS.carol, kind: 'user_deactivated' }),
        db.query({ at: at(40), conn: 1, account: 'carol', sqlCommand: 'select', sql: 'SELECT 1' }),
      ],
      expect: {
        alerts: 1,
        severity: 'critical',
        match: {
          title:
            "carol@example.com's session on prod-orders ran statements after revocation (IAM user inactive)",
        },
      },
    },
    {
      name: 'a session idle after the removal is silent',
      events: () => [
        db.connect({ at: at(0), conn: 1, account: 'dba_proxy', user: 'alice', proxy: true }),
        db.query({ at: at(10), conn: 1, account: 'dba_proxy', sqlCommand: 'select', sql: 'SELECT 1' }),
        iam.removed({ at: at(30), user: USERS.alice, group: GROUPS.dba }),
        db.disconnect({ at: at(90), conn: 1, account: 'dba_proxy' }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'removal after the session is silent',
      events: () => [
        db.connect({ at: at(0), conn: 1, account: 'dba_proxy', user: 'alice', proxy: true }),
        iam.removed({ at: at(30), user: USERS.alice, group: GROUPS.dba }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'a user created under the name of a deleted one is another person',
      events: () => [
        iam.userState({ at: at(0), user: USERS.alice, kind: 'user_deleted' }),
        iam.added({
          at: at(10),
          user: 'ocid1.user.oc1..alice2',
          name: 'alice@example.com',
          group: GROUPS.dba,
        }),
        db.connect({ at: at(30), conn: 1, account: 'dba_proxy', user: 'alice@example.com', proxy: true }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'a change_user after the removal is judged when it authenticates',
      events: () => [
        db.connect({ at: at(0), conn: 1, account: 'dev_proxy', user: 'bob', proxy: true }),
        iam.removed({ at: at(30), user: USERS.alice, group: GROUPS.dba }),
        db.changeUser({ at: at(60), conn: 1, account: 'dba_proxy', user: 'alice', proxy: true }),
      ],
      expect: {
        alerts: 1,
        severity: 'critical',
        match: {
          time: '2026-11-02T10:00:00.000Z',
          identity: { principalId: USERS.alice, attribution: { problem: 'left-group' } },
          mysqlAccount: 'dba_proxy@%',
        },
      },
    },
    {
      name: 'a change_user before the removal is silent',
      events: () => [
        db.connect({ at: at(0), conn: 1, account: 'dev_proxy', user: 'bob', proxy: true }),
        db.changeUser({ at: at(20), conn: 1, account: 'dba_proxy', user: 'alice', proxy: true }),
        iam.removed({ at: at(30), user: USERS.alice, group: GROUPS.dba }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'removed then re-added before connecting is silent',
      events: () => [
        iam.removed({ at: at(0), user: USERS.alice, group: GROUPS.dba }),
        iam.added({ at: at(10), user: USERS.alice, group: GROUPS.dba }),
        db.connect({ at: at(30), conn: 1, account: 'dba_proxy', user: 'alice', proxy: true }),
      ],
      expect: { alerts: 0 },
    },
  ],
});
