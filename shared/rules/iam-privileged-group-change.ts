import { z } from 'zod';
import { defineRule } from '../detect/rule.js';
import { at, baseConfig, GROUPS, iam, USERS } from '../detect/timeline.js';

export const iamPrivilegedGroupChange = defineRule({
  id: 'iam.privileged-group-change',
  title: 'Membership of a privileged database group changed',
  description:
    'A user is added to or removed from a group mapped to a privileged MySQL account (or a break-glass group), or such a group is deleted; high when users add themselves.',
  severity: 'medium',
  attack: ['T1098.007'],
  runbook:
    'Match the change to an access request; for break-glass groups confirm the emergency. A user who added themselves granted their own privileged access: confirm who approved it, else remove the membership.',
  falsePositives: ['Joiners and leavers processed by the identity team.'],
  params: z.strictObject({}),
  suppressFor: 0,
  on: {
    iam: ({ event, user, actor, group }) => {
      if (!group || (!group.breakGlass && !group.mappedAccounts.some((a) => a.privileged))) return [];
      const verb =
        event.kind === 'membership_added'
          ? 'added to'
          : event.kind === 'membership_removed'
            ? 'removed from'
            : event.kind === 'group_deleted'
              ? 'deleted:'
              : undefined;
      if (!verb) return [];
      // Granting oneself privileged access breaks segregation of duties.
      const selfGranted = event.kind === 'membership_added' && user !== undefined && actor?.id === user.id;
      const who =
        event.kind === 'group_deleted'
          ? 'Group'
          : (user?.name ?? event.user?.name ?? event.user?.id ?? 'a user');
      return [
        {
          subject: event.key,
          occurrence: event.kind,
          ts: event.ts,
          title: selfGranted
            ? `${who} added themselves to privileged group ${group.name}`
            : `${who} ${verb} privileged group ${group.name}`,
          ...(selfGranted ? { severity: 'high' as const } : {}),
          identity: user ? { principalId: user.id, name: user.name, attribution: null } : null,
          dbSystem: null,
          group: { id: group.id, name: group.name },
          ...(event.actor.id || event.actor.name
            ? { actor: { principalId: event.actor.id ?? null, name: event.actor.name ?? null } }
            : {}),
          ...(event.actor.ip ? { sourceIp: event.actor.ip } : {}),
          evidence: [event.key],
          details: {
            change: event.kind,
            actor: event.actor.name ?? event.actor.id ?? null,
            accounts: group.mappedAccounts.filter((a) => a.privileged).map((a) => `${a.account} on ${a.db}`),
            breakGlass: group.breakGlass,
            selfGranted,
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
      name: 'developer group change is silent',
      events: () => [iam.added({ at: at(1), user: USERS.alice, group: GROUPS.dev })],
      expect: { alerts: 0 },
    },
  ],
});
