// How the collector (and `doctor`) reach the DB systems they read: one target per configured
// instance, its collector settings (the DB system's over the top-level ones), the password from
// the environment or an OCI Vault secret or else the process's OCI IAM principal
// (`authentication_oci`, iam-login.ts), and a mysql2 session with the TLS mode asked for.
//
// The password is read when a session opens, kept only in the driver's connection options and a
// process-wide cache of Vault secrets, and never put into a message: errors name the DB system,
// the instance, the user and the password's source (the variable or the secret OCID), not the value.
import { readFileSync } from 'node:fs';
import type { Connection, ConnectionOptions } from 'mysql2/promise';
import type { CollectorConfig, Config, DbSystemConfig, Endpoint } from '../../schemas/config.js';
import { ConfigIssues } from '../config/config-issues.js';
import { AuditError, errnoSuffix } from '../errors.js';
import type { StateStore } from '../state/state-store.js';
import { applySnapshot } from '../sync/baseline.js';
import {
  describePrincipal,
  type IamLogin,
  type IamPrincipal,
  OCI_CLIENT_PLUGIN,
  ociClientAuthPlugin,
} from './iam-login.js';

export const DEFAULT_READ_BUFFER_SIZE = 4 * 1024 * 1024;
export const DEFAULT_READ_BATCH = 1000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export type SecretRef = NonNullable<CollectorConfig['password']>;

/** Collector settings of one DB system, defaults filled in. */
export type CollectorSettings = {
  user: string;
  /** `password`: with `password`; `iam`: as the process's OCI IAM principal, no password. */
  auth: 'password' | 'iam';
  password?: SecretRef;
  tls: 'required' | 'verify-identity' | 'disabled';
  ca?: string;
  readBufferSize: number;
  batchSize: number;
  start?: number;
  connectTimeoutMs: number;
  /** A step back of the log's times this large is reported (the pipeline's `lateness`). */
  lateness: number;
};

/** One instance whose audit log is read. */
export type InstanceTarget = {
  db: { id: string; name: string };
  /** The instance's stable name (`endpoints[].name`, default `host:port`): its position's key. */
  instance: string;
  /**
   * The instance events carry: a read replica's name. The primary endpoint's events are the DB
   * system's own (as in its audit files), whichever server answers there after a failover.
   */
  eventInstance?: string;
  endpoint: Endpoint;
  settings: CollectorSettings;
};

/**
 * Refuses (CONFIG_INVALID, exit 2, naming each key) a collector password read from an environment
 * variable that is not set: every instance using it would fail alike, which is no partial read.
 */
export function checkPasswordVariables(
  config: Config,
  targets: readonly InstanceTarget[],
  env: Readonly<Record<string, string | undefined>>,
  source?: string,
): void {
  const issues = new ConfigIssues(source);
  const reported = new Set<string>();
  for (const t of targets) {
    const ref = t.settings.password;
    if (ref === undefined || !('env' in ref) || (env[ref.env] ?? '') !== '') continue;
    const i = config.dbSystems.findIndex((d) => d.id === t.db.id);
    const path = config.dbSystems[i]?.collector?.password
      ? ['dbSystems', i, 'collector', 'password']
      : ['collector', 'password'];
    const key = path.join('.');
    if (reported.has(key)) continue;
    reported.add(key);
    issues.add(
      path,
      `the variable ${ref.env} is not set (export it, or read the password from OCI Vault: { secret: <OCID> })`,
    );
  }
  issues.throwIfAny();
}

export function instanceName(endpoint: Endpoint): string {
  return endpoint.name ?? `${endpoint.host}:${endpoint.port}`;
}

/** The DB system's collector settings over the top-level ones (the config schema checked them). */
export function collectorSettings(config: Config, db: DbSystemConfig): CollectorSettings {
  const c = { ...config.collector, ...db.collector };
  const auth = c.auth ?? 'password';
  if (c.user === undefined || (auth === 'password' && c.password === undefined)) {
    throw new AuditError('CONFIG_INVALID', 'the collector needs a user and a password source', {
      details: { dbSystem: db.name },
    });
  }
  const settings: CollectorSettings = {
    user: c.user,
    auth,
    tls: c.tls ?? 'required',
    readBufferSize: c.readBufferSize ?? DEFAULT_READ_BUFFER_SIZE,
    batchSize: c.batchSize ?? DEFAULT_READ_BATCH,
    connectTimeoutMs: c.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS,
    lateness: config.lateness,
  };
  if (auth === 'password') settings.password = c.password!;
  if (c.ca !== undefined) settings.ca = c.ca;
  if (c.start !== undefined) settings.start = c.start;
  return settings;
}

/**
 * The instances to read: every endpoint of the DB systems named in `only` (ids or names), or of
 * every configured DB system, except those set `collect: false`. A name that matches no DB system
 * is a usage error; a DB system without endpoints, or set `collect: false`, when named, too.
 */
