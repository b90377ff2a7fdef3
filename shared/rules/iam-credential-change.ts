import { z } from 'zod';
import { defineRule, madeBySelf } from '../detect/rule.js';
import { at, baseConfig, GROUPS, iam, type RuleCase, USERS } from '../detect/timeline.js';
import { acknowledged, CREDENTIAL_RULE, ExpectedCredentials } from './expected-changes.js';

/** The configuration with these entries in `rules.iam.credential-change.expected`. */
export const expecting = (...expected: Record<string, unknown>[]): NonNullable<RuleCase['config']> => ({
  rules: { [CREDENTIAL_RULE]: { expected } },
});

export const iamCredentialChange = defineRule({
  id: CREDENTIAL_RULE,
  title: "Credential created on another person's IAM user",
  description:
    "Someone other than the user creates (uploads, resets) an API key, auth token, password or other credential on that user's IAM account: whoever holds it can act as them, and authentication_oci accepts an API key's signature as that person's login. High when the user can then log in to a database (a 1-to-1 mapping, or a mapped group they belong to). Users managing their own credentials, and updates and deletions, raise nothing.",
  severity: 'medium',
  attack: ['T1098.001'],
  runbook:
    "Ask the user whether they requested the credential; if not, delete it (the alert names its type), review what the actor did and the sessions of the user since, and rotate the actor's own credentials.",
  falsePositives: [
    'Administrators or a provisioning automation creating and rotating the credentials of service users: declare them in rules.iam.credential-change.expected (actors, users, credential types; standing, or from/to), and each is raised and resolved at once as acknowledged, and not followed into the sessions.',
    'Administrators resetting a forgotten password on request.',
  ],
  params: z.strictObject({ expected: ExpectedCredentials }),
  suppressFor: 0,
  on: {
    iam: (fact) => {
      const { event, user, reach, expected } = fact;
      if (event.source !== 'iam' || event.credential?.change !== 'created' || !user || madeBySelf(fact))
        return [];
      const { actor } = event;
      // Sorted: the order the mappings were learnt in is no part of the finding (a restart changes it).
      const accounts = (reach ?? []).map((a) => `${a.account} on ${a.db}`).sort();
      // The correlator decided whether the configuration expects it (and then did not plant it).
      const change = { subject: event.key, occurrence: event.kind, ts: event.ts };
      return [
        {
          ...change,
          severity: accounts.length > 0 ? 'high' : 'medium',
          title: `${event.credential.type} created on ${user.name} by ${actor.name ?? actor.id ?? 'an unknown principal'}`,
          identity: { principalId: user.id, name: user.name, attribution: null },
          dbSystem: null,
          actor: { principalId: actor.id ?? null, name: actor.name ?? null },
          ...(actor.ip ? { sourceIp: actor.ip } : {}),
          evidence: [event.key],
          details: {
            credential: event.credential.type,
            actor: actor.name ?? actor.id ?? null,
            accounts,
            privileged: (reach ?? []).some((a) => a.privileged),
          },
        },
        ...(expected ? acknowledged(CREDENTIAL_RULE, expected, change) : []),
      ];
    },
  },
  cases: [
    {
      name: "an API key uploaded on alice's user (DBAdmins -> dba_proxy) by an administrator",
      events: () => [iam.credential({ at: at(1), user: USERS.alice })],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          title: 'api-key created on alice@example.com by iam-admin',
          identity: { principalId: USERS.alice, attribution: null },
          actor: { principalId: 'ocid1.user.oc1..admin', name: 'iam-admin' },
          details: {
            credential: 'api-key',
            accounts: ['dba_proxy on ocid1.mysqldbsystem.oc1..prod1'],
            privileged: true,
          },
        },
      },
    },
    {
      name: 'a group mapping that names its target user@host: the account is named by its user, privileged',
      config: {
        dbSystems: (() => {
          const dbs = baseConfig().dbSystems!;
          dbs[0]!.accounts![0]!.authenticationString = JSON.stringify({
            tenancy: 'ocid1.tenancy.oc1..example',
            group_mapping: { [GROUPS.dba]: "'dba_proxy'@'%'" },
          });
          return dbs;
        })(),
      },
      events: () => [iam.credential({ at: at(1), user: USERS.alice })],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { details: { accounts: ['dba_proxy on ocid1.mysqldbsystem.oc1..prod1'], privileged: true } },
      },
    },
    {
      name: "an auth token created on carol's user, mapped 1-to-1, by bob",
      events: () => [iam.credential({ at: at(1), user: USERS.carol, by: USERS.bob, type: 'auth-token' })],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          identity: { principalId: USERS.carol },
          actor: { principalId: USERS.bob },
          details: {
            credential: 'auth-token',
            accounts: ['carol on ocid1.mysqldbsystem.oc1..prod1'],
            privileged: false,
          },
        },
      },
    },
    {
      name: 'a key created for bob after he joined DBAdmins reaches dba_proxy',
      events: () => [
        iam.added({ at: at(1), user: USERS.bob, group: GROUPS.dba }),
        iam.credential({ at: at(2), user: USERS.bob }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          details: {
            accounts: [
              'dba_proxy on ocid1.mysqldbsystem.oc1..prod1',
              'dev_proxy on ocid1.mysqldbsystem.oc1..prod1',
            ],
          },
        },
      },
    },
    {
      name: 'a user in no mapped group: medium',
      config: {
        directory: {
          users: [{ id: 'ocid1.user.oc1..erin', name: 'erin@example.com' }],
          groups: [],
          memberships: [],
        },
      },
      events: () => [iam.credential({ at: at(1), user: 'ocid1.user.oc1..erin', type: 'password' })],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          identity: { principalId: 'ocid1.user.oc1..erin' },
          details: { credential: 'password', accounts: [] },
        },
      },
    },
    {
      name: 'a creation by an actor a standing entry names (case aside) is raised and acknowledged at once',
      config: expecting(
        { users: ['svc-unrelated'], reason: 'another service user' },
        { actors: ['IAM-Admin'], reason: 'provisioning rotates the keys' },
      ),
      events: () => [iam.credential({ at: at(1), user: USERS.alice })],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { identity: { principalId: USERS.alice }, details: { credential: 'api-key' } },
        resolutions: 1,
        resolution: {
          time: '2026-11-02T09:01:00.000Z',
          reason: 'acknowledged',
          note: 'expected change: provisioning rotates the keys',
          evidence: ['config:rules.iam.credential-change.expected.1'],
        },
      },
    },
    {
      name: 'a creation on a user an entry names by alias, of a type it lists, inside its window',
      config: expecting({
        users: ['carol'],
        credentials: ['db-credential', 'auth-token'],
        from: '2026-11-02T09:00:00Z',
        to: '2026-11-02T09:02:00Z',
        reason: 'CHG-77 carol service login',
      }),
      events: () => [iam.credential({ at: at(1), user: USERS.carol, by: USERS.bob, type: 'auth-token' })],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { identity: { principalId: USERS.carol }, details: { credential: 'auth-token' } },
        resolutions: 1,
        resolution: { reason: 'acknowledged', note: 'expected change: CHG-77 carol service login' },
      },
    },
    {
      name: 'an actor and a user named together: both must match (bob on carol, by his OCID)',
      config: expecting({ actors: [USERS.bob], users: [USERS.carol], reason: 'bob runs carol' }),
      events: () => [
        iam.credential({ at: at(1), user: USERS.carol, by: USERS.bob, type: 'auth-token' }),
        iam.credential({ at: at(2), user: USERS.alice, by: USERS.bob, type: 'auth-token' }),
      ],
      expect: {
        alerts: 2,
        severity: 'high',
        match: { actor: { principalId: USERS.bob }, details: { credential: 'auth-token' } },
        resolutions: 1,
        resolution: {
          time: '2026-11-02T09:01:00.000Z',
          reason: 'acknowledged',
          evidence: ['config:rules.iam.credential-change.expected.0'],
        },
      },
    },
    ...(
      [
        [
          'a credential of a type the entry does not list stays open',
          { users: ['carol@example.com'], credentials: ['db-credential'], reason: 'db credentials only' },
        ],
        [
          'a creation at the end of the window stays open',
          { users: ['carol'], from: '2026-11-02T08:00:00Z', to: '2026-11-02T09:01:00Z', reason: 'CHG-76' },
        ],
        [
          'a creation before the window opens stays open',
          { users: ['carol'], from: '2026-11-02T09:02:00Z', reason: 'from now on' },
        ],
        ['an entry naming another actor leaves it open', { actors: ['terraform'], reason: 'terraform' }],
      ] as const
    ).map(
      ([name, entry]): RuleCase => ({
        name,
        config: expecting(entry),
        events: () => [iam.credential({ at: at(1), user: USERS.carol, by: USERS.bob, type: 'auth-token' })],
        expect: {
          alerts: 1,
          severity: 'high',
          match: { identity: { principalId: USERS.carol }, details: { credential: 'auth-token' } },
        },
      }),
    ),
    {
      name: 'alice uploading her own API key is silent',
      events: () => [iam.credential({ at: at(1), user: USERS.alice, by: USERS.alice })],
      expect: { alerts: 0 },
    },
    {
      name: 'alice, named only by her user name, creating her own auth token is silent',
      events: () => [
        {
          ...iam.credential({ at: at(1), user: USERS.alice, type: 'auth-token' }),
          actor: { name: 'alice@example.com' },
        },
      ],
      expect: { alerts: 0 },
    },
    {
      name: "an administrator deleting alice's API key is silent",
      events: () => [iam.credential({ at: at(1), user: USERS.alice, change: 'deleted' })],
      expect: { alerts: 0 },
    },
  ],
});
