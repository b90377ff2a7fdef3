// Pipeline configuration (README "Configuration" documents every key). Unknown keys are errors.
import { milliseconds } from 'date-fns';
import { z } from 'zod';

const ISO_DURATION =
  /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/** Parses an ISO 8601 duration (`PT20M`, `P1D`, `PT1H30M`) into milliseconds; undefined if invalid. */
export function parseDuration(text: string): number | undefined {
  const m = ISO_DURATION.exec(text);
  if (!m || text === 'P' || text.endsWith('T')) return undefined;
  const n = (i: number) => (m[i] === undefined ? 0 : Number(m[i]));
  return milliseconds({
    years: n(1),
    months: n(2),
    weeks: n(3),
    days: n(4),
    hours: n(5),
    minutes: n(6),
    seconds: n(7),
  });
}

/** An ISO 8601 duration in the file, milliseconds once parsed. */
export const Duration = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: 'expected an ISO 8601 duration such as PT20M or P1D' });
    return z.NEVER;
  }
  return ms;
});

/** An ISO 8601 instant in the file, epoch milliseconds once parsed. */
export const Instant = z.union([z.string(), z.date()]).transform((value, ctx) => {
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  if (Number.isNaN(ms)) {
    ctx.addIssue({ code: 'custom', message: 'expected an ISO 8601 time such as 2026-11-01T00:00:00Z' });
    return z.NEVER;
  }
  return ms;
});

export const DirectoryUserSchema = z.strictObject({
  id: z.string().min(1),
  name: z.string().min(1),
  aliases: z.array(z.string()).default([]),
  state: z.enum(['active', 'inactive', 'deleted']).default('active'),
});

export const DirectoryGroupSchema = z.strictObject({
  id: z.string().min(1),
  name: z.string().min(1),
  /** Membership in this group is temporary emergency access. */
  breakGlass: z.strictObject({ maxDuration: Duration }).optional(),
});

export const MembershipSchema = z.strictObject({
  /** The membership OCID, so that a removal naming only it can be resolved. */
  id: z.string().optional(),
  user: z.string().min(1),
  group: z.string().min(1),
  /** When the membership began, if known (else it is known from `snapshotTime`). */
  since: Instant.optional(),
});

export const MysqlAccountSchema = z.strictObject({
  user: z.string(),
  host: z.string().default('%'),
  plugin: z.string().default('caching_sha2_password'),
  authenticationString: z.string().optional(),
});

export const DbSystemSchema = z.strictObject({
  id: z.string().min(1),
  name: z.string().min(1),
  /** Logins through non-IAM accounts are findings (`access.local-account`). */
  iamOnly: z.boolean().default(false),
  /** `user@host` patterns (`%` and `_` wildcards as in MySQL) exempt from `access.local-account`. */
  allowedLocalAccounts: z.array(z.string()).default([]),
  /** MySQL account names whose privilege changes and use are high severity. */
  privilegedAccounts: z.array(z.string()).default([]),
  /** Accounts as in `mysql.user`, including the `authentication_oci` mappings. */
  accounts: z.array(MysqlAccountSchema).default([]),
});

const RuleOverride = z.looseObject({
  enabled: z.boolean().optional(),
  severity: z.enum(['info', 'low', 'medium', 'high', 'critical']).optional(),
});

export const ConfigSchema = z.strictObject({
  tenancy: z.string().optional(),
  /** How late IAM events may arrive; processing waits for it. */
  lateness: Duration.default(20 * 60_000),
  /** IAM database token lifetime, used to link sign-ons to connections. */
  tokenLifetime: Duration.default(60 * 60_000),
  /** How far back a late IAM event re-evaluates sessions. */
  lookback: Duration.default(24 * 3_600_000),
  /** How long event ids are remembered for deduplication; older records are dead letters. */
  retention: Duration.default(30 * 24 * 3_600_000),
  directory: z
    .strictObject({
      snapshotTime: Instant.optional(),
      users: z.array(DirectoryUserSchema).default([]),
      groups: z.array(DirectoryGroupSchema).default([]),
      memberships: z.array(MembershipSchema).default([]),
    })
    .default({ users: [], groups: [], memberships: [] }),
  dbSystems: z.array(DbSystemSchema).default([]),
  /** Per-rule overrides keyed by rule id; each rule validates its own parameters. */
  rules: z.record(z.string(), RuleOverride).default({}),
});

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
export type DbSystemConfig = z.infer<typeof DbSystemSchema>;
export type DirectoryUser = z.infer<typeof DirectoryUserSchema>;
export type DirectoryGroup = z.infer<typeof DirectoryGroupSchema>;
export type MysqlAccount = z.infer<typeof MysqlAccountSchema>;
