// Opens the state store a spec names: a `mysql://user@host:port/database` URL is the shared MySQL
// (HeatWave) store, anything else a SQLite file path. The MySQL password comes from
// HWAUDIT_STATE_PASSWORD; one in the URL is accepted with a warning, since a URL shows up in process
// lists and configuration dumps. Warnings are returned (or handed to `onWarning`), never logged
// here, and no message carries the spec itself: it may hold that password.
import { readFileSync } from 'node:fs';
import { AuditError } from '../errors.js';
import type { StoreThread } from './commit-thread.js';
import type { MySqlConnectionOptions } from './mysql-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { StateStore } from './state-store.js';

export const STATE_PASSWORD_VAR = 'HWAUDIT_STATE_PASSWORD';
const DEFAULT_PORT = 3306;
const SSL_MODES = ['disabled', 'required', 'verify-identity'] as const;
const PARAMS = ['ssl-mode', 'ssl-ca', 'connection-limit'] as const;

export type StoreSpec =
  | { kind: 'sqlite'; path: string; warnings: string[] }
  | { kind: 'mysql'; connection: MySqlConnectionOptions; warnings: string[] };

export type OpenStoreOptions = {
  scope?: string;
  env?: NodeJS.ProcessEnv;
  /** Receives each warning about the spec (e.g. a password in the URL) before the store opens. */
  onWarning?: (text: string) => void;
  /** What a SQLite store's own thread does (SqliteStore.open); a MySQL store ignores it. */
  thread?: StoreThread;
};

function invalid(problem: string, details: Record<string, string | number> = {}): AuditError {
  return new AuditError('CONFIG_INVALID', `state store: ${problem}`, { details });
}

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch (cause) {
    throw new AuditError('CONFIG_INVALID', `state store: the URL's ${what} is not valid percent-encoding`, {
      cause,
    });
  }
}

function parseMySqlUrl(spec: string, env: NodeJS.ProcessEnv): StoreSpec {
  let url: URL;
  try {
    url = new URL(spec);
  } catch {
    // No cause: the parser's message quotes the input, password included.
    throw invalid('not a valid mysql:// URL (expected mysql://user@host:port/database)');
  }
  const warnings: string[] = [];
  const user = decode(url.username, 'user name');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const database = decode(url.pathname.replace(/^\//, ''), 'database name');
  if (user === '') throw invalid('the mysql:// URL names no user (mysql://user@host:port/database)');
  if (host === '') throw invalid('the mysql:// URL names no host');
  if (database === '' || database.includes('/')) {
    throw invalid('the mysql:// URL must name exactly one database (mysql://user@host:port/database)');
  }
  const port = url.port === '' ? DEFAULT_PORT : Number(url.port);
  if (url.hash !== '') throw invalid('the mysql:// URL must not have a #fragment');

  // TLS unless turned off: with ssl-ca, the certificate is checked too.
  const connection: MySqlConnectionOptions = {
    host,
    port,
    user,
    database,
    sslMode: url.searchParams.has('ssl-ca') ? 'verify-identity' : 'required',
  };
  for (const [name, value] of url.searchParams) {
    switch (name as (typeof PARAMS)[number]) {
      case 'ssl-mode': {
        const mode = value.toLowerCase().replace(/_/g, '-');
        if (!(SSL_MODES as readonly string[]).includes(mode)) {
          throw invalid(`ssl-mode must be one of ${SSL_MODES.join(', ')}`, { parameter: name });
        }
        connection.sslMode = mode as MySqlConnectionOptions['sslMode'];
        break;
      }
      case 'ssl-ca':
        try {
          connection.sslCa = readFileSync(value, 'utf8');
        } catch (cause) {
          throw new AuditError('CONFIG_INVALID', 'state store: cannot read the ssl-ca file', {
            cause,
            details: { parameter: name, path: value },
          });
        }
        break;
      case 'connection-limit': {
        const n = Number(value);
        if (!/^\d+$/.test(value) || n < 1 || n > 100) {
          throw invalid('connection-limit must be an integer from 1 to 100', { parameter: name });
        }
        connection.connectionLimit = n;
        break;
      }
      default:
        throw invalid(`unknown URL parameter (known: ${PARAMS.join(', ')})`, {
          parameter: name.slice(0, 64),
        });
    }
  }

  const fromEnv = env[STATE_PASSWORD_VAR];
  const envPassword = fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
  const urlPassword = url.password === '' ? undefined : decode(url.password, 'password');
  if (urlPassword !== undefined) {
    warnings.push(
      envPassword === undefined
        ? `the state store URL contains a password, which is visible in process lists and configuration; set ${STATE_PASSWORD_VAR} instead`
        : `the state store URL contains a password, which is visible in process lists and configuration; it is ignored because ${STATE_PASSWORD_VAR} is set`,
    );
  }
  const password = envPassword ?? urlPassword;
  if (password !== undefined) connection.password = password;
  return { kind: 'mysql', connection, warnings };
}

/** Reads a state store spec without opening anything; throws CONFIG_INVALID on a bad URL. */
export function parseStoreSpec(spec: string, env: NodeJS.ProcessEnv = process.env): StoreSpec {
  const trimmed = spec.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(trimmed)?.[1]?.toLowerCase();
  if (scheme === 'mysql') return parseMySqlUrl(trimmed, env);
  if (scheme === 'mysqlx') {
    throw invalid('the X Protocol (mysqlx://) is not supported; use mysql:// and the classic port (3306)');
  }
  // A typo such as mysq:// would otherwise become a SQLite file of that name.
  if (scheme !== undefined)
    throw invalid(`unsupported URL scheme "${scheme.slice(0, 32)}"; use mysql:// or a file path`);
  // mysql:/u:pw@h/db, mysql//u:pw@h, mysql:u:pw@h:3306: a mistyped URL, not a file name (and
  // never echoed: it may hold a password).
  if (/^mysql[:/]/i.test(trimmed) || /^[^/]*@/.test(trimmed))
    throw invalid(
      'this looks like a mistyped URL: expected mysql://user@host:port/database (not shown: it may hold a password)',
    );
  if (trimmed === '') throw invalid('empty state store path');
  return { kind: 'sqlite', path: trimmed, warnings: [] };
}

/** A valid store spec as it may be shown (commands in alerts, logs): a mysql:// URL loses its password. */
export function displayStoreSpec(spec: string): string {
  const trimmed = spec.trim();
  if (!/^mysql:\/\//i.test(trimmed)) return trimmed;
  const url = new URL(trimmed);
  url.password = '';
  return url.toString();
}

/** Opens the store `spec` names: MySqlStore for a mysql:// URL, SqliteStore for a path. */
export async function openStore(spec: string, opts: OpenStoreOptions = {}): Promise<StateStore> {
  const parsed = parseStoreSpec(spec, opts.env ?? process.env);
  for (const w of parsed.warnings) opts.onWarning?.(w);
  const scope = opts.scope === undefined ? {} : { scope: opts.scope };
  if (parsed.kind === 'sqlite')
    return SqliteStore.open(parsed.path, { ...scope, ...(opts.thread ? { thread: opts.thread } : {}) });
  // The MySQL driver loads only when a MySQL store is asked for (function cold start).
  const { MySqlStore } = await import('./mysql-store.js');
  return MySqlStore.open(parsed.connection, scope);
}
