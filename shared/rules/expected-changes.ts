// Expected-change windows (`rules.<id>.expected` in the config): a planned change inside one is
// still raised, and resolved at once as acknowledged, so that the trail keeps it and nobody is paged.
// Credential management has standing entries too (`rules.iam.credential-change.expected`).
import { z } from 'zod';
import { type Config, Instant } from '../../schemas/config.js';
import { CREDENTIAL_TYPES, type CredentialType } from '../../schemas/events.js';
import type { Resolution, Reverts } from '../detect/rule.js';

const window = {
  from: Instant,
  to: Instant,
  /** Shown in the resolution: the change ticket, the planned work. */
  reason: z.string().min(1),
};

const ordered = <T extends { from: number; to: number }>(w: T) => w.to > w.from;
const AFTER = 'to must be after from';
const ORDER = { message: AFTER, path: ['to'] };

/** mapping.change: a window, optionally for some DB systems (id or name). */
export const ExpectedMappingChanges = z
  .array(
    z.strictObject({ ...window, dbSystems: z.array(z.string().min(1)).optional() }).refine(ordered, ORDER),
  )
  .default([]);

/** iam.auth-policy-change: a window, optionally for some policies (OCID or name). */
export const ExpectedPolicyChanges = z
  .array(
    z.strictObject({ ...window, policies: z.array(z.string().min(1)).optional() }).refine(ordered, ORDER),
  )
  .default([]);

type Window = { from: number; to: number; reason: string };

/** A change that an entry of `rules.<rule>.expected` acknowledges: the entry's index and reason. */
export type Acknowledged = { entry: number; reason: string };

/** Whether a window holds `ts`: from its start up to, not including, its end (either may be open). */
const holds = (w: { from?: number | undefined; to?: number | undefined }, ts: number) =>
  (w.from === undefined || ts >= w.from) && (w.to === undefined || ts < w.to);

/**
 * The acknowledgement of a change at `ts` by the first window that holds it and whose list (when
 * it has one) names one of `names`; none otherwise.
 */
export function acknowledgement(
  rule: string,
  windows: readonly (Window & { scope?: readonly string[] | undefined })[],
  change: { subject: string; occurrence: string; ts: number; names: readonly (string | undefined)[] },
): Resolution[] {
  const i = windows.findIndex(
    (w) =>
      holds(w, change.ts) &&
      (w.scope === undefined || change.names.some((n) => n !== undefined && w.scope!.includes(n))),
  );
  return i < 0 ? [] : acknowledged(rule, { entry: i, reason: windows[i]!.reason }, change);
}

/** The resolution, at once, of the alert of a change an entry of `rules.<rule>.expected` acknowledges. */
export function acknowledged(
  rule: string,
  by: Acknowledged,
  change: { subject: string; occurrence: string; ts: number },
): Resolution[] {
  return [
    {
      resolves: { subject: change.subject, occurrence: change.occurrence },
      ts: change.ts,
      reason: 'acknowledged',
      note: `expected change: ${by.reason}`,
      evidence: [`config:rules.${rule}.expected.${by.entry}`],
    },
  ];
}

/** The rule whose parameters hold the expected credential creations. */
export const CREDENTIAL_RULE = 'iam.credential-change';

const Names = z.array(z.string().min(1)).min(1);

/**
 * iam.credential-change: credentials the organisation creates on its users itself (service users'
 * API keys from its provisioning, their rotations). Standing unless `from`/`to` limit it; each
 * list it has must name the creation (actors, users: OCID, name or alias; credential types).
 */
export const ExpectedCredentials = z
  .array(
    z
      .strictObject({
        /** Who creates them: an administrator, the provisioning's principal. */
        actors: Names.optional(),
        /** On whom: the service users. */
        users: Names.optional(),
        credentials: z.array(z.enum(CREDENTIAL_TYPES)).min(1).optional(),
        from: Instant.optional(),
        to: Instant.optional(),
        reason: window.reason,
      })
      .superRefine((e, ctx) => {
        if (e.actors === undefined && e.users === undefined)
          ctx.addIssue({ code: 'custom', message: 'name the actors or the users it acknowledges (or both)' });
        if (e.from !== undefined && e.to !== undefined && !ordered({ from: e.from, to: e.to }))
          ctx.addIssue({ code: 'custom', path: ['to'], message: AFTER });
      }),
  )
  .default([]);

export type ExpectedCredential = z.output<typeof ExpectedCredentials>[number];

/**
 * The configuration's expected credential creations. Loading the configuration validated them
 * already, with the rule's other parameters (exit 2 naming the key); they are read here for the
 * correlator, which holds them whether or not the rule is enabled.
 */
export function expectedCredentialsOf(config: Config): ExpectedCredential[] {
  return ExpectedCredentials.parse(config.rules[CREDENTIAL_RULE]?.expected);
}

/** A credential one principal created on another's user: when, its type, and their ids, names and aliases. */
export type CredentialCreation = {
  ts: number;
  type: string;
  actor: readonly (string | undefined)[];
  user: readonly (string | undefined)[];
};

/** The first entry that acknowledges a credential creation (names compare case-insensitively); none otherwise. */
export function expectedCredential(
  entries: readonly ExpectedCredential[],
  c: CredentialCreation,
): Acknowledged | undefined {
  const names = (list: readonly (string | undefined)[]) =>
    new Set(list.flatMap((n) => (n === undefined ? [] : [n.toLowerCase()])));
  const actor = names(c.actor);
  const user = names(c.user);
  const named = (scope: readonly string[] | undefined, known: Set<string>) =>
    scope === undefined || scope.some((n) => known.has(n.toLowerCase()));
  const i = entries.findIndex(
    (e) =>
      holds(e, c.ts) &&
      named(e.actors, actor) &&
      named(e.users, user) &&
      (e.credentials === undefined || e.credentials.includes(c.type as CredentialType)),
  );
  return i < 0 ? undefined : { entry: i, reason: entries[i]!.reason };
}

/**
 * Resolutions of the alerts of the changes a later change (event `by` at `ts`) undid; an alert's
 * subject is its change's event key, its occurrence `occurrence(kind)`.
 */
export function reverted(
  reverts: Reverts,
  occurrence: (kind: string) => string,
  by: { key: string; ts: number; note: string },
): Resolution[] {
  return reverts.undone.map((u) => ({
    resolves: { subject: u.key, occurrence: occurrence(u.kind) },
    ts: by.ts,
    reason: 'reverted',
    note: by.note,
    evidence: [by.key],
  }));
}