export function instanceTargets(config: Config, only: readonly string[] = []): InstanceTarget[] {
  for (const wanted of only) {
    const db = config.dbSystems.find((d) => d.id === wanted || d.name === wanted);
    if (db === undefined)
      throw new AuditError('USAGE', `--db-system ${wanted}: no configured DB system has this id or name`);
    if (!db.collect)
      throw new AuditError('USAGE', `--db-system ${wanted}: the configuration sets collect: false for it`);
    if (db.endpoints.length === 0)
      throw new AuditError('USAGE', `--db-system ${wanted}: the DB system has no endpoints to read`);
  }
  const chosen = config.dbSystems.filter(
    (d) => d.collect && (only.length === 0 || only.includes(d.id) || only.includes(d.name)),
  );
  return chosen.flatMap((db) =>
    db.endpoints.map((endpoint) => {
      const target: InstanceTarget = {
        db: { id: db.id, name: db.name },
        instance: instanceName(endpoint),
        endpoint,
        settings: collectorSettings(config, db),
      };
      if (endpoint.role === 'replica') target.eventInstance = target.instance;
      return target;
    }),
  );
}

/**
 * The configuration with the DB systems and endpoints of the store's latest `sync` snapshot merged
 * in (where the configuration lists none): the fleet `collect` and `doctor` reach; and with the
 * MySQL accounts the snapshot read, which attribution knows as well as the configured ones (what
 * `doctor` compares with each server's).
 */
export async function withDiscoveredFleet(
  config: Config,
  store: Pick<StateStore, 'snapshots'>,
): Promise<Config> {
  return applySnapshot(config, (await store.snapshots())[0]);
}

/** Why there is nothing to read or check: no configured or discovered DB system has endpoints. */
export const NO_ENDPOINTS =
  'no DB system has endpoints: list them in dbSystems[].endpoints, or run sync to discover them (a DB system set collect: false is not read)';

/** The environment variables the configuration takes collector passwords from. */
export function secretVariables(config: Config): Set<string> {
  const refs = [config.collector?.password, ...config.dbSystems.map((d) => d.collector?.password)];
  return new Set(refs.flatMap((r) => (r && 'env' in r ? [r.env] : [])));
}

/** Reads a secret's value; `fresh`: not from a cache (the value cached may have been rotated). */
export type SecretReader = (ref: SecretRef, opts?: { fresh?: boolean }) => Promise<string>;

/** Reads the text of an OCI Vault secret (its current version). */
export type VaultSecretFetcher = (secretId: string) => Promise<string>;

const VAULT_CACHE_MS = 15 * 60_000;

/**
 * Passwords from the environment (read each time, so a rotated value is seen) or from OCI Vault
 * (cached for 15 minutes per secret, so a fleet of DB systems sharing one secret costs one call;
 * read again when asked `fresh`, as after an access denied).
 */
export function secretReader(
  env: Readonly<Record<string, string | undefined>>,
  vault: () => Promise<VaultSecretFetcher>,
  now: () => number = Date.now,
): SecretReader {
  const cache = new Map<string, { value: Promise<string>; until: number }>();
  return async (ref, opts = {}) => {
    if ('env' in ref) {
      const value = env[ref.env];
      if (value === undefined || value === '') {
        throw new AuditError('CONFIG_INVALID', `the collector password variable ${ref.env} is not set`, {
          details: { variable: ref.env },
        });
      }
      return value;
    }
    const hit = cache.get(ref.secret);
    if (hit && hit.until > now() && !opts.fresh) return hit.value;
    const value = (async () => (await vault())(ref.secret))();
    cache.set(ref.secret, { value, until: now() + VAULT_CACHE_MS });
    value.catch(() => cache.delete(ref.secret));
    return value;
  };
}

/** What the collector needs of a database session. */
export type SqlSession = {
  /** The IAM principal the session logged in as (`auth: iam`). */
  principal?: IamPrincipal;
  query(sql: string, values?: unknown[]): Promise<Record<string, unknown>[]>;
  /** Ends the session politely (COM_QUIT). */
  close(): Promise<void>;
};

/** A failure to reach or use an instance; `retryable` when trying again later may work. */
export class InstanceError extends AuditError {
  constructor(
    message: string,
    readonly retryable: boolean,
    details: Record<string, string | number>,
    cause?: unknown,
  ) {
    super('SOURCE_FAILED', message, { details, cause });
  }
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
]);

/**
 * A driver error as an InstanceError that says what to do, without the driver's text (it may
 * quote SQL). `principal`: who an IAM login was, for an access denied.
 */
