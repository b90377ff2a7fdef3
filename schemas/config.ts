// Pipeline configuration (README "Configuration" documents every key). Unknown keys are errors.
import { utc } from '@date-fns/utc';
import { milliseconds, parseISO } from 'date-fns';
import { z } from 'zod';

const ISO_DURATION =
  /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/**
 * A time a person gives (the configuration, an option, a function's action) in ISO 8601, as epoch
 * milliseconds; NaN when it is not ISO 8601. A date alone, or a date and time with no offset, is
 * UTC wherever this runs: a report's period or a maintenance window must not move with the time
 * zone of the machine (a function runs in UTC, a laptop seldom does).
 */
export function parseInstant(text: string): number {
  return parseISO(text.trim(), { in: utc }).getTime();
}

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

/** Milliseconds as an ISO 8601 duration, as a configuration writes it: `P14D`, `PT1H30M`, `PT30S`. */
export function formatDuration(ms: number): string {
  const day = 86_400_000;
  if (ms > 0 && ms % day === 0) return `P${ms / day}D`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  return `PT${h ? `${h}H` : ''}${m ? `${m}M` : ''}${s || (!h && !m) ? `${s}S` : ''}`;
}

/**
 * A schema's own message for a value that is there but wrong; a key that is not there is left to
 * the message of the parse (`missing`, shared/config/config-issues.ts).
 */
const whenGiven =
  (message: string | ((input: unknown) => string)) =>
  (issue: { input?: unknown }): string | undefined =>
    issue.input === undefined ? undefined : typeof message === 'string' ? message : message(issue.input);

const DURATION_EXPECTED = 'expected an ISO 8601 duration such as PT20M or P1D';

/** An ISO 8601 duration in the file, milliseconds once parsed (`20` is not one: 20 what?). */
export const Duration = z.string({ error: whenGiven(DURATION_EXPECTED) }).transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: DURATION_EXPECTED });
    return z.NEVER;
  }
  return ms;
});

const INSTANT_EXPECTED =
  'expected an ISO 8601 time such as 2026-11-01T00:00:00Z (UTC where it has no offset)';

/** An ISO 8601 instant in the file (UTC where it has no offset), epoch milliseconds once parsed. */
export const Instant = z
  .union([z.string(), z.date()], { error: whenGiven(INSTANT_EXPECTED) })
  .transform((value, ctx) => {
    const ms = value instanceof Date ? value.getTime() : parseInstant(value);
    if (Number.isNaN(ms)) {
      ctx.addIssue({ code: 'custom', message: INSTANT_EXPECTED });
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

export const DirectoryGroupSchema = z
  .strictObject({
    id: z.string().min(1),
    /** Default: the name `sync` discovered, else the id. */
    name: z.string().min(1).optional(),
    /** Other ids of the group: its identity domain's own id (the OCID stays `id`). */
    aliases: z.array(z.string()).default([]),
    /** Membership in this group is temporary emergency access. */
    breakGlass: z.strictObject({ maxDuration: Duration }).optional(),
  })
  .transform(({ name, ...g }) => ({ ...g, name: name ?? g.id }));

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
  /** The account's privileges as `SHOW GRANTS FOR` prints them (shown in the access review). */
  grants: z.array(z.string()).optional(),
});

/** One server instance whose audit log the collector reads: the primary, or a read replica. */
export const EndpointSchema = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(3306),
  role: z.enum(['primary', 'replica']).default('primary'),
  /** Names the instance in bookmarks, alerts and the ledger; default `host:port`. Keep it stable. */
  name: z
    .string()
    .regex(/^[\w.:@-]{1,100}$/, 'letters, digits and . : @ _ - only')
    .optional(),
});

const SECRET_FORMS = '{ env: NAME } or { secret: <Vault secret OCID> }';

/**
 * Where a secret comes from: an environment variable, or an OCI Vault secret (by OCID). Its
 * message never quotes what was written: a password typed in place of the reference.
 */
export const SecretRefSchema = z.union(
  [
    z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name') }),
    z.strictObject({
      secret: z.string().regex(/^ocid1\.vaultsecret\./, 'a Vault secret OCID (ocid1.vaultsecret...)'),
    }),
  ],
  {
    error: whenGiven((input) =>
      typeof input === 'object' && !Array.isArray(input)
        ? `expected one of ${SECRET_FORMS}`
        : `a secret is never written in the configuration: give ${SECRET_FORMS}`,
    ),
  },
);

export const TLS_MODES = ['required', 'verify-identity', 'disabled'] as const;

