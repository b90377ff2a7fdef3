import { z } from 'zod';
import type { CanonicalEvent } from '../../schemas/events.js';
import { defineRule, sessionFields } from '../detect/rule.js';
import { at, baseConfig, db, GROUPS, iam, type RuleCase, USERS } from '../detect/timeline.js';
import { expecting } from './iam-credential-change.js';

const BILLING = { id: 'ocid1.mysqldbsystem.oc1..prod2', name: 'prod-billing' };

/** The standard DB systems, and prod-billing like prod-orders. */
const withBilling = () => [
  ...baseConfig().dbSystems!,
  { ...baseConfig().dbSystems![0]!, id: BILLING.id, name: BILLING.name },
];

/** alice logs in to dba_proxy, the server naming her as the external user. */
const aliceLogin = (minutes: number, conn: number, dbId?: string) =>
  db.connect({
    at: at(minutes),
    conn,
    account: 'dba_proxy',
    user: 'alice',
    os: 'alice',
    proxy: true,
    ...(dbId ? { db: dbId } : {}),
  });

/** An API key of iam-admin's on alice's user at minute 0, then what happens after it. */
const plantedThen = (...after: CanonicalEvent[]): CanonicalEvent[] => [
  iam.credential({ at: at(0), user: USERS.alice, id: 'fp-1' }),
  ...after,
];

/** One alert: the credential (`planted`, as the attribution lists it) followed into the session. */
const followed = (
  planted: Record<string, string>,
  credential: string,
  createdBy: string,
): RuleCase['expect'] => ({
  alerts: 1,
  severity: 'high',
  match: {
    identity: { attribution: { confidence: 'asserted', plantedCredentials: [planted] } },
    details: { credential, createdBy },
  },
});

/** What a silent case's events are. */
const silent = (name: string, events: RuleCase['events']): RuleCase => ({
  name,
  events,
  expect: { alerts: 0 },
});

