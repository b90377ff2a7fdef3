import { z } from 'zod';
import { defineRule, loginOccurrence, sessionFields } from '../detect/rule.js';
import { at, db, GROUPS, iam, USERS } from '../detect/timeline.js';

/** A group login at 09:10 from 10.0.0.9 that sends the proxied account's name, not a person's. */
const anonymousLogin = (account: string) => db.unnamed({ at: at(10), conn: 1, account });

export const accessUnattributed = defineRule({
  id: 'access.unattributed',
  title: 'IAM-proxied session not attributable to a person',
  description:
    'A group-proxied session cannot be tied to an individual: no external user, no known login name, no unique sign-on.',
  severity: 'medium',
  attack: ['T1078'],
  runbook:
    'Ask the group members who connected from the source IP; require clients to send their own user name.',
  falsePositives: ['Sign-on events not yet ingested (they clear it when they arrive within the lateness).'],
  params: z.strictObject({}),
  suppressFor: 0,
  on: {
    session: (f) => {
      const { session } = f;
      if (session.attribution.method !== 'unattributed') {
        if (!f.reattributed || !session.identity) return [];
        return [
          {
            resolves: { subject: session.id, occurrence: loginOccurrence(f, 'unattributed') },
            ts: f.authenticated.ts,
            reason: 'attributed',
            note: `attributed to ${session.identity.name} (${session.attribution.method}, ${session.attribution.confidence})`,
            evidence: session.attribution.evidence,
          },
        ];
      }
      return [
        {
          subject: session.id,
          occurrence: loginOccurrence(f, 'unattributed'),
          ts: f.authenticated.ts,
          title: `Nobody can be named behind ${session.mysqlAccount} on ${session.dbSystem.name}`,
          ...sessionFields(session),
          evidence: session.attribution.evidence,
          details: { sessionId: session.id, problem: session.attribution.problem },
        },
      ];
    },
  },
  cases: [
    {
      name: 'no name, no sign-on',
      events: () => [anonymousLogin('dba_proxy')],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          identity: null,
          mysqlAccount: 'dba_proxy@%',
          group: { id: GROUPS.dba },
          sourceIp: '10.0.0.9',
          details: { problem: 'no-evidence' },
        },
      },
    },
    {
      name: 'two members signed on from the same IP',
      events: () => [
        iam.signOn({ at: at(0), user: USERS.bob, ip: '10.0.0.9' }),
        iam.signOn({ at: at(1), user: USERS.dave, ip: '10.0.0.9' }),
        anonymousLogin('dev_proxy'),
      ],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: { identity: null, mysqlAccount: 'dev_proxy@%', details: { problem: 'ambiguous' } },
      },
    },
    {
      name: 'one member signed on from the same IP is attributed',
      events: () => [
        iam.signOn({ at: at(0), user: USERS.bob, ip: '10.0.0.9', mfa: 'TOTP' }),
        anonymousLogin('dev_proxy'),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'a sign-on arriving later than the lateness attributes the session and resolves the alert',
      events: () => [
        anonymousLogin('dev_proxy'),
        iam.signOn({ at: at(60), user: USERS.dave, ip: '10.9.9.9' }),
      ],
      later: () => [iam.signOn({ at: at(0), user: USERS.bob, ip: '10.0.0.9', mfa: 'TOTP' })],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: { identity: null, mysqlAccount: 'dev_proxy@%', details: { problem: 'no-evidence' } },
        resolutions: 1,
        resolution: {
          time: '2026-11-02T09:10:00.000Z',
          reason: 'attributed',
          note: 'attributed to bob@example.com (signon-correlated, corroborated)',
        },
      },
    },
    {
      name: 'a late sign-on from another address leaves it open',
      events: () => [
        anonymousLogin('dev_proxy'),
        iam.signOn({ at: at(60), user: USERS.dave, ip: '10.9.9.9' }),
      ],
      later: () => [iam.signOn({ at: at(0), user: USERS.bob, ip: '10.0.0.8', mfa: 'TOTP' })],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: { identity: null, mysqlAccount: 'dev_proxy@%', details: { problem: 'no-evidence' } },
        resolutions: 0,
      },
    },
    {
      name: 'a sign-on one second inside tokenLifetime (PT1H) attributes the session',
      boundary: { param: 'tokenLifetime', side: 'inside' },
      events: () => [
        iam.signOn({ at: at(-50) + 1_000, user: USERS.bob, ip: '10.0.0.9' }),
        anonymousLogin('dev_proxy'),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'a sign-on exactly tokenLifetime before the connect is too old',
      boundary: { param: 'tokenLifetime', side: 'outside' },
      events: () => [
        iam.signOn({ at: at(-50), user: USERS.bob, ip: '10.0.0.9' }),
        anonymousLogin('dev_proxy'),
      ],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: { identity: null, mysqlAccount: 'dev_proxy@%', details: { problem: 'no-evidence' } },
      },
    },
    {
      name: 'a failed group login is silent',
      events: () => [{ ...anonymousLogin('dba_proxy'), status: 1045 }],
      expect: { alerts: 0 },
    },
    {
      name: 'a local account is not this rule',
      events: () => [db.connect({ at: at(10), conn: 1, account: 'admin' })],
      expect: { alerts: 0 },
    },
  ],
});
