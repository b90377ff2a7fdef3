import { z } from 'zod';
import { defineRule, sessionFields } from '../detect/rule.js';
import { at, db, iam, USERS } from '../detect/timeline.js';

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
      if (session.outcome !== 'success' || !session.attribution) return [];
      if (session.attribution.method !== 'unattributed') {
        if (!f.reattributed || !session.identity) return [];
        return [
          {
            resolves: { subject: session.id, occurrence: 'unattributed' },
            ts: session.connectTs,
            reason: 'attributed',
            note: `attributed to ${session.identity.name} (${session.attribution.method}, ${session.attribution.confidence})`,
            evidence: session.attribution.evidence,
          },
        ];
      }
      return [
        {
          subject: session.id,
          occurrence: 'unattributed',
          ts: session.connectTs,
          title: `Nobody can be named behind ${session.mysqlAccount} on ${session.dbSystem.name}`,
          ...sessionFields(session),
          evidence: session.attribution.evidence,
          details: { sessionId: session.id, problem: session.attribution.problem ?? 'no-evidence' },
        },
      ];
    },
  },
  cases: [
    {
      name: 'no name, no sign-on',
      events: () => [
        db.connect({
          at: at(10),
          conn: 1,
          account: 'dba_proxy',
          user: 'dba_proxy',
          ip: '10.0.0.9',
          proxy: true,
        }),
      ],
      expect: { alerts: 1, severity: 'medium' },
    },
    {
      name: 'two members signed on from the same IP',
      events: () => [
        iam.signOn({ at: at(0), user: USERS.bob, ip: '10.0.0.9' }),
        iam.signOn({ at: at(1), user: USERS.dave, ip: '10.0.0.9' }),
        db.unnamed({ at: at(10), conn: 1 }),
      ],
      expect: { alerts: 1 },
    },
    {
      name: 'one member signed on from the same IP is attributed',
      events: () => [
        iam.signOn({ at: at(0), user: USERS.bob, ip: '10.0.0.9', mfa: 'TOTP' }),
        db.unnamed({ at: at(10), conn: 1 }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'a sign-on arriving later than the lateness attributes the session and resolves the alert',
      events: () => [
        db.unnamed({ at: at(10), conn: 1 }),
        iam.signOn({ at: at(60), user: USERS.dave, ip: '10.9.9.9' }),
      ],
      later: () => [iam.signOn({ at: at(0), user: USERS.bob, ip: '10.0.0.9', mfa: 'TOTP' })],
      expect: { alerts: 1, resolutions: 1 },
    },
    {
      name: 'a late sign-on from another address leaves it open',
      events: () => [
        db.unnamed({ at: at(10), conn: 1 }),
        iam.signOn({ at: at(60), user: USERS.dave, ip: '10.9.9.9' }),
      ],
      later: () => [iam.signOn({ at: at(0), user: USERS.bob, ip: '10.0.0.8', mfa: 'TOTP' })],
      expect: { alerts: 1, resolutions: 0 },
    },
    {
      name: 'a local account is not this rule',
      events: () => [db.connect({ at: at(10), conn: 1, account: 'admin' })],
      expect: { alerts: 0 },
    },
  ],
});