export const accessPlantedCredential = defineRule({
  id: 'access.planted-credential',
  title: 'Database session while a credential someone else created on the person is in force',
  description:
    "A person connects to a DB system after another principal created an API key, auth token, password or other credential on their IAM user, and before that credential was deleted: whoever holds it can log in as them (iam.credential-change raised its creation). Raised at the first such session per credential and DB system; the person's later sessions carry the credential in their attribution (`plantedCredentials`) and raise nothing more.",
  severity: 'high',
  attack: ['T1078.004', 'T1098.001'],
  runbook:
    "Ask the person whether they made this session and requested the credential; if not, delete the credential, kill the session, review what it ran and what the credential's creator did, and rotate the creator's own credentials.",
  falsePositives: [
    "An administrator who set up a credential at the person's request (a password reset), used by that person.",
    "A service user's API key or DB credential that an administrator or a provisioning automation creates and rotates: declare them in rules.iam.credential-change.expected, and they are not followed.",
  ],
  params: z.strictObject({}),
  suppressFor: 0,
  on: {
    session: ({ session, authenticated }) => {
      const { identity, attribution } = session;
      if (!identity) return [];
      return (attribution.plantedCredentials ?? []).map((c) => {
        const creator = c.actor.name ?? c.actor.id ?? 'an unknown principal';
        return {
          // One alert per credential and DB system: the person's later sessions are marked only.
          subject: c.key,
          occurrence: session.dbSystem.id,
          ts: authenticated.ts,
          title: `${identity.name} connected to ${session.dbSystem.name} with a credential ${creator} created on their IAM user in force (${c.type})`,
          ...sessionFields(session),
          evidence: [c.key, ...attribution.evidence],
          details: {
            sessionId: session.id,
            credential: c.type,
            ...(c.id === undefined ? {} : { credentialId: c.id }),
            createdBy: c.actor.name ?? c.actor.id ?? null,
            createdAt: c.time,
            credentialEvent: c.key,
          },
        };
      });
    },
  },
  cases: [
    {
      name: "an API key iam-admin uploaded on alice, then alice's group login: marked, verified lowered to asserted",
      events: () => plantedThen(aliceLogin(30, 1)),
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          title:
            'alice@example.com connected to prod-orders with a credential iam-admin created on their IAM user in force (api-key)',
          identity: {
            principalId: USERS.alice,
            attribution: {
              method: 'external-user',
              confidence: 'asserted',
              plantedCredentials: [
                {
                  type: 'api-key',
                  id: 'fp-1',
                  actor: { id: 'ocid1.user.oc1..admin', name: 'iam-admin' },
                  time: '2026-11-02T09:00:00.000Z',
                },
              ],
            },
          },
          group: { id: GROUPS.dba },
          mysqlAccount: 'dba_proxy@%',
          details: { credential: 'api-key', credentialId: 'fp-1', createdBy: 'iam-admin' },
        },
      },
    },
    {
      name: "an auth token bob created on carol's 1-to-1 user, then carol's login",
      events: () => [
        iam.credential({ at: at(0), user: USERS.carol, by: USERS.bob, type: 'auth-token' }),
        db.connect({ at: at(30), conn: 1, account: 'carol' }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          identity: {
            principalId: USERS.carol,
            attribution: {
              method: 'mapped-user',
              confidence: 'asserted',
              plantedCredentials: [{ type: 'auth-token', actor: { id: USERS.bob, name: 'bob@example.com' } }],
            },
          },
          mysqlAccount: 'carol@%',
          details: { credential: 'auth-token', createdBy: 'bob@example.com' },
        },
      },
    },
    ...(
      [
        [
          'a login name corroborated by her own sign-on stays corroborated under a planted API key',
          'api-key',
          'corroborated',
        ],
        ['a planted password makes a sign-on no corroboration: asserted', 'password', 'asserted'],
      ] as const
    ).map(
      ([name, type, confidence]): RuleCase => ({
        name,
        events: () => [
          iam.credential({ at: at(0), user: USERS.alice, type }),
          iam.signOn({ at: at(20), user: USERS.alice, ip: '10.0.0.5' }),
          db.connect({
            at: at(30),
            conn: 1,
            account: 'dba_proxy',
            user: 'alice',
            ip: '10.0.0.5',
            proxy: true,
          }),
        ],
        expect: {
          alerts: 1,
          severity: 'high',
          match: {
            identity: { attribution: { method: 'login-name', confidence, plantedCredentials: [{ type }] } },
          },
        },
      }),
    ),
    {
      name: 'later sessions on the same DB system raise nothing more; another DB system raises its own',
      config: {
        dbSystems: withBilling(),
      },
      events: () => plantedThen(aliceLogin(30, 1), aliceLogin(40, 2), aliceLogin(50, 1, BILLING.id)),
      expect: {
        alerts: 2,
        severity: 'high',
        match: { identity: { principalId: USERS.alice }, details: { credential: 'api-key' } },
      },
    },
    {
      name: 'a key deleted by another id leaves the planted one in force',
      events: () =>
        plantedThen(
          iam.credential({ at: at(10), user: USERS.alice, id: 'fp-2', change: 'deleted' }),
          aliceLogin(30, 1),
        ),
      expect: {
        alerts: 1,
        severity: 'high',
        match: { identity: { attribution: { plantedCredentials: [{ id: 'fp-1' }] } } },
      },
    },
    {
      name: 'a creation that arrives later than the lateness marks the session it precedes',
      events: () => [aliceLogin(30, 1), db.connect({ at: at(200), conn: 9, account: 'admin' })],
      later: () => [iam.credential({ at: at(0), user: USERS.alice })],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { time: '2026-11-02T09:30:00.000Z', identity: { principalId: USERS.alice } },
      },
    },
    ...(
      [
        ['an expected-credential entry for another actor leaves the key planted', { actors: ['terraform'] }],
        [
          'an entry whose window closed before the creation leaves the key planted',
          { users: ['alice'], to: '2026-11-02T09:00:00Z' },
        ],
      ] as const
    ).map(
      ([name, entry]): RuleCase => ({
        name,
        config: expecting({ ...entry, reason: 'service keys' }),
        events: () => plantedThen(aliceLogin(30, 1)),
        expect: followed({ id: 'fp-1' }, 'api-key', 'iam-admin'),
      }),
    ),
    {
      name: "an expected key beside one that is not: only bob's auth token is followed",
      config: expecting({ actors: ['iam-admin'], credentials: ['api-key'], reason: 'key rotation' }),
      events: () =>
        plantedThen(
          iam.credential({ at: at(5), user: USERS.alice, by: USERS.bob, type: 'auth-token' }),
          aliceLogin(30, 1),
        ),
      expect: followed({ type: 'auth-token' }, 'auth-token', 'bob@example.com'),
    },
    {
      ...silent('a key the configuration expects, by its creator (a standing entry)', () =>
        plantedThen(aliceLogin(30, 1)),
      ),
      config: expecting({ actors: ['iam-admin'], reason: 'provisioning' }),
    },
    {
      ...silent('a key the configuration expects on the user, inside its window, on every DB system', () =>
        plantedThen(aliceLogin(30, 1), aliceLogin(40, 2, BILLING.id)),
      ),
      config: {
        ...expecting({
          users: [USERS.alice],
          credentials: ['api-key'],
          from: '2026-11-02T09:00:00Z',
          to: '2026-11-02T10:00:00Z',
          reason: 'CHG-9 service user key rotation',
        }),
        dbSystems: withBilling(),
      },
    },
    silent('alice uploading her own API key', () => [
      iam.credential({ at: at(0), user: USERS.alice, by: USERS.alice }),
      aliceLogin(30, 1),
    ]),
    silent('the planted key deleted before the session', () =>
      plantedThen(
        iam.credential({ at: at(10), user: USERS.alice, id: 'fp-1', change: 'deleted' }),
        aliceLogin(30, 1),
      ),
    ),
    silent('a deletion that names no key ends every planted key of its type', () =>
      plantedThen(iam.credential({ at: at(10), user: USERS.alice, change: 'deleted' }), aliceLogin(30, 1)),
    ),
    silent('a reset password the person has since set themselves', () => [
      iam.credential({ at: at(0), user: USERS.alice, type: 'password' }),
      iam.credential({ at: at(10), user: USERS.alice, by: USERS.alice, type: 'password', change: 'updated' }),
      aliceLogin(30, 1),
    ]),
    silent('a session before the creation', () => [
      aliceLogin(0, 1),
      iam.credential({ at: at(10), user: USERS.alice }),
    ]),
    silent('a key planted on a user with no database reach, and a session of someone else', () => [
      iam.credential({ at: at(0), user: 'ocid1.user.oc1..erin' }),
      aliceLogin(30, 1),
    ]),
    silent('a session that is a finding of its own (she had left the group: access.after-revocation)', () =>
      plantedThen(iam.removed({ at: at(10), user: USERS.alice, group: GROUPS.dba }), aliceLogin(30, 1)),
    ),
    silent('a failed login of the person', () =>
      plantedThen(
        db.connect({ at: at(30), conn: 1, account: 'dba_proxy', user: 'alice', proxy: true, status: 1045 }),
      ),
    ),
    silent('a session that names nobody', () =>
      plantedThen(db.unnamed({ at: at(30), conn: 1, account: 'dba_proxy', ip: '10.9.9.9' })),
    ),
  ],
});
