// Canonical events: what every vendor record is normalized into. Rules and the correlator read
// these only, never raw vendor fields.
import { z } from 'zod';

/** Event time as epoch milliseconds (UTC) plus its ISO 8601 rendering, both set by normalization. */
const eventTime = {
  /** Event time, ISO 8601 UTC with milliseconds (`2026-11-01T10:00:00.000Z`). */
  time: z.string(),
  /** The same instant as epoch milliseconds: the sort key. */
  ts: z.number(),
};

export const DB_EVENT_KINDS = [
  'connect',
  'change_user',
  'disconnect',
  'query',
  'table_access',
  'server_start',
  'server_stop',
  'other',
] as const;

export const LoginSchema = z.object({
  /** Name the client sent (free text, not proof of identity). */
  user: z.string(),
  /** External user set by the authentication plugin. */
  os: z.string(),
  ip: z.string(),
  /** Proxy account (`''@'%'` style) when the login was proxied, else empty. */
  proxy: z.string(),
});

export const AccountSchema = z.object({ user: z.string(), host: z.string() });

export const SqlSchema = z.object({
  command: z.string().optional(),
  sqlCommand: z.string().optional(),
  /** Statement text with secrets redacted; absent when the record carried none. */
  text: z.string().optional(),
  status: z.number().optional(),
});

export const DbEventSchema = z.object({
  source: z.literal('mysql'),
  kind: z.enum(DB_EVENT_KINDS),
  /** Dedupe key: `dbSystemId[/instance]:timestamp:id:connectionId`. */
  key: z.string(),
  ...eventTime,
  dbSystemId: z.string(),
  dbSystemName: z.string().optional(),
  /** The instance whose audit log it came from (primary, read replica), when the collector read it. */
  instance: z.string().optional(),
  /** The audit record `id`: orders records that share a timestamp. */
  recordId: z.number(),
  connectionId: z.number().nullable(),
  /** Raw `class` / `event`, for `other` and for output formats. */
  class: z.string(),
  event: z.string(),
  login: LoginSchema.nullable(),
  account: AccountSchema.nullable(),
  /** MySQL errno of the connect or statement; 0 on success. */
  status: z.number(),
  db: z.string().optional(),
  connectionType: z.string().optional(),
  attributes: z.record(z.string(), z.string()).optional(),
  sql: SqlSchema.optional(),
  table: z.object({ db: z.string(), table: z.string(), op: z.string() }).optional(),
  stats: z
    .object({
      queryTime: z.number().optional(),
      rowsSent: z.number().optional(),
      rowsExamined: z.number().optional(),
      bytesReceived: z.number().optional(),
      bytesSent: z.number().optional(),
    })
    .optional(),
  /** From `startup_data` / `shutdown_data`. */
  server: z.object({ serverId: z.number().optional(), version: z.string().optional() }).optional(),
});
export type DbEvent = z.infer<typeof DbEventSchema>;
export type DbEventKind = DbEvent['kind'];

export const IAM_EVENT_KINDS = [
  'membership_added',
  'membership_removed',
  'user_created',
  'user_deleted',
  'user_deactivated',
  'user_reactivated',
  'user_updated',
  'group_created',
  'group_deleted',
  'group_updated',
  'policy_created',
  'policy_updated',
  'policy_deleted',
  'signon_success',
  'signon_failure',
  'credential_change',
  'other',
] as const;

const Ref = z.object({ id: z.string().optional(), name: z.string().optional() });

export const IamEventSchema = z.object({
  source: z.literal('iam'),
  kind: z.enum(IAM_EVENT_KINDS),
  /** Dedupe key: the OCI event id. */
  key: z.string(),
  ...eventTime,
  /** When OCI ingested it (Logging `oracle.ingestedtime`), if known. */
  ingestedTime: z.string().optional(),
  /** OCI event type, or the identity-domain `additionalDetails.eventId`. */
  eventType: z.string(),
  eventName: z.string().optional(),
  /** `classic` IAM or an `identity-domain` event. */
  flavor: z.enum(['classic', 'identity-domain']),
  tenantId: z.string().optional(),
  compartmentId: z.string().optional(),
  actor: Ref.extend({ ip: z.string().optional(), type: z.string().optional() }),
  /** The user the event is about (member, created/deleted user, who signed on). */
  user: Ref.optional(),
  group: Ref.optional(),
  membershipId: z.string().optional(),
  policy: z
    .object({
      id: z.string().optional(),
      name: z.string().optional(),
      statements: z.array(z.string()),
      /** Some statement (before or after the change) grants `mysql_dp_auth` or the `mysqldbsystem` principal. */
      mysqlAuth: z.boolean(),
    })
    .optional(),
  signOn: z
    .object({
      success: z.boolean(),
      ip: z.string().optional(),
      mfaFactor: z.string().optional(),
      sessionId: z.string().optional(),
    })
    .optional(),
  /** Response status as OCI reports it (a string), when present. */
  status: z.string().optional(),
  /** For each extracted value (`user.id`, `group.id`, ...) the source field it came from. */
  extraction: z.record(z.string(), z.string()),
});
export type IamEvent = z.infer<typeof IamEventSchema>;
export type IamEventKind = IamEvent['kind'];

export const GAP_REASONS = [
  'pruned', // the log no longer holds events after the last one read (rotated and pruned first)
  'oversized', // the server skipped events larger than the read buffer
  'log-reset', // the instance's log went back in time (restored, replaced)
  'server-changed', // another server answers at the instance's address (failover, replacement)
  'delivery-outage', // a delivery outage lasted longer than the source keeps data
] as const;

/** Part of an audit trail could not be read: what, where, and the time range not seen. */
export const GapEventSchema = z.object({
  source: z.literal('gap'),
  kind: z.literal('audit_gap'),
  /** Dedupe key: trail, DB system, instance, reason and range. */
  key: z.string(),
  ...eventTime,
  /** Which trail has the gap. */
  trail: z.enum(['mysql-audit', 'oci-audit']),
  dbSystemId: z.string().optional(),
  dbSystemName: z.string().optional(),
  instance: z.string().optional(),
  reason: z.enum(GAP_REASONS),
  /** Start of the range not seen (ISO 8601): the last event read before it. */
  from: z.string(),
  /** End of the range, when known: the first event read after it. */
  to: z.string().optional(),
  /** Events known to be missing (e.g. skipped for size), when counted. */
  skipped: z.number().optional(),
  /** Log-safe explanation (server warning codes, what to do). */
  detail: z.string().optional(),
});
export type GapEvent = z.infer<typeof GapEventSchema>;

export type CanonicalEvent = DbEvent | IamEvent | GapEvent;

const SOURCE_ORDER: Record<CanonicalEvent['source'], number> = { iam: 0, mysql: 1, gap: 2 };

/**
 * Total order used everywhere events are merged or released: event time, then IAM before DB (and
 * DB before gaps) at the same instant (a grant recorded in the same second as a connect counts for it), then a
 * stable tiebreak so equal inputs always give the same sequence.
 */
export function compareEvents(a: CanonicalEvent, b: CanonicalEvent): number {
  if (a.ts !== b.ts) return a.ts - b.ts;
  if (a.source !== b.source) return SOURCE_ORDER[a.source] - SOURCE_ORDER[b.source];
  if (a.source === 'mysql' && b.source === 'mysql') {
    if (a.dbSystemId !== b.dbSystemId) return a.dbSystemId < b.dbSystemId ? -1 : 1;
    if (a.recordId !== b.recordId) return a.recordId - b.recordId;
  }
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}
