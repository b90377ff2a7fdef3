import { z } from 'zod';
import type { IamEvent, IamEventKind } from '../../schemas/events.js';
import { defineRule } from '../detect/rule.js';
import { at, baseConfig, DB, GROUPS, iam, USERS } from '../detect/timeline.js';

const VERBS: Partial<Record<IamEventKind, string>> = {
  membership_added: 'added to',
  membership_removed: 'removed from',
  group_deleted: 'deleted:',
  idp_mapping_created: 'mapped onto',
  idp_mapping_updated: 'mapping changed onto',
  idp_mapping_deleted: 'no longer mapped onto',
  dynamic_group_created: 'created',
  dynamic_group_updated: 'matching rule changed',
  dynamic_group_deleted: 'deleted',
};

type DynamicGroup = NonNullable<IamEvent['dynamicGroup']>;

function matchingRuleOf(g: DynamicGroup): string {
  return g.matchingRule ? `: ${g.matchingRule}` : '';
}

/**
 * A matching rule as its conditions and how they combine: `all` (every one must hold) or `any`
 * (one is enough); a single condition is both.
 */
function parseMatchingRule(rule: string): { all: boolean; any: boolean; conditions: Set<string> } {
  const text = rule.replace(/\s+/g, '').replace(/["']/g, '').toLowerCase();
  const grouped = /^(all|any)\{(.*)\}$/.exec(text);
  const conditions = new Set((grouped ? (grouped[2] ?? '') : text).split(',').filter((c) => c !== ''));
  const single = conditions.size <= 1;
  return { all: single || grouped?.[1] !== 'any', any: single || grouped?.[1] === 'any', conditions };
}

/**
 * Whether matching rule `after` provably matches no more than `before`: conditions added under
 * ALL, removed under ANY, or ALL of conditions one of which was enough before. Anything else, or
 * a rule the record does not give, may widen it.
 */
function narrowsOrKeeps(before: string | undefined, after: string | undefined): boolean {
  if (before === undefined || after === undefined) return false;
  const b = parseMatchingRule(before);
  const a = parseMatchingRule(after);
  if (a.all && b.all) return [...b.conditions].every((c) => a.conditions.has(c));
  if (a.any && b.any) return [...a.conditions].every((c) => b.conditions.has(c));
  return a.all && b.any && [...a.conditions].some((c) => b.conditions.has(c));
}

const DYNAMIC_GROUP = 'ocid1.dynamicgroup.oc1..batch';
const ONE_INSTANCE = "instance.id = 'ocid1.instance.oc1..a'";
const COMPARTMENT = "ALL {instance.compartment.id = 'ocid1.compartment.oc1..prod'}";

/** The dynamic group's matching rule widened from one instance to a compartment. */
const widened = () =>
  iam.dynamicGroup({
    at: at(1),
    kind: 'dynamic_group_updated',
    id: DYNAMIC_GROUP,
    previous: ONE_INSTANCE,
    rule: COMPARTMENT,
  });

/** The standard DB system, whose group mapping gives the dynamic group `batch_proxy`. */
const DYNAMIC_GROUP_MAPPED = {
  dbSystems: [
    {
      id: DB.id,
      name: DB.name,
      accounts: [
        {
          user: '',
          host: '%',
          plugin: 'authentication_oci',
          authenticationString: JSON.stringify({ group_mapping: { [DYNAMIC_GROUP]: 'batch_proxy' } }),
        },
      ],
    },
  ],
};

export const iamPrivilegedGroupChange = defineRule({
  id: 'iam.privileged-group-change',
  title: 'Membership of a privileged database group changed',
  description:
    'A user is added to or removed from a group mapped to a privileged MySQL account (or a break-glass group), or such a group is deleted (high when users add themselves); an identity provider group is mapped onto such a group, or its mapping changed or deleted (every member of the IdP group at once: high when created or changed); a dynamic group that a group mapping names (any account) is created, deleted, or given a matching rule that is not a narrowing of the one before.',
  severity: 'medium',
  attack: ['T1098.007'],
  runbook:
    'Match the change to an access request; for break-glass groups confirm the emergency. A user who added themselves granted their own privileged access: confirm who approved it, else remove the membership. For an IdP group mapping, list who is in the IdP group: each of them now reaches the accounts; for a dynamic group, which instances or resources its matching rule now matches.',
  falsePositives: [
    'Joiners and leavers processed by the identity team.',
    'Federation and dynamic group set-up planned by the identity team.',
  ],
  params: z.strictObject({}),
  suppressFor: 0,
  on: {
    iam: ({ event, user, actor, group }) => {
      if (!group) return [];
      const { dynamicGroup, idpGroupMapping } = event.source === 'iam' ? event : {};
      if (dynamicGroup) {
        if (group.mappedAccounts.length === 0) return [];
        const { matchingRule, previousMatchingRule } = dynamicGroup;
        if (event.kind === 'dynamic_group_updated' && narrowsOrKeeps(previousMatchingRule, matchingRule))
          return [];
      } else if (!group.breakGlass && !group.mappedAccounts.some((a) => a.privileged)) return [];
      const verb = VERBS[event.kind];
      if (!verb) return [];
      const idpGroup =
        idpGroupMapping?.idpGroupName ?? idpGroupMapping?.idpId ?? 'an identity provider group';
      // Granting oneself privileged access breaks segregation of duties.
      const selfGranted = event.kind === 'membership_added' && user !== undefined && actor?.id === user.id;
      const who = user?.name ?? event.user?.name ?? event.user?.id ?? 'a user';
      const title =
        event.kind === 'group_deleted'
          ? `Group deleted: privileged group ${group.name}`
          : dynamicGroup
            ? `Dynamic group ${dynamicGroup.name ?? group.name} ${verb}${matchingRuleOf(dynamicGroup)}`
            : idpGroupMapping
              ? `IdP group ${idpGroup} ${verb} privileged group ${group.name}`
              : selfGranted
                ? `${who} added themselves to privileged group ${group.name}`
                : `${who} ${verb} privileged group ${group.name}`;
      return [
        {
          subject: event.key,
          occurrence: event.kind,
          ts: event.ts,
          ...(selfGranted || event.kind === 'idp_mapping_created' || event.kind === 'idp_mapping_updated'
            ? { severity: 'high' as const }
            : {}),
          title,
          identity: user ? { principalId: user.id, name: user.name, attribution: null } : null,
          dbSystem: null,
          group: { id: group.id, name: dynamicGroup?.name ?? group.name },
          ...(event.actor.id || event.actor.name
            ? { actor: { principalId: event.actor.id ?? null, name: event.actor.name ?? null } }
            : {}),
          ...(event.actor.ip ? { sourceIp: event.actor.ip } : {}),
          evidence: [event.key],
          details: {
            change: event.kind,
            actor: event.actor.name ?? event.actor.id ?? null,
            accounts: group.mappedAccounts
              .filter((a) => dynamicGroup || a.privileged)
              .map((a) => `${a.account} on ${a.db}`),
            breakGlass: group.breakGlass,
            selfGranted,
            ...(idpGroupMapping ? { idpGroup } : {}),
            ...(dynamicGroup
              ? {
                  matchingRule: dynamicGroup.matchingRule ?? null,
                  previousMatchingRule: dynamicGroup.previousMatchingRule ?? null,
                }
              : {}),
          },
        },
      ];
    },
  },
  cases: [
    {
      name: 'user added to the DBA group',
      events: () => [iam.added({ at: at(1), user: USERS.bob, group: GROUPS.dba })],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          identity: { principalId: USERS.bob, attribution: null },
          actor: { principalId: 'ocid1.user.oc1..admin', name: 'iam-admin' },
          title: 'bob@example.com added to privileged group DBAdmins',
          group: { id: GROUPS.dba },
          details: { change: 'membership_added', actor: 'iam-admin', breakGlass: false, selfGranted: false },
        },
      },
    },
    {
      name: 'a user who adds themselves to the break-glass group',
      events: () => [
        iam.added({
          at: at(1),
          user: USERS.bob,
          group: GROUPS.bg,
          actor: { id: USERS.bob, name: 'bob@example.com' },
        }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          identity: { principalId: USERS.bob },
          actor: { principalId: USERS.bob },
          title: 'bob@example.com added themselves to privileged group BreakGlass',
          details: { change: 'membership_added', breakGlass: true, selfGranted: true },
        },
      },
    },
    {
      name: "an actor named only by an alias (an identity domain's own id) who adds themselves",
      events: () => [
        iam.added({
          at: at(1),
          user: USERS.bob,
          group: GROUPS.dba,
          actor: { id: 'b0b-domain-guid', name: 'bob' },
        }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: { identity: { principalId: USERS.bob }, details: { selfGranted: true } },
      },
    },
    {
      name: 'privileged group deleted',
      events: () => [iam.groupDeleted({ at: at(1), group: GROUPS.dba })],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          identity: null,
          title: 'Group deleted: privileged group DBAdmins',
          group: { id: GROUPS.dba },
          details: { change: 'group_deleted' },
        },
      },
    },
    {
      name: 'user removed from the break-glass group',
      events: () => [iam.removed({ at: at(1), user: USERS.alice, group: GROUPS.bg })],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          identity: { principalId: USERS.alice },
          title: 'alice@example.com removed from privileged group BreakGlass',
          group: { id: GROUPS.bg },
          details: { change: 'membership_removed', breakGlass: true, selfGranted: false },
        },
      },
    },
    {
      name: 'a renamed privileged group is not a membership change',
      events: () => [
        { ...iam.groupDeleted({ at: at(1), group: GROUPS.dba }), kind: 'group_updated' as const },
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'a group mapped to a privileged account on one DB system and an ordinary one on another',
      config: {
        dbSystems: [
          ...(baseConfig().dbSystems ?? []),
          {
            id: 'ocid1.mysqldbsystem.oc1..test',
            name: 'test-orders',
            accounts: [
              {
                user: '',
                host: '%',
                plugin: 'authentication_oci',
                authenticationString: JSON.stringify({ group_mapping: { [GROUPS.dba]: 'dba_ro' } }),
              },
            ],
          },
        ],
      },
      events: () => [iam.added({ at: at(1), user: USERS.bob, group: GROUPS.dba })],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: { details: { accounts: ['dba_proxy on ocid1.mysqldbsystem.oc1..prod1'] } },
      },
    },
    {
      name: 'an IdP group mapped onto DBAdmins: all its members at once',
      events: () => [
        iam.idpMapping({
          at: at(1),
          kind: 'idp_mapping_created',
          group: GROUPS.dba,
          idpGroupName: 'everyone',
        }),
      ],
      expect: {
        alerts: 1,
        severity: 'high',
        match: {
          identity: null,
          title: 'IdP group everyone mapped onto privileged group DBAdmins',
          group: { id: GROUPS.dba },
          actor: { name: 'iam-admin' },
          details: {
            change: 'idp_mapping_created',
            idpGroup: 'everyone',
            accounts: ['dba_proxy on ocid1.mysqldbsystem.oc1..prod1'],
          },
        },
      },
    },
    {
      name: 'an IdP group mapping onto BreakGlass deleted',
      events: () => [
        iam.idpMapping({ at: at(1), kind: 'idp_mapping_deleted', group: GROUPS.bg, idpGroupName: 'oncall' }),
      ],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          title: 'IdP group oncall no longer mapped onto privileged group BreakGlass',
          details: { breakGlass: true },
        },
      },
    },
    {
      name: 'an IdP group mapped onto Developers (no privileged account) is silent',
      events: () => [
        iam.idpMapping({
          at: at(1),
          kind: 'idp_mapping_created',
          group: GROUPS.dev,
          idpGroupName: 'everyone',
        }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: "a mapped dynamic group's matching rule widened from one instance to a compartment",
      config: DYNAMIC_GROUP_MAPPED,
      events: () => [widened()],
      expect: {
        alerts: 1,
        severity: 'medium',
        match: {
          title: `Dynamic group batch matching rule changed: ${COMPARTMENT}`,
          group: { id: DYNAMIC_GROUP, name: 'batch' },
          details: {
            accounts: ['batch_proxy on ocid1.mysqldbsystem.oc1..prod1'],
            previousMatchingRule: ONE_INSTANCE,
          },
        },
      },
    },
    {
      name: 'a mapped dynamic group created with no earlier rule to compare',
      config: DYNAMIC_GROUP_MAPPED,
      events: () => [
        iam.dynamicGroup({ at: at(1), kind: 'dynamic_group_created', id: DYNAMIC_GROUP, rule: COMPARTMENT }),
      ],
      expect: { alerts: 1, severity: 'medium', match: { details: { change: 'dynamic_group_created' } } },
    },
    {
      name: "a mapped dynamic group's rule narrowed (a tag added under ALL) is silent",
      config: DYNAMIC_GROUP_MAPPED,
      events: () => [
        iam.dynamicGroup({
          at: at(1),
          kind: 'dynamic_group_updated',
          id: DYNAMIC_GROUP,
          previous: COMPARTMENT,
          rule: "ALL {instance.compartment.id = 'ocid1.compartment.oc1..prod', tag.ops.role.value = 'batch'}",
        }),
      ],
      expect: { alerts: 0 },
    },
    {
      name: 'a dynamic group no group mapping names is silent, however wide',
      events: () => [widened()],
      expect: { alerts: 0 },
    },
    {
      name: 'developer group change is silent',
      events: () => [iam.added({ at: at(1), user: USERS.alice, group: GROUPS.dev })],
      expect: { alerts: 0 },
    },
  ],
});
