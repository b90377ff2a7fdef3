// A fleet snapshot: what `sync` discovered (IAM directory, DB systems, their MySQL accounts) at one
// time, stored in the state store. The pipeline uses the latest one as its baseline; two in a row
// give the drift between them (shared/sync/drift.ts).
import { z } from 'zod';
import { EndpointSchema } from './config.js';

export const SNAPSHOT_VERSION = 1;

/** A source of the snapshot: the classic IAM directory, one identity domain, the DB system list, one DB system's accounts. */
export const PartSchema = z.object({
  status: z.enum(['ok', 'failed']),
  /** When its data was read: the snapshot's time, or an earlier one's when a failure carried that data over. */
  readAt: z.string(),
  /** Why it failed (log-safe: operation, status, codes). */
  error: z.string().optional(),
  /** What it could not read although it succeeded, and the fix. */
  warning: z.string().optional(),
});
export type SnapshotPart = z.infer<typeof PartSchema>;

export const USER_STATES = ['active', 'inactive', 'deleted'] as const;

export const SnapshotUserSchema = z.object({
  /** The OCID (what authentication_oci mappings and classic events name). */
  id: z.string().min(1),
  name: z.string().min(1),
  /** The identity domain's own id, user name, e-mail addresses, display name. */
  aliases: z.array(z.string()),
  state: z.enum(USER_STATES),
  /** The part that listed it. */
  part: z.string(),
});

export const SnapshotGroupSchema = z.object({
  /** The OCID (what `group_mapping` keys are). */
  id: z.string().min(1),
  name: z.string().min(1),
  /** The identity domain's own id. */
  aliases: z.array(z.string()),
  /** The identity domain's OCID, for groups of a domain: names are unique only within one. */
  domain: z.string().optional(),
  part: z.string(),
});

export const SnapshotMembershipSchema = z.object({
  user: z.string().min(1),
  group: z.string().min(1),
  /** The membership OCID (classic IAM). */
  id: z.string().optional(),
  /** When it began, as the directory says (classic `timeCreated`, SCIM `dateAdded`). */
  since: z.string().optional(),
  part: z.string(),
});

export const SnapshotAccountSchema = z.object({
  user: z.string(),
  host: z.string(),
  plugin: z.string(),
  authenticationString: z.string().optional(),
  locked: z.boolean(),
  /**
   * Global privileges (upper case, `GRANT OPTION` included), direct or through granted roles; then,
   * where `grants` is known, database and table ones as `PRIVILEGE ON scope` (``SELECT ON `orders`.*``).
   */
  privileges: z.array(z.string()),
  /**
   * Every privilege it holds, its own and its roles', as `SHOW GRANTS` writes them (global,
   * dynamic, per database and table; then its roles); absent when a grant table could not be read.
   */
  grants: z.array(z.string()).optional(),
});
export type SnapshotAccount = z.infer<typeof SnapshotAccountSchema>;

export const SnapshotDbSystemSchema = z.object({
  id: z.string().min(1),
  name: z.string().min(1),
  compartmentId: z.string().optional(),
  version: z.string().optional(),
  highlyAvailable: z.boolean().optional(),
  /** OCI lifecycle state (`ACTIVE`, `INACTIVE`, ...); absent for a DB system only the config lists. */
  state: z.string().optional(),
  /** The primary and each read replica. */
  endpoints: z.array(EndpointSchema),
  /** `mysql.user` with privileges; absent when never read (no collector settings, never reachable). */
  accounts: z.array(SnapshotAccountSchema).optional(),
  /** Users holding a privileged global privilege (derived from `accounts`). */
  privilegedAccounts: z.array(z.string()).optional(),
});
export type SnapshotDbSystem = z.infer<typeof SnapshotDbSystemSchema>;

export const SnapshotSchema = z.object({
  version: z.literal(SNAPSHOT_VERSION),
  id: z.string().min(1),
  /** When the discovery started (ISO 8601): the snapshot describes the fleet as of then. */
  time: z.string(),
  tenancy: z.string().optional(),
  parts: z.record(z.string(), PartSchema),
  directory: z.object({
    users: z.array(SnapshotUserSchema),
    groups: z.array(SnapshotGroupSchema),
    memberships: z.array(SnapshotMembershipSchema),
  }),
  dbSystems: z.array(SnapshotDbSystemSchema),
  /** What the discovery cost: OCI API requests by operation, SQL statements. */
  requests: z.object({ oci: z.record(z.string(), z.number()), sql: z.number() }),
});
export type Snapshot = z.infer<typeof SnapshotSchema>;
export type SnapshotUser = z.infer<typeof SnapshotUserSchema>;
export type SnapshotGroup = z.infer<typeof SnapshotGroupSchema>;
export type SnapshotMembership = z.infer<typeof SnapshotMembershipSchema>;

/** Part names. */
export const PART = {
  iam: 'iam',
  /** The list of identity domains (each domain is a part of its own). */
  domains: 'domains',
  dbSystems: 'dbSystems',
  domain: (ocid: string) => `domain:${ocid}`,
  accounts: (dbSystemId: string) => `accounts:${dbSystemId}`,
} as const;
