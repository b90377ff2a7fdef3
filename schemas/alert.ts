// The alert contract. schemas/alert.schema.json is the same contract as JSON Schema, for
// consumers outside TypeScript (`npm run schemas` writes it; a test keeps it in step).
import { z } from 'zod';
import { AttributionSchema, ClientSchema, RefSchema } from './session.js';

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export const SeveritySchema = z.enum(SEVERITIES);
export type Severity = z.infer<typeof SeveritySchema>;

export const ALERT_STATUSES = ['open', 'resolved'] as const;

/** Why a finding is over (README "Alert lifecycle"). */
export const RESOLUTION_REASONS = [
  'membership-removed', // break-glass.stale: the membership was removed
  'attributed', // access.unattributed: a late IAM event named the person
  'acknowledged', // mapping / policy change inside an expected-change window of the config
  'reverted', // mapping / policy change undone by a later change
] as const;
export type ResolutionReason = (typeof RESOLUTION_REASONS)[number];

/** Routes that did not deliver an alert they match, and why (README "Routes"). */
export const MUTE_CAUSES = ['maintenance', 'suppressed'] as const;

export const AlertSchema = z.object({
  /** Deterministic: same rule + same subject + same occurrence = same id. */
  id: z.string(),
  rule: z.string(),
  severity: SeveritySchema,
  /** Event time of the first occurrence, ISO 8601 UTC. */
  time: z.string(),
  title: z.string(),
  /** The person, with how they were attributed; null when no person is known. */
  identity: z
    .object({
      principalId: z.string().nullable(),
      name: z.string().nullable(),
      attribution: AttributionSchema.nullable(),
    })
    .nullable(),
  dbSystem: RefSchema.nullable(),
  /** Dedupe keys of the events behind the alert. */
  evidence: z.array(z.string()),
  /** `user@host` whose privileges applied. */
  mysqlAccount: z.string().optional(),
  /** The user name the client sent. */
  loginUser: z.string().optional(),
  group: RefSchema.optional(),
  /**
   * Who made the change, for an alert about someone else (a user an administrator added to a
   * group): `identity` is the person the alert is about, `sourceIp` the actor's address.
   */
  actor: z.object({ principalId: z.string().nullable(), name: z.string().nullable() }).optional(),
  sourceIp: z.string().optional(),
  /** The client program of the session the alert is about (`Session.client`). */
  client: ClientSchema.optional(),
  /** MITRE ATT&CK technique ids. */
  attack: z.array(z.string()).optional(),
  /** Rule-specific facts (documented per rule); `occurrences` counts merged repeats. */
  details: z.record(z.string(), z.unknown()).optional(),
  /**
   * `open` for the alert; `resolved` for the record, with the same id and fields, that says the
   * finding is over (`resolution` tells when, why and on what evidence).
   */
  status: z.enum(ALERT_STATUSES),
  resolution: z
    .object({
      /** Event time of the evidence that ended the finding, ISO 8601 UTC. */
      time: z.string(),
      reason: z.enum(RESOLUTION_REASONS),
      /** For people: what ended it. */
      note: z.string(),
      /** Dedupe keys of the events (or config keys) behind the resolution. */
      evidence: z.array(z.string()),
    })
    .optional(),
  /** Routes whose filter matched but that did not deliver the alert: a maintenance window, or a repeat. */
  muted: z.array(z.object({ route: z.string(), cause: z.enum(MUTE_CAUSES), reason: z.string() })).optional(),
});
export type Alert = z.infer<typeof AlertSchema>;
export type Resolution = NonNullable<Alert['resolution']>;
export type Mute = NonNullable<Alert['muted']>[number];

/** How many times the alert occurred: it and the repeats merged into it (`details.occurrences`). */
export function alertOccurrences(a: Pick<Alert, 'details'>): number {
  return typeof a.details?.occurrences === 'number' ? a.details.occurrences : 1;
}

/**
 * The store and delivery key of a record: the alert id, or the id with `:resolved` for its
 * resolution, so that both are kept and delivered once each.
 */
export function recordKey(record: Pick<Alert, 'id' | 'status'>): string {
  return record.status === 'resolved' ? `${record.id}${RESOLVED_SUFFIX}` : record.id;
}

export const RESOLVED_SUFFIX = ':resolved';

/** Event time of a record: the alert's, or the resolution's. */
export function recordTime(record: Alert): string {
  return record.resolution?.time ?? record.time;
}

/** The alert contract as JSON Schema (draft 2020-12) text, as committed in schemas/alert.schema.json. */
export function alertJsonSchemaText(): string {
  return `${JSON.stringify(z.toJSONSchema(AlertSchema), null, 2)}\n`;
}
