import { z } from 'zod';
import { defineRule, type Outcome } from '../detect/rule.js';
import { at, GROUPS, iam, USERS } from '../detect/timeline.js';
import { acknowledgement, ExpectedPolicyChanges, reverted } from './expected-changes.js';

const AUTH_STATEMENT =
  'ALLOW service mysql_dp_auth TO {AUTHENTICATION_INSPECT, GROUP_MEMBERSHIP_INSPECT} IN TENANCY';
const OTHER_STATEMENT = 'Allow group Auditors to read audit-events in tenancy';

export const iamAuthPolicyChange = defineRule({
  id: 'iam.auth-policy-change',
  title: 'Database authentication policy changed',
  description:
    'A policy statement granting mysql_dp_auth, or the 9.4+ form (the mysqldbsystem principal given AUTHENTICATION_INSPECT, GROUP_MEMBERSHIP_INSPECT or DYNAMIC_GROUP_INSPECT), is created, changed or deleted: database IAM login breaks or widens tenancy-wide.',
  severity: 'high',
  attack: ['T1484', 'T1098'],
  runbook:
    'Compare the statements before and after; restore the approved policy if the change was not planned.',
  falsePositives: [
    'Planned tenancy policy refactoring (declare it in rules.iam.auth-policy-change.expected).',
    'Not raised by the mysqldbsystem condition alone: Oracle documents it for unrelated grants (network security groups).',
  ],
  params: z.strictObject({ expected: ExpectedPolicyChanges }),
  suppressFor: 0,
  on: {
    iam: ({ event, reverts, grantedBefore }, { params }) => {
      if (event.source !== 'iam' || !event.policy) return [];
      const { policy } = event;
      const name = policy.name ?? policy.id ?? '';
      const out: Outcome[] = reverts
        ? reverted(reverts, (kind) => kind, {
            key: event.key,
            ts: event.ts,
            note: `policy ${name} is back to its earlier statements`,
          })
        : [];
      // A change that only restores the earlier statements ends their alerts and raises none.
      if (!(policy.mysqlAuth || grantedBefore) || reverts?.complete) return out;
      const change = event.kind.replace('policy_', '');
      return [
        {
          subject: event.key,
          occurrence: event.kind,
          ts: event.ts,
          title: policy.mysqlAuth
            ? `Policy ${name} granting database authentication ${change}`
            : `Policy ${name} no longer grants database authentication (${change})`,
          identity: event.actor.id
            ? { principalId: event.actor.id, name: event.actor.name ?? null, attribution: null }
            : null,
          dbSystem: null,
          ...(event.actor.ip ? { sourceIp: event.actor.ip } : {}),
          evidence: [event.key],
          details: {
            change: event.kind,
            policy: policy.id ?? null,
            statements: policy.statements,
          },
        },
        ...acknowledgement(
          'iam.auth-policy-change',
          params.expected.map((w) => ({ ...w, scope: w.policies })),
          {
            subject: event.key,
            occurrence: event.kind,
            ts: event.ts,
            names: [policy.id, policy.name],
          },
        ),
      ];
    },
  },
  cases: [
    {
      name: 'policy with mysql_dp_auth deleted',
      events: () => [
        iam.policy({
          at: at(1),
          kind: 'policy_deleted',
          statements: [
            'ALLOW service mysql_dp_auth TO {AUTHENTICATION_INSPECT, GROUP_MEMBERSHIP_INSPECT} IN TENANCY',
          ],
        }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          title: 'Policy p granting database authentication deleted',
          identity: { principalId: 'ocid1.user.oc1..admin', name: 'iam-admin', attribution: null },
          dbSystem: null,
          details: { change: 'policy_deleted', policy: 'ocid1.policy.oc1..p' },
        },
      },
    },
    {
      name: 'the 9.4+ form (any-user, the mysqldbsystem principal, the lookup permissions) created',
      events: () => [
        iam.policy({
          at: at(1),
          kind: 'policy_created',
          statements: [
            "Allow any-user to {AUTHENTICATION_INSPECT, GROUP_MEMBERSHIP_INSPECT, DYNAMIC_GROUP_INSPECT} in tenancy where request.principal.type = 'mysqldbsystem'",
          ],
        }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { dbSystem: null, details: { change: 'policy_created', policy: 'ocid1.policy.oc1..p' } },
      },
    },
    {
      name: 'a record naming the policy by OCID only, from the console at 198.51.100.7',
      events: () => [
        iam.policy({
          at: at(1),
          kind: 'policy_updated',
          statements: [AUTH_STATEMENT],
          name: null,
          actorIp: '198.51.100.7',
        }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          title: 'Policy ocid1.policy.oc1..p granting database authentication updated',
          sourceIp: '198.51.100.7',
          identity: { principalId: 'ocid1.user.oc1..admin', name: 'iam-admin', attribution: null },
          details: { change: 'policy_updated', statements: [AUTH_STATEMENT] },
        },
      },
    },
    {
      name: 'a policy created then deleted: the deletion resolves the creation and raises nothing',
      events: () => [
        iam.policy({ at: at(1), kind: 'policy_created', statements: [AUTH_STATEMENT] }),
        iam.policy({ at: at(3), kind: 'policy_deleted', statements: [AUTH_STATEMENT] }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { details: { change: 'policy_created', policy: 'ocid1.policy.oc1..p' } },
        resolutions: 1,
        resolution: {
          time: '2026-11-02T09:03:00.000Z',
          reason: 'reverted',
          note: 'policy p is back to its earlier statements',
        },
      },
    },
    {
      name: 'an update that takes the grant away, its record naming only the new statements',
      events: () => [
        iam.policy({ at: at(1), kind: 'policy_created', statements: [AUTH_STATEMENT] }),
        iam.policy({ at: at(2), kind: 'policy_updated', statements: [OTHER_STATEMENT] }),
      ],
      expect: { alerts: 2, severity: 'high', match: { details: { policy: 'ocid1.policy.oc1..p' } } },
    },
    {
      name: 'an update of a policy that never granted it is silent',
      events: () => [
        iam.policy({ at: at(1), kind: 'policy_created', statements: [OTHER_STATEMENT] }),
        iam.policy({
          at: at(2),
          kind: 'policy_updated',
          statements: [OTHER_STATEMENT, 'Allow group Y to read buckets in tenancy'],
        }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'an update restoring the earlier statements resolves the change',
      events: () => [
        iam.policy({ at: at(1), kind: 'policy_updated', statements: [AUTH_STATEMENT] }),
        iam.policy({
          at: at(2),
          kind: 'policy_updated',
          statements: [AUTH_STATEMENT, 'Allow group X to use all-resources in tenancy'],
        }),
        iam.policy({ at: at(3), kind: 'policy_updated', statements: [AUTH_STATEMENT] }),
      ],
      expect: {
        alerts: 2,
        severity: 'high',
        match: { details: { change: 'policy_updated', policy: 'ocid1.policy.oc1..p' } },
        resolutions: 1,
        resolution: {
          time: '2026-11-02T09:03:00.000Z',
          reason: 'reverted',
          note: 'policy p is back to its earlier statements',
        },
      },
    },
    {
      name: 'a change inside an expected-change window for this policy is acknowledged',
      config: {
        rules: {
          'iam.auth-policy-change': {
            expected: [
              {
                from: '2026-11-02T09:00:00Z',
                to: '2026-11-02T09:30:00Z',
                reason: 'policy refactoring',
                policies: ['p'],
              },
            ],
          },
        },
      },
      events: () => [iam.policy({ at: at(1), kind: 'policy_updated', statements: [AUTH_STATEMENT] })],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { details: { change: 'policy_updated', policy: 'ocid1.policy.oc1..p' } },
        resolutions: 1,
        resolution: {
          time: '2026-11-02T09:01:00.000Z',
          reason: 'acknowledged',
          note: 'expected change: policy refactoring',
          evidence: ['config:rules.iam.auth-policy-change.expected.0'],
        },
      },
    },
    {
      name: 'a change after the expected-change window stays open',
      config: {
        rules: {
          'iam.auth-policy-change': {
            expected: [
              { from: '2026-11-02T08:00:00Z', to: '2026-11-02T09:00:00Z', reason: 'policy refactoring' },
            ],
          },
        },
      },
      events: () => [iam.policy({ at: at(1), kind: 'policy_updated', statements: [AUTH_STATEMENT] })],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { details: { change: 'policy_updated', policy: 'ocid1.policy.oc1..p' } },
        resolutions: 0,
      },
    },
    {
      name: 'one lookup permission for the mysqldbsystem principal is enough',
      events: () => [
        iam.policy({
          at: at(1),
          kind: 'policy_updated',
          statements: [
            "allow any-user to {DYNAMIC_GROUP_INSPECT} in tenancy where request.principal.type='mysqldbsystem'",
          ],
        }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { details: { change: 'policy_updated', policy: 'ocid1.policy.oc1..p' } },
      },
    },
    {
      name: "Oracle's network security group policy for the mysqldbsystem principal is silent",
      events: () => [
        iam.policy({
          at: at(1),
          kind: 'policy_created',
          statements: [
            "Allow any-user to {VNIC_CREATE, VNIC_UPDATE, VNIC_ASSOCIATE_NETWORK_SECURITY_GROUP} in compartment databases where all {request.principal.type='mysqldbsystem', request.resource.compartment.id='ocid1.compartment.oc1..db'}",
          ],
        }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'the lookup permissions granted to a group, without the mysqldbsystem principal, are silent',
      events: () => [
        iam.policy({
          at: at(1),
          kind: 'policy_created',
          statements: ['Allow group Auditors to {AUTHENTICATION_INSPECT} in tenancy'],
        }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'a group membership change is not this rule',
      events: () => [iam.added({ at: at(1), user: USERS.bob, group: GROUPS.dba })],
      expect: { alerts: 0 },
    },
    {
      name: 'unrelated policy is silent',
      events: () => [
        iam.policy({
          at: at(1),
          kind: 'policy_updated',
          statements: ['Allow group X to read buckets in tenancy'],
        }),
      ],
      expect: { alerts: 0 },
    },
  ],
});