/** How the collector logs in to the DB systems and reads their audit logs (README "Collecting"). */
export const CollectorSchema = z.strictObject({
  user: z.string().min(1).optional(),
  /** `password` (default), or `iam`: log in as the process's OCI IAM principal through `authentication_oci`. */
  auth: z.enum(['password', 'iam']).optional(),
  /** Never written in the file itself: `{ env: NAME }` or `{ secret: <Vault secret OCID> }`. */
  password: SecretRefSchema.optional(),
  tls: z.enum(TLS_MODES).optional(),
  /** CA certificate file (PEM) for `tls: verify-identity`. */
  ca: z.string().min(1).optional(),
  /** `tls: disabled` is refused unless this is true: audit data and the password would cross the network in clear. */
  allowPlaintext: z.boolean().optional(),
  /**
   * Session `audit_log_read_buffer_size` in bytes: events larger than it are skipped by the server.
   * The server's range; it would cut a larger value to 4 MB without an error.
   */
  readBufferSize: z.number().int().min(32_768).max(4_194_304).optional(),
  /** Events per `audit_log_read()` call (`max_array_length`). */
  batchSize: z.number().int().min(1).max(100_000).optional(),
  /** Where the first read of an instance begins (no bookmark yet); default: the oldest event it keeps. */
  start: Instant.optional(),
  /** Connect timeout. */
  connectTimeout: Duration.optional(),
});
export type CollectorConfig = z.infer<typeof CollectorSchema>;

export const DbSystemSchema = z
  .strictObject({
    id: z.string().min(1),
    /** Default: the display name `sync` discovered, else the id. */
    name: z.string().min(1).optional(),
    /** Logins through non-IAM accounts are findings (`access.local-account`). */
    iamOnly: z.boolean().default(false),
    /** `user@host` patterns (`%` and `_` wildcards as in MySQL) exempt from `access.local-account`. */
    allowedLocalAccounts: z.array(z.string()).default([]),
    /** MySQL account names whose privilege changes and use are high severity. */
    privilegedAccounts: z.array(z.string()).default([]),
    /** Accounts as in `mysql.user`, including the `authentication_oci` mappings. */
    accounts: z.array(MysqlAccountSchema).default([]),
    /** Every instance whose audit log is read (`collect`, `doctor`). */
    endpoints: z.array(EndpointSchema).default([]),
    /** false: the collector leaves this DB system alone (collect, doctor, sync's account reading). */
    collect: z.boolean().default(true),
    /** Collector settings for this DB system; they override the top-level `collector`. */
    collector: CollectorSchema.optional(),
  })
  .transform(({ name, ...db }) => ({ ...db, name: name ?? db.id }));

export const ROUTE_FORMATS = ['jsonl', 'ocsf', 'cef', 'ecs'] as const;
/** A digest period or suppression window shorter than this is a configuration error. */
export const MIN_DIGEST_MS = 60_000;

/** Which alerts a route takes; every key given must hold (none: every alert). */
export const RouteMatchSchema = z.strictObject({
  /** Rule ids, or prefixes ending in `*` (`access.*`, `break-glass.*`). */
  rules: z.array(z.string().min(1)).min(1).optional(),
  minSeverity: z.enum(['info', 'low', 'medium', 'high', 'critical']).optional(),
  /** DB systems by OCID or configured name. */
  dbSystems: z.array(z.string().min(1)).min(1).optional(),
  /** IAM groups the alert names, by OCID or name. */
  groups: z.array(z.string().min(1)).min(1).optional(),
  /** People behind the alert, by OCID, name or a configured alias. */
  identities: z.array(z.string().min(1)).min(1).optional(),
});

const OCID = (type: string) =>
  z.string().regex(new RegExp(`^ocid1\\.${type}\\.`), `an OCID of the form ocid1.${type}....`);

export const OUTPUT_KINDS = ['notifications', 'stream', 'objectStorage', 'file'] as const;

