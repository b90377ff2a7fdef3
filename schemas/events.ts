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
  /** Dedupe key: `dbSystemId:timestamp:id:connectionId`. */
  key: z.string(),
  ...eventTime,
  dbSystemId: z.string(),
  dbSystemName: z.string().optional(),
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

export type CanonicalEvent = DbEvent | IamEvent;

/**
 * Total order used everywhere events are merged or released: event time, then IAM before DB at
 * the same instant (a grant recorded in the same second as a connect counts for it), then a
 * stable tiebreak so equal inputs always give the same sequence.
 */
export function compareEvents(a: CanonicalEvent, b: CanonicalEvent): number {
  if (a.ts !== b.ts) return a.ts - b.ts;
  if (a.source !== b.source) return a.source === 'iam' ? -1 : 1;
  if (a.source === 'mysql' && b.source === 'mysql') {
    if (a.dbSystemId !== b.dbSystemId) return a.dbSystemId < b.dbSystemId ? -1 : 1;
    if (a.recordId !== b.recordId) return a.recordId - b.recordId;
  }
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}
