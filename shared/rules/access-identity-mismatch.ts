import { z } from 'zod';
import { defineRule, loginOccurrence, type SessionFact, sessionFields } from '../detect/rule.js';
import { at, db, iam, USERS } from '../detect/timeline.js';

/** A session this rule reports: the named person is not a member of a group mapped to the account. */
export function isIdentityMismatch({ session }: SessionFact): boolean {
  return session.attribution.problem === 'not-member' && session.identity !== null;
}

export const accessIdentityMismatch = defineRule({
  id: 'access.identity-mismatch',
  title: 'Login identity is not a member of the group that granted the account',
  description:
    'The claimed login identity (external user or login name) is not a member of any group mapped to the proxied account at connect time.',
  severity: 'high',
  attack: ['T1078', 'T1550'],
  runbook:
    'Find who really held the token: compare the source IP with recent IAM sign-ons, and check the group mapping.',
  falsePositives: ['A client that sends a display name that happens to match another directory user.'],
  params: z.strictObject({}),
  suppressFor: 0,
  on: {
    session: (f) => {
      const { session } = f;
      if (!isIdentityMismatch(f) || !session.identity) return [];
      return [
        {
          subject: session.id,
          occurrence: loginOccurrence(f, 'mismatch'),
          ts: f.authenticated.ts,
          title: `${session.identity.name} logged in as ${session.mysqlAccount} on ${session.dbSystem.name} without being in a group mapped to it`,
          ...sessionFields(session),
          evidence: session.attribution.evidence,
          details: { sessionId: session.id, method: session.attribution.method },
        },
      ];
    },
  },
  cases: [
    {
      name: 'developer claims the DBA account',
      events: () => [db.connect({ at: at(10), conn: 1, account: 'dba_proxy', user: 'bob', proxy: true })],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          identity: {
            principalId: USERS.bob,
            attribution: { method: 'login-name', confidence: 'asserted', problem: 'not-member' },
          },
          mysqlAccount: 'dba_proxy@%',
          loginUser: 'bob',
        },
      },
    },
    {
      name: 'external user not in the group',
      events: () => [
        db.connect({ at: at(10), conn: 1, account: 'dba_proxy', user: 'x', os: USERS.dave, proxy: true }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          identity: {
            principalId: USERS.dave,
            attribution: { method: 'external-user', confidence: 'verified', problem: 'not-member' },
          },
          mysqlAccount: 'dba_proxy@%',
          loginUser: 'x',
        },
      },
    },
    {
      name: 'a failed login is silent',
      events: () => [
        db.connect({ at: at(10), conn: 1, account: 'dba_proxy', user: 'bob', proxy: true, status: 1045 }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'member of the mapped group is silent',
      events: () => [db.connect({ at: at(10), conn: 1, account: 'dev_proxy', user: 'bob', proxy: true })],
      expect: { alerts: 0 },
    },
    {
      name: 'added just before connecting is silent',
      events: () => [
        iam.added({ at: at(5), user: USERS.bob, group: 'ocid1.group.oc1..dba' }),
        db.connect({ at: at(10), conn: 1, account: 'dba_proxy', user: 'bob', proxy: true }),
      ],
      expect: { alerts: 0 },
    },
  ],
});
