import { z } from 'zod';
import { defineRule, madeBySelf } from '../detect/rule.js';
import { at, baseConfig, GROUPS, iam, USERS } from '../detect/timeline.js';

export const iamCredentialChange = defineRule({
  id: 'iam.credential-change',
  title: "Credential created on another person's IAM user",
  description:
    "Someone other than the user creates (uploads, resets) an API key, auth token, password or other credential on that user's IAM account: whoever holds it can act as them, and authentication_oci accepts an API key's signature as that person's login. High when the user can then log in to a database (a 1-to-1 mapping, or a mapped group they belong to). Users managing their own credentials, and updates and deletions, raise nothing.",
  severity: 'medium',
  attack: ['T1098.001'],
  runbook:
    "Ask the user whether they requested the credential; if not, delete it (the alert names its type), review what the actor did and the sessions of the user since, and rotate the actor's own credentials.",
  falsePositives: ['Administrators setting up service users or resetting a forgotten password on request.'],
  params: z.strictObject({}),
  suppressFor: 0,
  on: {
    iam: (fact) => {
      const { event, user, reach } = fact;
      if (event.source !== 'iam' || event.credential?.change !== 'created' || !user || madeBySelf(fact))
        return [];
      const { actor } = event;
      // Sorted: the order the mappings were learnt in is no part of the finding (a restart changes it).
      const accounts = (reach ?? []).map((a) => `${a.account} on ${a.db}`).sort();
      return [
        {
          subject: event.key,
          occurrence: event.kind,
          ts: event.ts,
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
