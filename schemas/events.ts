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
  /**
   * What a statement assigned to a user variable would do (`SET @q = 'GRANT ...'`), read before
   * the value was redacted; facts only, never the text (shared/correlate/sql-facts.ts).
   */
  held: z
    .object({
      privilege: z
        .object({ verb: z.string(), targets: z.array(AccountSchema), administrative: z.boolean().optional() })
        .optional(),
      auditTamper: z.object({ action: z.string() }).optional(),
    })
    .optional(),
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
  /**
   * Who logged in and the account whose privileges apply; null when the record has none, and for
   * routine statements (shared/correlate/sql-facts.ts isRoutineStatement), which their session
   * speaks for.
   */
  login: LoginSchema.nullable(),
  account: AccountSchema.nullable(),
  /** MySQL errno of the connect or statement; 0 on success. */
  status: z.number(),
  db: z.string().optional(),
  connectionType: z.string().optional(),
  attributes: z.record(z.string(), z.string()).optional(),
  /** The statement; not on table access events (the statement's `general` record has it). */
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
  'idp_mapping_created',
  'idp_mapping_updated',
  'idp_mapping_deleted',
  'dynamic_group_created',
  'dynamic_group_updated',
  'dynamic_group_deleted',
  'signon_success',
  'signon_failure',
  'credential_change',
  'dbsystem_change',
  'other',
] as const;

const Ref = z.object({ id: z.string().optional(), name: z.string().optional() });

/** The credential types IAM events name (`IamEvent.credential.type`). */
export const CREDENTIAL_TYPES = [
  'api-key',
  'auth-token',
  'customer-secret-key',
  'password',
  'smtp-credential',
  'db-credential',
  'oauth-client-credential',
  'swift-password',
  'mfa-totp-device',
] as const;
export type CredentialType = (typeof CREDENTIAL_TYPES)[number];

export const DB_SYSTEM_OPERATIONS = [
  'update',
  'stop',
  'restart',
  'delete',
  'delete-backup',
  'create-configuration',
  'update-configuration',
  'delete-configuration',
] as const;
export type DbSystemOperation = (typeof DB_SYSTEM_OPERATIONS)[number];

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
      /** Some statement (before or after the change) governs database IAM login: `mysql_dp_auth`, or the `mysqldbsystem` principal with a lookup permission (shared/normalize/auth-policy.ts). */
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
  /**
   * What a `credential_change` did: the credential's type (`api-key`, `auth-token`, `password`, ...)
   * and whether one was created (uploaded, reset: someone now holds a new secret), updated or deleted;
   * `id`: the credential, when the record names it (an API key's fingerprint, another's OCID).
   */
  credential: z
    .object({
      type: z.string(),
      change: z.enum(['created', 'updated', 'deleted']),
      id: z.string().optional(),
    })
    .optional(),
  /** An `idp_mapping_*`: the identity provider and its group mapped onto `group` (every member of it). */
  idpGroupMapping: z.object({ idpId: z.string().optional(), idpGroupName: z.string().optional() }).optional(),
  /** A `dynamic_group_*`: the dynamic group and its matching rule after (and before) the change, when the record says. */
  dynamicGroup: Ref.extend({
    matchingRule: z.string().optional(),
    previousMatchingRule: z.string().optional(),
  }).optional(),
  /**
   * What a `dbsystem_change` did through the MySQL HeatWave control plane (`com.oraclecloud.mysqlaas.*`):
   * the operation, the DB system it touched (a backup's, when the record names it), the resource
   * it named (a configuration, a backup), and for an update the configuration the DB system was
   * given (`to`) and had (`from`), when the record says.
   */
  dbSystemChange: z
    .object({
      operation: z.enum(DB_SYSTEM_OPERATIONS),
      dbSystem: Ref.optional(),
      resource: Ref.optional(),
      configuration: z.object({ from: z.string().optional(), to: z.string().optional() }).optional(),
    })
    .optional(),
  /** The identity domain of an identity-domain event (`additionalDetails.domainOcid` / `domainName`). */
  domain: Ref.optional(),
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
  'clock-step', // the server's clock went back by `lateness` or more: nothing is missing (from: the latest time before, to: the first after)
] as const;

