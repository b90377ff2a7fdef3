// Expected-change windows (`rules.<id>.expected` in the config): a planned change inside one is
// still raised, and resolved at once as acknowledged, so that the trail keeps it and nobody is paged.
import { z } from 'zod';
import { Instant } from '../../schemas/config.js';
import type { Resolution, Reverts } from '../detect/rule.js';

const window = {
  from: Instant,
  to: Instant,
  /** Shown in the resolution: the change ticket, the planned work. */
  reason: z.string().min(1),
};

const ordered = <T extends { from: number; to: number }>(w: T) => w.to > w.from;
const ORDER = { message: 'to must be after from', path: ['to'] };

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
      change.ts >= w.from &&
      change.ts < w.to &&
      (w.scope === undefined || change.names.some((n) => n !== undefined && w.scope!.includes(n))),
  );
  if (i < 0) return [];
  return [
    {
      resolves: { subject: change.subject, occurrence: change.occurrence },
      ts: change.ts,
      reason: 'acknowledged',
      note: `expected change: ${windows[i]!.reason}`,
      evidence: [`config:rules.${rule}.expected.${i}`],
    },
  ];
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