/** Where a route delivers: one Notifications topic, stream, bucket, or (CLI) local file. */
export const RouteOutputSchema = z
  .strictObject({
    notifications: OCID('onstopic').optional(),
    stream: OCID('stream').optional(),
    objectStorage: z
      .strictObject({
        bucket: z.string().regex(/^[A-Za-z0-9._-]{1,256}$/, 'a bucket name'),
        /** Object Storage namespace; looked up when omitted. */
        namespace: z.string().min(1).optional(),
        /** Hourly objects <prefix><format>/<yyyy>/<mm>/<dd>/<hh>.jsonl.gz, as HWAUDIT_ALERT_BUCKET's. */
        prefix: z.string().max(512).default('alerts/'),
      })
      .optional(),
    file: z.string().min(1).optional(),
    /** Notifications: messages per minute (60; 10 for topics with e-mail subscriptions). */
    perMinute: z.number().int().min(2).max(60).optional(),
    /** Records (stream, objectStorage, file): jsonl, ocsf, cef or ecs (default jsonl). */
    format: z.enum(ROUTE_FORMATS).optional(),
  })
  .superRefine((o, ctx) => {
    const kinds = OUTPUT_KINDS.filter((k) => o[k] !== undefined);
    if (kinds.length !== 1)
      ctx.addIssue({
        code: 'custom',
        message: `one output: ${OUTPUT_KINDS.join(', ')}${kinds.length > 1 ? ` (not ${kinds.join(' and ')})` : ''}`,
      });
    if (o.perMinute !== undefined && o.notifications === undefined)
      ctx.addIssue({ code: 'custom', path: ['perMinute'], message: 'only for a notifications output' });
    if (o.format !== undefined && o.notifications !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['format'],
        message:
          'a Notifications topic gets messages for people; format is for stream, objectStorage and file',
      });
  });

/** A real-time subscription: which alerts, where to, how (README "Routes"). */
export const RouteSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lower-case letters, digits and -, at most 63'),
    match: RouteMatchSchema.default({}),
    output: RouteOutputSchema,
    /** `immediate`: one message per alert; `{ digest: PT15M }`: one digest per period (Notifications only). */
    delivery: z
      .union([z.literal('immediate'), z.strictObject({ digest: Duration })], {
        // A union's own message is "Invalid input", whatever the digest's problem.
        error: 'expected immediate, or { digest: an ISO 8601 duration such as PT15M or P1D }',
      })
      .default('immediate'),
    /** Repeats of one subject (rule, person, DB system) within this window are not delivered again. */
    suppress: Duration.optional(),
  })
  .superRefine((route, ctx) => {
    if (route.delivery === 'immediate') return;
    if (route.output.notifications === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['delivery'],
        message:
          'digests are for a notifications output; records go to streams, buckets and files as they come',
      });
    if (route.delivery.digest < MIN_DIGEST_MS)
      ctx.addIssue({
        code: 'custom',
        path: ['delivery', 'digest'],
        message: 'a digest period of at least PT1M',
      });
  });

/** Alerts of some DB systems or rules muted on the routes between two times (still stored and reported). */
export const MaintenanceSchema = z
  .strictObject({
    from: Instant,
    to: Instant,
    reason: z.string().min(1),
    /** DB systems by OCID or configured name. */
    dbSystems: z.array(z.string().min(1)).min(1).optional(),
    /** Rule ids, or prefixes ending in `*`. */
    rules: z.array(z.string().min(1)).min(1).optional(),
    /** The routes it mutes (default: every route of the configuration). */
    routes: z.array(z.string().min(1)).min(1).optional(),
  })
  .superRefine((m, ctx) => {
    if (m.to <= m.from) ctx.addIssue({ code: 'custom', path: ['to'], message: 'to must be after from' });
    if (m.dbSystems === undefined && m.rules === undefined)
      ctx.addIssue({ code: 'custom', message: 'name the dbSystems or the rules it mutes (or both)' });
  });

const RuleOverride = z.looseObject({
  enabled: z.boolean().optional(),
  severity: z.enum(['info', 'low', 'medium', 'high', 'critical']).optional(),
});