export function instanceError(
  target: InstanceTarget,
  error: unknown,
  during: string,
  principal?: IamPrincipal,
): InstanceError {
  if (error instanceof InstanceError) return error;
  const e = (error ?? {}) as { code?: unknown; errno?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  const errno = typeof e.errno === 'number' ? e.errno : undefined;
  const details: Record<string, string | number> = {
    dbSystem: target.db.name,
    instance: target.instance,
    ...(code ? { code } : {}),
    ...(errno ? { errno } : {}),
    ...(principal
      ? {
          principal: principal.id,
          principalKind: principal.kind,
          ...(principal.tenancy ? { tenancy: principal.tenancy } : {}),
        }
      : {}),
  };
  const where = `${target.db.name}/${target.instance}`;
  // Our own errors (a password or a key that cannot be read) say what is wrong already.
  if (error instanceof AuditError)
    return new InstanceError(
      `${where}: ${error.message}`,
      error.code === 'OCI_REQUEST_FAILED',
      details,
      error,
    );
  if (errno === 1045)
    return new InstanceError(
      `${where}: access denied for the collector user ${target.settings.user} (${loginSource(target.settings, principal)})`,
      false,
      details,
    );
  if (errno === 1227 || errno === 1142 || errno === 1370)
    return new InstanceError(
      `${where}: the collector user ${target.settings.user} lacks a privilege ${during} (grant AUDIT_ADMIN; see docs/collector.md)`,
      false,
      details,
    );
  if (code === 'HANDSHAKE_NO_SSL_SUPPORT' || /CERT|SSL|TLS|SELF_SIGNED|ALTNAME/i.test(code ?? ''))
    return new InstanceError(
      `${where}: TLS failed (${code}); check the server certificate and the collector's tls and ca settings`,
      false,
      details,
    );
  if ((code && NETWORK_CODES.has(code)) || (error instanceof Error && /closed|timeout/i.test(error.message)))
    return new InstanceError(
      `${where}: cannot reach ${target.endpoint.host}:${target.endpoint.port} (${code ?? 'connection lost'}) ${during}`,
      true,
      details,
      error,
    );
  return new InstanceError(
    `${where}: the server refused ${during}${errno ? ` (error ${errno})` : code ? ` (${code})` : ''}`,
    false,
    details,
    error,
  );
}

function loginSource(settings: CollectorSettings, principal: IamPrincipal | undefined): string {
  if (settings.auth === 'iam')
    return `IAM login as ${principal ? describePrincipal(principal) : 'the OCI principal'}: check the account's authentication_oci mapping and the tenancy's mysql_dp_auth policy, docs/iam-authentication.md`;
  const ref = settings.password!;
  return `check the password source: ${'env' in ref ? `environment variable ${ref.env}` : `Vault secret ${ref.secret}`}`;
}

/**
 * Opens a session to an instance with its collector settings: with the password, or with `iam`
 * (required for `auth: iam`) as its IAM principal.
 */
export async function connectInstance(
  target: InstanceTarget,
  readSecret: SecretReader,
  iam?: IamLogin,
): Promise<SqlSession> {
  const { settings, endpoint } = target;
  const options: ConnectionOptions = {
    host: endpoint.host,
    port: endpoint.port,
    user: settings.user,
    connectTimeout: settings.connectTimeoutMs,
    charset: 'utf8mb4',
    // Large JSON results arrive as strings; numbers stay numbers.
    supportBigNumbers: true,
    connectAttributes: { program_name: 'heatwave-iam-audit' },
  };
  if (settings.tls === 'required') options.ssl = { rejectUnauthorized: false };
  else if (settings.tls === 'verify-identity') {
    let ca: string;
    try {
      ca = readFileSync(settings.ca!, 'utf8');
    } catch (cause) {
      throw new AuditError(
        'CONFIG_INVALID',
        `cannot read the collector CA certificate file ${settings.ca!}${errnoSuffix(cause)}`,
        {
          details: { path: settings.ca!, dbSystem: target.db.name },
          cause,
        },
      );
    }
    options.ssl = { ca, rejectUnauthorized: true, verifyIdentity: true };
  }
  let principal: IamPrincipal | undefined;
  try {
    if (settings.auth === 'password') options.password = await readSecret(settings.password!);
    else {
      if (iam === undefined) throw new AuditError('INTERNAL', 'auth: iam without an IAM login');
      const credentials = await iam.credentials();
      principal = credentials.principal;
      options.authPlugins = { [OCI_CLIENT_PLUGIN]: ociClientAuthPlugin(credentials) };
    }
  } catch (error) {
    throw instanceError(target, error, 'while connecting');
  }
  // The driver loads only when a DB system is read (function cold start).
  const mysql = await import('mysql2/promise');
  let connection: Connection;
  try {
    connection = await mysql.createConnection(options);
  } catch (error) {
    // A password rotated in Vault since it was cached: read it again, and try once more.
    const ref = settings.auth === 'password' ? settings.password! : undefined;
    if ((error as { errno?: unknown }).errno !== 1045 || ref === undefined || !('secret' in ref))
      throw instanceError(target, error, 'while connecting', principal);
    try {
      options.password = await readSecret(ref, { fresh: true });
      connection = await mysql.createConnection(options);
    } catch (again) {
      throw instanceError(target, again, 'while connecting', principal);
    }
  }
  // An idle session that the server or the network drops must not crash the process.
  connection.on('error', () => undefined);
  return {
    ...(principal ? { principal } : {}),
    async query(sql, values) {
      const [rows] = await connection.query({ sql, values, rowsAsArray: false });
      return rows as Record<string, unknown>[];
    },
    async close() {
      try {
        await connection.end();
      } catch {
        connection.destroy();
      }
    },
  };
}