/**
 * Part of an audit trail could not be read: what, where, and the time range not seen; or, for a
 * `clock-step`, where the log's times went back (its events after it come after it in the log).
 */
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
  /**
   * Whether the instance is the DB system's primary endpoint, whose events carry no instance: a gap
   * that ends sessions (`server-changed`) ends those of the DB system's own log, and a
   * replica's (`false`) leaves that log deduplicated by position. Absent: not said (older records).
   */
  primary: z.boolean().optional(),
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

/** Which two snapshots a change was observed between (source `sync`): observed, not audited. */
const ObservedSchema = z.object({
  /** The snapshot that shows the change (its time is the event time). */
  snapshot: z.string(),
  /** The snapshot before, which did not show it, and its time: the change happened in between. */
  previousSnapshot: z.string(),
  since: z.string(),
  /** When the directory says the change was made (a membership's creation time), if it says. */
  changedAt: z.string().optional(),
  /** What changed, for people (`privileges +SUPER -SELECT`, `account locked`). */
  change: z.string(),
});

const syncEvent = {
  source: z.literal('sync'),
  /** Dedupe key: `sync:<snapshot id>:<kind>:<subject>`. */
  key: z.string(),
  /** The later snapshot's time. */
  ...eventTime,
  observed: ObservedSchema,
};

/** A membership or user state that changed between two snapshots (the correlator checks it was not audited). */
export const SyncDirectoryEventSchema = z.object({
  ...syncEvent,
  kind: z.enum([
    'membership_added',
    'membership_removed',
    'user_deleted',
    'user_deactivated',
    'user_reactivated',
  ]),
  /** Always empty: nobody is known to have made the change. */
  actor: IamEventSchema.shape.actor,
  user: Ref,
  group: Ref.optional(),
  membershipId: z.string().optional(),
});

const AccountDefinitionSchema = z.object({
  plugin: z.string(),
  authenticationString: z.string().optional(),
  locked: z.boolean(),
  /** Global privileges, then database and table privileges as `PRIVILEGE ON scope` where sync read them. */
  privileges: z.array(z.string()),
});

/** A MySQL account created, changed (plugin, mapping, lock, privileges) or dropped between two snapshots. */
export const SyncAccountEventSchema = z.object({
  ...syncEvent,
  kind: z.enum(['account_created', 'account_changed', 'account_dropped']),
  dbSystemId: z.string(),
  /** The account that changed (not who changed it: nobody is known). */
  target: AccountSchema,
  before: AccountDefinitionSchema.optional(),
  after: AccountDefinitionSchema.optional(),
});

export type SyncDirectoryEvent = z.infer<typeof SyncDirectoryEventSchema>;
export type SyncAccountEvent = z.infer<typeof SyncAccountEventSchema>;
export type SyncEvent = SyncDirectoryEvent | SyncAccountEvent;
export type AccountDefinition = z.infer<typeof AccountDefinitionSchema>;

export type CanonicalEvent = DbEvent | IamEvent | GapEvent | SyncEvent;

const SOURCE_ORDER: Record<CanonicalEvent['source'], number> = { iam: 0, mysql: 1, gap: 2, sync: 3 };

/**
 * Total order used everywhere events are merged or released: event time, then IAM before DB, DB
 * before gaps, and what a snapshot observed last at the same instant (a grant recorded in the
 * same second as a connect counts for it; the audit trail up to a snapshot's time is applied
 * before its drift is judged), then a stable tiebreak so equal inputs always give the same sequence.
 */
export function compareEvents(a: CanonicalEvent, b: CanonicalEvent): number {
  if (a.ts !== b.ts) return a.ts - b.ts;
  if (a.source !== b.source) return SOURCE_ORDER[a.source] - SOURCE_ORDER[b.source];
  if (a.source === 'mysql' && b.source === 'mysql') {
    const db = compareDbSystems(a.dbSystemId, b.dbSystemId);
    if (db !== 0) return db;
    if (a.recordId !== b.recordId) return a.recordId - b.recordId;
  }
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** How `compareEvents` orders two MySQL events of the same time by their DB systems (0: the same). */
export function compareDbSystems(a: string, b: string): number {
  return a === b ? 0 : a < b ? -1 : 1;
}