export const ConfigSchema = z
  .strictObject({
    tenancy: z.string().optional(),
    /** How late IAM events may arrive; processing waits for it. */
    lateness: Duration.default(20 * 60_000),
    /** IAM database token lifetime, used to link sign-ons to connections. */
    tokenLifetime: Duration.default(60 * 60_000),
    /** How far back a late IAM event re-evaluates sessions. */
    lookback: Duration.default(24 * 3_600_000),
    /** How long event ids are remembered for deduplication; older records are dead letters. */
    retention: Duration.default(30 * 24 * 3_600_000),
    /** How long sessions, alerts and deliveries stay in the state store for reports and exports. */
    auditRetention: Duration.default(400 * 24 * 3_600_000),
    /** How far past the current time an event may be dated; later ones are dead letters. */
    clockSkew: Duration.default(3_600_000),
    directory: z
      .strictObject({
        snapshotTime: Instant.optional(),
        users: z.array(DirectoryUserSchema).default([]),
        groups: z.array(DirectoryGroupSchema).default([]),
        memberships: z.array(MembershipSchema).default([]),
      })
      .default({ users: [], groups: [], memberships: [] }),
    dbSystems: z.array(DbSystemSchema).default([]),
    /** Collector settings shared by every DB system (each may override them). */
    collector: CollectorSchema.optional(),
    /** Per-rule overrides keyed by rule id; each rule validates its own parameters. */
    rules: z.record(z.string(), RuleOverride).default({}),
    /** Real-time subscriptions: which alerts go where, immediately or as digests. */
    routes: z.array(RouteSchema).default([]),
    /** Times when some alerts are not delivered on the routes. */
    maintenance: z.array(MaintenanceSchema).default([]),
  })
  .superRefine((config, ctx) => {
    if (config.auditRetention < config.lookback)
      ctx.addIssue({
        code: 'custom',
        path: ['auditRetention'],
        message: 'must be at least lookback: late IAM events re-attribute sessions that recent',
      });
    /** Flags each item whose key an earlier item has: `path` is where, `message` says what. */
    const once = <T>(
      items: readonly T[],
      key: (item: T, i: number) => string | undefined,
      path: (i: number) => PropertyKey[],
      message: (key: string, first: number) => string,
    ) => {
      const seen = new Map<string, number>();
      items.forEach((item, i) => {
        const k = key(item, i);
        if (k === undefined) return;
        const first = seen.get(k);
        if (first === undefined) seen.set(k, i);
        else ctx.addIssue({ code: 'custom', path: path(i), message: message(k, first) });
      });
    };
    once(
      config.routes,
      (r) => r.name,
      (i) => ['routes', i, 'name'],
      (name) => `route ${name} is listed twice`,
    );
    // Which entry would count is not said anywhere: a break-glass group or an iamOnly DB system
    // listed again without it would silently lose it.
    once(
      config.directory.users,
      (u) => u.id,
      (i) => ['directory', 'users', i, 'id'],
      (id, first) => `user ${id} is listed twice (also directory.users[${first}])`,
    );
    once(
      config.directory.groups,
      (g) => g.id,
      (i) => ['directory', 'groups', i, 'id'],
      (id, first) => `group ${id} is listed twice (also directory.groups[${first}])`,
    );
    once(
      config.dbSystems,
      (d) => d.id,
      (i) => ['dbSystems', i, 'id'],
      (id, first) => `DB system ${id} is listed twice (also dbSystems[${first}])`,
    );
    // A name picks a DB system: for a raw audit file, --db-system, routes and maintenance.
    once(
      config.dbSystems,
      // A DB system listed twice is flagged once, by its id.
      (d, i) => (config.dbSystems.findIndex((e) => e.id === d.id) === i ? d.name : undefined),
      (i) => ['dbSystems', i, 'name'],
      (name, first) => `${name} is also the name of dbSystems[${first}]`,
    );
    config.dbSystems.forEach((db, i) => {
      once(
        db.endpoints,
        (e) => e.name ?? `${e.host}:${e.port}`,
        (j) => ['dbSystems', i, 'endpoints', j],
        (name) => `instance ${name} is listed twice`,
      );
      if (db.endpoints.filter((e) => e.role === 'primary').length > 1)
        ctx.addIssue({
          code: 'custom',
          path: ['dbSystems', i, 'endpoints'],
          message: 'one endpoint is the primary (the others are role: replica)',
        });
      if (db.endpoints.length === 0 || !db.collect) return;
      const c = { ...config.collector, ...db.collector };
      const at = (key: string) =>
        db.collector?.[key as keyof CollectorConfig] !== undefined || !config.collector
          ? ['dbSystems', i, 'collector', key]
          : ['collector', key];
      if (c.user === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['dbSystems', i, 'collector', 'user'],
          message: 'the collector needs a user to read this DB system',
        });
      if (c.password === undefined && c.auth !== 'iam')
        ctx.addIssue({
          code: 'custom',
          path: ['dbSystems', i, 'collector', 'password'],
          message: `the collector needs a password: ${SECRET_FORMS}, or auth: iam`,
        });
      if (c.tls === 'disabled' && c.allowPlaintext !== true)
        ctx.addIssue({
          code: 'custom',
          path: at('tls'),
          message:
            'tls: disabled sends audit data and the password in clear; set allowPlaintext: true to accept that',
        });
      if (c.tls === 'verify-identity' && c.ca === undefined)
        ctx.addIssue({
          code: 'custom',
          path: at('ca'),
          message: 'tls: verify-identity needs the CA certificate file (ca)',
        });
    });
  });

export type Config = z.infer<typeof ConfigSchema>;
export type RouteConfig = z.infer<typeof RouteSchema>;
export type Maintenance = z.infer<typeof MaintenanceSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
export type DbSystemConfig = z.infer<typeof DbSystemSchema>;
export type Endpoint = z.infer<typeof EndpointSchema>;
