// MySQL adapter of the state store (mysql2): a store shared by many function instances and
// consumers, on MySQL 8.0+ / HeatWave (tested against MariaDB 10.11). Same tables and semantics as
// the SQLite adapter: one transaction per commit, per-scope seen/entity/pending, shared sessions,
// alerts, deliveries and dead letters. Deadlocks and lock wait timeouts are retried with backoff.
//
// Portability (MySQL 8 / HeatWave vs MariaDB), decided once here:
// - Keys are VARBINARY(255): byte-exact like SQLite's BINARY collation (the utf8mb4 collations
//   are case-insensitive or PAD SPACE), and 3 of them fit InnoDB's 3072-byte index limit. A key
//   over 255 UTF-8 bytes (or starting with a NUL byte) is stored as 0x00 + SHA-256, so the two
//   forms never collide; entity rows keep such a key's text in `long_key` to read it back.
//   Other keys are sent as text (utf8mb4 connection: the same bytes), half the size of X'..'.
// - Statements go over the text protocol with client-side escaping (no server-side prepared
//   statements to leak or count against max_prepared_stmt_count); each connection drops
//   NO_BACKSLASH_ESCAPES from its sql_mode, which that escaping relies on.
// - Bodies are LONGTEXT, not JSON: MySQL's JSON type reorders object keys (MariaDB's JSON is a
//   LONGTEXT alias), and the stores must give back byte-identical bodies.
// - Event times are BIGINT (epoch ms). Column names avoid reserved words (`key`) and keywords.
// - Upserts use VALUES(col): MySQL 8.0.20+ deprecates it for row aliases (`AS new`), which
//   MariaDB lacks; it still works on MySQL 8.x and 9.x with a deprecation note.
// - Indexes are declared inside CREATE TABLE: MySQL has no CREATE INDEX IF NOT EXISTS.
// - Every table has a primary key (HeatWave high availability sets sql_require_primary_key).
// - Transactions run at READ COMMITTED: no gap locks, so instances writing other scopes do not
//   block each other's inserts (and Group Replication recommends it).
// - The scope lock (lockScope) is a user-level lock, GET_LOCK('<database>:hwaudit:<scope>'), held
//   by a connection of its own (not from the pool) for as long as the lock is held: the server
//   frees it when that connection ends, so a crashed or frozen holder cannot keep it forever (and
//   so a live holder's connection checks the lock within wait_timeout, not to be ended as idle). Lock
//   names are limited to 64 characters: a longer name becomes 'hwaudit:' + 56 hex digits of its
//   SHA-256. GET_LOCK is per connection in MySQL 5.7+ and MariaDB 10.0.2+ (and re-entrant on
//   one connection, hence never from the pool). Group Replication does not replicate these locks:
//   every instance must reach the same primary (as the writes do anyway).
// - Delivery claims (StateStore.undelivered) are timed by the client's clock, never the server's
//   (NOW()): the claimant's clock sets a claim's end, the taker's reads it, so the instances' clocks
//   must agree within the lease. Claims are taken under row locks (SELECT ... FOR UPDATE), so that
//   of two instances taking over one record, the second sees the first's claim.
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import mysql, {
  type Connection,
  type Pool,
  type PoolConnection,
  type ResultSetHeader,
  type RowDataPacket,
} from 'mysql2/promise';
import { type Alert, recordKey, recordTime } from '../../schemas/alert.js';
import type { CanonicalEvent } from '../../schemas/events.js';
import {
  activeUntil,
  activeUntilOf,
  LAST_ACTIVITY,
  lastActivity,
  type Session,
  TABLE_NAME_MAX,
} from '../../schemas/session.js';
import type { Snapshot } from '../../schemas/snapshot.js';
import { AuditError, type SafeDetails } from '../errors.js';
import type { EntityRow } from './entity-cache.js';
import {
  ALERT_COLUMNS,
  alertMerges,
  backfillPlantedCredentialsSql,
  carriedActive,
  carriedSessionConditions,
  columnType,
  DEAD_LETTER_COLUMNS,
  type DeadLetterQuery,
  type DeadLetterRow,
  deadLetterRow,
  deadLetterView,
  FIRST_SESSION_COLUMNS,
  type LedgerField,
  type LedgerQuery,
  laterSessionColumns,
  ledgerConditions,
  ledgerViews,
  repairAlertMergesSql,
  repeatedAlertsQuery,
  restoredSessionsSql,
  SESSION_COLUMNS,
  SESSION_COUNTS_SQL,
  type SessionCount,
  SessionTablesWritten,
  type StoredDeadLetter,
  sessionsView,
  storedDeadLetter,
} from './ledger.js';
import {
  type ClaimOptions,
  type Claims,
  type CommitBatch,
  type CommitResult,
  chunks,
  claimable,
  clearReceivedGivenUpSql,
  GIVEN_UP,
  type LockHolder,
  type LockScopeOptions,
  lookWindow,
  lostClaims,
  mergeAlert,
  type NewClaim,
  newClaim,
  prunedAlerts,
  prunedAlertsParams,
  RenewalClock,
  readSnapshot,
  resolveClaims,
  type ScopeLock,
  type StateStore,
  scopeBusy,
  seenBucket,
  seenBuckets,
  thisHolder,
} from './state-store.js';

const TABLE = 'ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin';

/** A migration step: a statement, or work on the connection (guarded DDL, backfills). */
type MigrationStep = string | ((conn: Conn) => Promise<void>);

/** The statement that creates (or replaces) a view. */
const createView = (v: { name: string; select: string }) => `CREATE OR REPLACE VIEW ${v.name} AS ${v.select}`;

/**
 * Each entry upgrades the schema by one version; never edit a released one. DDL commits
 * implicitly in MySQL, so a migration cannot be one transaction: every step must be safe to
 * run again (IF NOT EXISTS, or a guard) in case the process died half way through it.
 */
const MIGRATIONS: MigrationStep[][] = [
  [
    `CREATE TABLE IF NOT EXISTS entity (scope VARBINARY(255) NOT NULL, kind VARBINARY(255) NOT NULL,
       k VARBINARY(255) NOT NULL, long_key LONGTEXT NULL, body LONGTEXT NOT NULL,
       PRIMARY KEY (scope, kind, k)) ${TABLE}`,
    `CREATE TABLE IF NOT EXISTS pending (scope VARBINARY(255) NOT NULL, k VARBINARY(255) NOT NULL,
       ts BIGINT NOT NULL, body LONGTEXT NOT NULL, PRIMARY KEY (scope, k)) ${TABLE}`,
    // One row per event-time bucket and commit (see seenBucket); `keys` is reserved in MySQL.
    `CREATE TABLE IF NOT EXISTS seen (id BIGINT NOT NULL AUTO_INCREMENT, scope VARBINARY(255) NOT NULL,
       bucket BIGINT NOT NULL, seen_keys LONGTEXT NOT NULL, PRIMARY KEY (id),
       KEY seen_bucket (scope, bucket)) ${TABLE}`,
    `CREATE TABLE IF NOT EXISTS sessions (id VARBINARY(255) NOT NULL, db TEXT NOT NULL,
       connect_ts BIGINT NOT NULL, is_open TINYINT NOT NULL, body LONGTEXT NOT NULL, PRIMARY KEY (id),
       KEY sessions_connect (connect_ts, id), KEY sessions_open (is_open)) ${TABLE}`,
    `CREATE TABLE IF NOT EXISTS alerts (id VARBINARY(255) NOT NULL, rule VARCHAR(255) NOT NULL,
       alert_time VARBINARY(64) NOT NULL, body LONGTEXT NOT NULL, occurrences INT NOT NULL DEFAULT 1,
       last_time VARCHAR(64) NULL, PRIMARY KEY (id), KEY alerts_time (alert_time, id)) ${TABLE}`,
    `CREATE TABLE IF NOT EXISTS deliveries (alert_id VARBINARY(255) NOT NULL, sink VARBINARY(255) NOT NULL,
       PRIMARY KEY (alert_id, sink)) ${TABLE}`,
    `CREATE TABLE IF NOT EXISTS dead_letters (seq BIGINT NOT NULL AUTO_INCREMENT, body LONGTEXT NOT NULL,
       PRIMARY KEY (seq)) ${TABLE}`,
  ],
  // Who holds each scope lock (the lock itself is GET_LOCK): for the message of a process kept waiting.
  [
    `CREATE TABLE IF NOT EXISTS holders (scope VARBINARY(255) NOT NULL, pid INT NOT NULL, host VARCHAR(255) NOT NULL,
       since VARCHAR(64) NOT NULL, PRIMARY KEY (scope)) ${TABLE}`,
  ],
  [
    `CREATE TABLE IF NOT EXISTS snapshots (id VARBINARY(255) NOT NULL, taken_at BIGINT NOT NULL,
       body LONGTEXT NOT NULL, PRIMARY KEY (id), KEY snapshots_taken (taken_at, id)) ${TABLE}`,
  ],
  // The queryable ledger (shared/state/ledger.ts): typed columns, touched tables, delivery times,
  // views. One ALTER per table (atomic in InnoDB), skipped when its first column exists.
  [
    addColumnsOnce(
      'sessions',
      FIRST_SESSION_COLUMNS,
      'ADD KEY sessions_db_time (db(191), connect_ts), ADD KEY sessions_person (person_id(191), connect_ts), ADD KEY sessions_grant (break_glass_grant(191))',
    ),
    addColumnsOnce(
      'alerts',
      ALERT_COLUMNS,
      'ADD KEY alerts_ts (finding_ts), ADD KEY alerts_rule (rule, finding_ts), ADD KEY alerts_db (db_system_id(191), finding_ts)',
    ),
    addColumnsOnce('deliveries', [{ name: 'delivered_ts', type: 'int', value: () => null }]),
    `CREATE TABLE IF NOT EXISTS session_tables (session_id VARBINARY(255) NOT NULL, table_name VARCHAR(${TABLE_NAME_MAX}) NOT NULL,
       PRIMARY KEY (session_id, table_name)) ${TABLE}`,
    ...ledgerViews('mysql').map(createView),
    backfillLedger,
  ],
  // Dead letters: when each was stored, and the view that reads them (audit_dead_letters).
  [addColumnsOnce('dead_letters', DEAD_LETTER_COLUMNS), createView(deadLetterView('mysql'))],
  // Alerts stored with repeats already merged into them counted one: their body has the count.
  [repairAlertMergesSql('mysql')],
  // When each session last did something (CommitBatch.keepOpenSince): a session stored open before
  // counts from its connect, as it did then.
  [
    addColumnsOnce('sessions', [{ name: 'last_activity_ts', type: 'int', value: () => null }]),
    'UPDATE sessions SET last_activity_ts = connect_ts WHERE is_open = 1 AND last_activity_ts IS NULL',
  ],
  // How a session ended that the server logged no disconnect for (Session.endReason), in a column
  // of its own and the view; no session stored before has one.
  [addColumnsOnce('sessions', laterSessionColumns(1)), createView(sessionsView('mysql', 1))],
  // How many credentials another principal created on the person were in force at the login
  // (Attribution.plantedCredentials), in a column of its own and the view, from the bodies of the
  // sessions stored before.
  [
    addColumnsOnce('sessions', laterSessionColumns(2)),
    backfillPlantedCredentialsSql('mysql'),
    createView(sessionsView('mysql', 2)),
  ],
  // Who delivers each record, until when (StateStore.undelivered): the instance whose commit stored
  // it. A record stored before has no claim: any instance may send what it has not received.
  [
    addColumnsOnce('alerts', [
      { name: 'claimant', type: 'text', value: () => null },
      { name: 'claimed_until', type: 'int', value: () => null },
    ]),
    // The claims that ended since a pipeline's last look (StateStore.lapsed), found by their end.
    addKeyOnce('alerts', 'alerts_claimed', '(claimed_until)'),
  ],
  // Per sink, the claims' time up to which a look took what it could (StateStore.lapsed): a
  // pipeline that opens looks from there. None for a sink yet: its first look reads every record.
  [
    `CREATE TABLE IF NOT EXISTS delivery_looks (sink VARBINARY(255) NOT NULL, looked_until BIGINT NOT NULL,
       PRIMARY KEY (sink)) ${TABLE}`,
  ],
  // Until when each session was active (activeUntil), for the reports' sessions active in a period
  // (StateStore.sessions `active`), with the key that finds those that connected before it. Both
  // online (the column instantly, the key without blocking writes). The sessions stored before keep
  // a null column, which reads take from the row (carriedActive): each open fills some of them after
  // the migration lock is released (fillActiveUntil), never under it.
  [
    addColumnsOnce('sessions', [{ name: 'active_until_ts', type: 'int', value: () => null }], undefined, {
      online: true,
    }),
    addKeyOnce('sessions', 'sessions_active', '(active_until_ts, connect_ts)', { online: true }),
  ],
  // When each alert's last merged repeat was, for the reports' alerts raised before a period and
  // repeated into it (StateStore.alerts `active`): without it, every report read the whole history.
  // Online: the key without blocking writes.
  [addKeyOnce('alerts', 'alerts_last', '(last_time, alert_time)', { online: true })],
];

/** What an open spends at most on filling `active_until_ts` of the sessions stored before it. */
export type ActiveUntilFill = { ms: number; pages: number };

const ACTIVE_UNTIL_FILL: ActiveUntilFill = { ms: 1000, pages: Number.POSITIVE_INFINITY };

/**
 * Fills `active_until_ts` of sessions stored without it (before schema 12, or since by an instance
 * of the version before), a page at a time for at most `budget`. Each page is a read through the
 * key on (active_until_ts, connect_ts), which finds none at once when every row is filled, and one
 * short UPDATE that sets a row only if it is still null and still has the values the page read (a
 * commit wrote it in between: the next page reads it again). So it is safe to interrupt, and to
 * run from several instances at once (they may fill the same page: the second finds it filled).
 */
export async function fillActiveUntil(conn: Conn, budget: ActiveUntilFill): Promise<void> {
  const started = Date.now();
  for (let page = 0; page < budget.pages && Date.now() - started < budget.ms; page++) {
    const rows = await select<{
      id: Buffer;
      outcome: string;
      connect_ts: number | string;
      disconnect_time: string | null;
      last_activity_ts: number | string | null;
    }>(conn, UNFILLED_SESSIONS);
    if (rows.length === 0) break;
    const cases = rows.map((r) => [
      r.id,
      r.disconnect_time,
      r.last_activity_ts,
      activeUntilOf({
        outcome: r.outcome,
        connectTs: Number(r.connect_ts),
        disconnectTime: r.disconnect_time,
        lastActivity: r.last_activity_ts === null ? null : Number(r.last_activity_ts),
      }),
    ]);
    await run(
      conn,
      `UPDATE sessions SET active_until_ts = CASE
         ${rows.map(() => 'WHEN id = ? AND disconnect_time <=> ? AND last_activity_ts <=> ? THEN ?').join(' ')} END
       WHERE id IN (${rows.map(() => '?').join(', ')}) AND active_until_ts IS NULL`,
      [...cases.flat(), ...rows.map((r) => r.id)],
    );
  }
}

/** ER_UNKNOWN_SYSTEM_VARIABLE: MySQL has no max_statement_time, MariaDB no max_execution_time. */
const UNKNOWN_SYSTEM_VARIABLE = 1193;

/**
 * Bounds the statements of the connection's session: a row lock, or the table's metadata lock (a
 * migration of a later version altering it, a LOCK TABLES), waited for at most one second (the
 * least the server takes), and a statement stopped by the server after `ms` (MariaDB: any
 * statement; MySQL: a SELECT, the UPDATE being bounded by its lock waits).
 */
async function boundStatements(conn: Conn, ms: number): Promise<void> {
  await conn.query('SET SESSION innodb_lock_wait_timeout = 1, lock_wait_timeout = 1');
  if (!Number.isFinite(ms)) return;
  const bound = Math.max(1, Math.ceil(ms));
  try {
    await conn.query(`SET SESSION max_statement_time = ${bound / 1000}`);
  } catch (error) {
    if (errno(error) !== UNKNOWN_SYSTEM_VARIABLE) throw error;
    await conn.query(`SET SESSION max_execution_time = ${bound}`);
  }
}

/** Clauses that make an ALTER online, tried in turn: a column instantly, else without blocking writes. */
const ONLINE = {
  column: [', ALGORITHM=INSTANT', ', ALGORITHM=INPLACE, LOCK=NONE'],
  key: [', ALGORITHM=INPLACE, LOCK=NONE'],
};
/** ER_ALTER_OPERATION_NOT_SUPPORTED(_REASON): the server cannot run an ALTER with the ALGORITHM or LOCK asked. */
const ALTER_NOT_SUPPORTED = new Set([1845, 1846]);

/**
 * Runs `ALTER TABLE ...` with the first of `clauses` the server can do; when it can do none, as the
 * server chooses (it may then block writes to the table while it runs).
 */
async function alterWith(conn: Conn, statement: string, clauses: readonly string[]): Promise<void> {
  for (const clause of clauses) {
    try {
      await conn.query(statement + clause);
      return;
    } catch (error) {
      if (!ALTER_NOT_SUPPORTED.has(errno(error) ?? 0)) throw error;
    }
  }
  await conn.query(statement);
}

/** `ALTER TABLE table ADD KEY name columns`, unless the table has that key. */
function addKeyOnce(table: string, name: string, columns: string, { online = false } = {}): MigrationStep {
  return async (conn) => {
    const [row] = await select<{ n: number | string }>(
      conn,
      'SELECT COUNT(*) AS n FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ?',
      [table, name],
    );
    if (Number(row?.n) === 0)
      await alterWith(conn, `ALTER TABLE ${table} ADD KEY ${name} ${columns}`, online ? ONLINE.key : []);
  };
}

/** `ALTER TABLE table ADD COLUMN ...` for the ledger's typed columns, unless the first one exists. */
function addColumnsOnce(
  table: string,
  fields: readonly LedgerField<never>[],
  keys?: string,
  { online = false } = {},
): MigrationStep {
  return async (conn) => {
    const [row] = await select<{ n: number | string }>(
      conn,
      'SELECT COUNT(*) AS n FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? AND column_name = ?',
      [table, fields[0]!.name],
    );
    if (Number(row?.n) > 0) return;
    const columns = fields.map((f) => `ADD COLUMN ${f.name} ${columnType(f, 'mysql')} NULL`);
    await alterWith(
      conn,
      `ALTER TABLE ${table} ${[...columns, ...(keys ? [keys] : [])].join(', ')}`,
      online ? ONLINE.column : [],
    );
  };
}

/** Fills the typed columns of rows written before the ledger, from their bodies, a page at a time. */
async function backfillLedger(conn: Conn): Promise<void> {
  for (const table of ['sessions', 'alerts'] as const) {
    for (let after: Buffer = Buffer.alloc(0); ; ) {
      const rows = await select<{ id: Buffer; body: string }>(
        conn,
        `SELECT id, body FROM ${table} WHERE id > ? ORDER BY id LIMIT ${PAGE}`,
        [after],
      );
      if (table === 'sessions') {
        const sessions = rows.map((r) => JSON.parse(r.body) as Session);
        await putSessions(conn, sessions, new Set(sessions), { schema4: true });
      } else {
        for (const r of rows) {
          const a = JSON.parse(r.body) as Alert;
          await run(
            conn,
            `UPDATE alerts SET ${ALERT_COLUMNS.map((f) => `${f.name} = ?`).join(', ')} WHERE id = ?`,
            [...ALERT_COLUMNS.map((f) => f.value(a)), r.id],
          );
        }
      }
      const last = rows.at(-1);
      if (!last || rows.length < PAGE) break;
      after = last.id;
    }
  }
}

/**
 * Upserts sessions with their typed columns, last activity and until when they were active, and
 * the touched tables of those in `withTables`, sorted by key (see commitRows). Schema 4's migration
 * writes the rows stored before it, before those columns and the later typed columns exist (`schema4`).
 */
async function putSessions(
  conn: Conn,
  sessions: readonly Session[],
  withTables: ReadonlySet<Session>,
  { schema4 = false } = {},
): Promise<void> {
  if (sessions.length === 0) return;
  const keyed = sessions.map((s) => ({ k: storedKey(s.id), s })).sort(byKey);
  const columns = schema4 ? FIRST_SESSION_COLUMNS : SESSION_COLUMNS;
  const names = [...columns.map((f) => f.name), ...(schema4 ? [] : ['last_activity_ts', 'active_until_ts'])];
  await insertRows(
    conn,
    `INSERT INTO sessions (id, db, connect_ts, is_open, body, ${names.join(', ')})`,
    keyed.map(({ k, s }) => [
      k,
      s.dbSystem.id,
      s.connectTs,
      s.outcome === 'success' && s.disconnectTime === undefined ? 1 : 0,
      JSON.stringify(s),
      ...columns.map((f) => f.value(s)),
      ...(schema4 ? [] : [lastActivity(s), activeUntil(s)]),
    ]),
    `ON DUPLICATE KEY UPDATE is_open = VALUES(is_open), body = VALUES(body), ${names.map((n) => `${n} = VALUES(${n})`).join(', ')}`,
  );
  const tables = keyed.flatMap(({ k, s }) => (withTables.has(s) ? (s.tables ?? []).map((t) => [k, t]) : []));
  if (tables.length > 0)
    await insertRows(conn, 'INSERT IGNORE INTO session_tables (session_id, table_name)', tables);
}

const ER_LOCK_WAIT_TIMEOUT = 1205;
const ER_LOCK_DEADLOCK = 1213;
/** MySQL 8.0.24+: the server closed an idle connection (wait_timeout). */
const ER_CLIENT_INTERACTION_TIMEOUT = 4031;
/** Times a statement is redone on a fresh connection after its connection died under it. */
const MAX_RECONNECTS = 2;
const MAX_KEY_BYTES = 255;
const CHUNK_ROWS = 500;
/** Well under the smallest default max_allowed_packet (MariaDB: 16 MiB). */
const CHUNK_BYTES = 4 * 1024 * 1024;
const PAGE = 500;
/**
 * A page of the sessions whose `active_until_ts` is null, through the key (the statistics of a key
 * built while every row was null would otherwise have the server scan the table for none).
 */
export const UNFILLED_SESSIONS = `SELECT id, outcome, connect_ts, disconnect_time, last_activity_ts
  FROM sessions FORCE INDEX (sessions_active) WHERE active_until_ts IS NULL LIMIT ${PAGE}`;
/** MySQL's limit on user-level lock names (characters). */
const MAX_LOCK_NAME = 64;
/** Poll interval of a scope lock wait shorter than GET_LOCK's one-second granularity. */
const LOCK_POLL_MS = 25;
/** Longest interval between checks of a held scope lock (a third of wait_timeout when shorter). */
const LOCK_CHECK_MAX_MS = 5 * 60_000;

export type MySqlConnectionOptions = {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
  /**
   * `required` encrypts without checking the server certificate; `verify-identity` checks it and
   * the host name against `sslCa` (PEM), else Node's built-in CA list.
   */
  sslMode: 'disabled' | 'required' | 'verify-identity';
  sslCa?: string;
  connectionLimit?: number;
};

export type RetryPolicy = { attempts: number; baseMs: number; maxMs: number };

export type MySqlStoreOptions = {
  scope?: string;
  /** Who claims deliveries through this store (StateStore.undelivered). */
  claims?: ClaimOptions;
  /** Session innodb_lock_wait_timeout in seconds (server default: 50). */
  lockWaitTimeoutSec?: number;
  retry?: Partial<RetryPolicy>;
  /**
   * What each open spends at most filling `active_until_ts` of sessions stored without it, after the
   * migrations (default: pages for one second).
   */
  fillActiveUntil?: Partial<ActiveUntilFill>;
};

/** Transactions redone after a deadlock or a lock wait timeout, since open. */
export type ContentionStats = { deadlocks: number; lockWaits: number };

const DEFAULT_RETRY: RetryPolicy = { attempts: 20, baseMs: 5, maxMs: 1000 };

/** A key as stored: the text itself, or 0x00 + SHA-256 of its UTF-8 bytes when too long (see top). */
type StoredKey = string | Buffer;

function storedKey(key: string): StoredKey {
  if (key.charCodeAt(0) !== 0 && Buffer.byteLength(key, 'utf8') <= MAX_KEY_BYTES) return key;
  return Buffer.concat([Buffer.alloc(1), createHash('sha256').update(key, 'utf8').digest()]);
}

/**
 * The server-wide name of a scope's lock: `<database>:hwaudit:<scope>`, or, over 64 bytes (the
 * limit is 64 characters; bytes are stricter), 'hwaudit:' + the first 56 hex digits of the
 * SHA-256 of that text. A hashed name has no second ':' so it never equals a plain one.
 */
export function scopeLockName(database: string, scope: string): string {
  const name = `${database}:hwaudit:${scope}`;
  if (Buffer.byteLength(name, 'utf8') <= MAX_LOCK_NAME) return name;
  return `hwaudit:${createHash('sha256')
    .update(name, 'utf8')
    .digest('hex')
    .slice(0, MAX_LOCK_NAME - 8)}`;
}

/** A scope lock this store holds: the connection that holds it, and whether that connection died. */
type Hold = { connectionId: number; lost: boolean };

/**
 * Checks a held scope lock every `everyMs` until the returned function is called: the server ends
 * a connection idle for wait_timeout, and the lock with it, so the lock connection must not idle
 * that long. A check that finds the lock gone marks it lost and stops.
 */
function keepLock(conn: Connection, lockName: string, hold: Hold, everyMs: number): () => void {
  let timer: NodeJS.Timeout | undefined;
  const next = () => {
    timer = setTimeout(async () => {
      try {
        const [row] = await select<{ mine: number | string | null }>(
          conn,
          'SELECT IS_USED_LOCK(?) = CONNECTION_ID() AS mine',
          [lockName],
        );
        if (Number(row?.mine) !== 1) hold.lost = true;
      } catch {
        hold.lost = true;
      }
      if (timer && !hold.lost) next();
    }, everyMs);
    // A held lock does not keep the process alive.
    timer.unref();
  };
  next();
  return () => {
    clearTimeout(timer);
    timer = undefined;
  };
}

/** The key a stored column value stands for, in the form `storedKey` gave (hashed: as hex). */
function lookupForm(value: StoredKey): string {
  return typeof value === 'string' ? value : `\u0000${value.toString('hex')}`;
}

function lookupFormOfColumn(column: Buffer): string {
  return column[0] === 0 ? `\u0000${column.toString('hex')}` : column.toString('utf8');
}

/** One total order on stored keys, the same in every instance, so that writers lock rows alike. */
function compareKeys(a: StoredKey, b: StoredKey): number {
  if (typeof a === 'string') return typeof b === 'string' ? (a < b ? -1 : a > b ? 1 : 0) : 1;
  return typeof b === 'string' ? -1 : Buffer.compare(a, b);
}

function byKey<T extends { k: StoredKey }>(a: T, b: T): number {
  return compareKeys(a.k, b.k);
}

function checkedKind(kind: string): string {
  const length = Buffer.byteLength(kind, 'utf8');
  if (length > MAX_KEY_BYTES) {
    throw new AuditError('INTERNAL', 'entity kind longer than 255 bytes', { details: { length } });
  }
  return kind;
}

/** Splits rows so that each multi-row statement stays under both limits. */
function chunkRows<T extends unknown[]>(rows: T[]): T[][] {
  const out: T[][] = [];
  let part: T[] = [];
  let bytes = 0;
  for (const row of rows) {
    let size = 16;
    for (const v of row)
      size += typeof v === 'string' ? v.length * 3 : Buffer.isBuffer(v) ? v.length * 2 : 20;
    if (part.length > 0 && (part.length >= CHUNK_ROWS || bytes + size > CHUNK_BYTES)) {
      out.push(part);
      part = [];
      bytes = 0;
    }
    part.push(row);
    bytes += size;
  }
  if (part.length > 0) out.push(part);
  return out;
}

function errno(error: unknown): number | undefined {
  const n = (error as { errno?: unknown } | null)?.errno;
  return typeof n === 'number' ? n : undefined;
}

/** The connection is gone (killed, timed out, failover, a frozen function's socket reset). */
function connectionLost(error: unknown): boolean {
  return (
    (error as { fatal?: unknown } | null)?.fatal === true || errno(error) === ER_CLIENT_INTERACTION_TIMEOUT
  );
}

function errorDetails(error: unknown): SafeDetails {
  const e = error as { code?: unknown; errno?: unknown } | null;
  const details: SafeDetails = {};
  if (typeof e?.code === 'string') details.code = e.code;
  if (typeof e?.errno === 'number') details.errno = e.errno;
  return details;
}

/** mysql2 errors carry the statement with its values inlined: audit data, never for logs. */
function scrub(error: unknown): unknown {
  if (error && typeof error === 'object' && 'sql' in error) {
    try {
      delete (error as { sql?: unknown }).sql;
    } catch {
      // frozen: leave it
    }
  }
  return error;
}

function storeFailed(message: string, cause: unknown, details: SafeDetails = {}): AuditError {
  if (cause instanceof AuditError) return cause;
  return new AuditError('STORE_FAILED', message, {
    cause: scrub(cause),
    details: { ...errorDetails(cause), ...details },
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

type Conn = Pick<PoolConnection, 'query'>;

/** Drops NO_BACKSLASH_ESCAPES from the session's sql_mode: mysql2's client-side escaping needs that. */
async function allowBackslashEscapes(conn: Conn): Promise<void> {
  const [mode] = await select<{ m: string }>(conn, 'SELECT @@SESSION.sql_mode AS m');
  const modes = String(mode?.m ?? '').split(',');
  if (modes.includes('NO_BACKSLASH_ESCAPES')) {
    await conn.query('SET SESSION sql_mode = ?', [
      modes.filter((m) => m !== 'NO_BACKSLASH_ESCAPES').join(','),
    ]);
  }
}

async function select<T>(conn: Conn, sql: string, params: unknown[] = []): Promise<T[]> {
  const [rows] = await conn.query<RowDataPacket[]>(sql, params);
  return rows as unknown as T[];
}

async function run(conn: Conn, sql: string, params: unknown[]): Promise<ResultSetHeader> {
  const [result] = await conn.query<ResultSetHeader>(sql, params);
  return result;
}

/** `INSERT ... VALUES ?` in multi-row chunks. */
async function insertRows(conn: Conn, head: string, rows: unknown[][], tail = ''): Promise<void> {
  for (const part of chunkRows(rows)) await run(conn, `${head} VALUES ? ${tail}`, [part]);
}

function whereClause(conditions: readonly string[]): string {
  return conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
}

/** A record `sink` (the parameter) has not received, of `alerts a`. */
const NOT_DELIVERED = 'NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = a.id AND d.sink = ?)';

/** An alert's claim as read (StoredClaim). */
type ClaimRow = { id: Buffer; claimant: string | null; claimed_until: number | string | null };

const rowClaim = (r: ClaimRow) => ({
  claimant: r.claimant,
  until: r.claimed_until === null ? null : Number(r.claimed_until),
});

type AlertRow = {
  id: Buffer;
  alert_time: Buffer;
  body: string;
  occurrences: number;
  last_time: string | null;
};

export class MySqlStore implements StateStore {
  private readonly contention: ContentionStats = { deadlocks: 0, lockWaits: 0 };
  private readonly ready = new WeakSet<object>();
  /** Scope locks held through this store (at most one at a time: they are exclusive). */
  private readonly holds = new Map<Hold, () => Promise<void>>();
  private readonly tablesWritten = new SessionTablesWritten();
  private closed = false;
  /** A read runs on a connection of the pool, which may not see a commit still in flight. */
  readonly ordered = false;

  private constructor(
    private readonly pool: Pool,
    private readonly scope: StoredKey,
    private readonly scopeName: string,
    private readonly lockName: string,
    private readonly connectAlone: () => Promise<Connection>,
    private readonly sessionSetup: string[],
    private readonly retry: RetryPolicy,
    private readonly where: SafeDetails,
    private readonly claims: Claims,
  ) {
    this.renewal = new RenewalClock(claims);
  }

  /** When this store last looked for each sink's records to take (`lapsed`), by the claims' clock. */
  private readonly looked = new Map<string, number>();
  private readonly renewal: RenewalClock;

  /** Connects, brings the schema up to date (once, under a named lock) and returns the store. */
  static async open(conn: MySqlConnectionOptions, opts: MySqlStoreOptions = {}): Promise<MySqlStore> {
    const where: SafeDetails = { host: conn.host, port: conn.port, database: conn.database };
    const ssl =
      conn.sslMode === 'required'
        ? { rejectUnauthorized: false }
        : conn.sslMode === 'verify-identity'
          ? { rejectUnauthorized: true, ...(conn.sslCa ? { ca: conn.sslCa } : {}) }
          : undefined;
    const common = {
      host: conn.host,
      port: conn.port,
      user: conn.user,
      ...(conn.password !== undefined ? { password: conn.password } : {}),
      database: conn.database,
      ...(ssl ? { ssl } : {}),
      charset: 'utf8mb4',
      supportBigNumbers: true,
      connectTimeout: 10_000,
      enableKeepAlive: true,
    };
    const pool = mysql.createPool({ ...common, connectionLimit: conn.connectionLimit ?? 4 });
    // Keep the pool from crashing the process on a dropped idle connection; the next call reconnects.
    pool.on('connection', (c) => c.on('error', () => {}));
    const setup = ['SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED'];
    if (opts.lockWaitTimeoutSec !== undefined) {
      setup.push(
        `SET SESSION innodb_lock_wait_timeout = ${Math.max(1, Math.floor(opts.lockWaitTimeoutSec))}`,
      );
    }
    const scope = opts.scope ?? 'default';
    const store = new MySqlStore(
      pool,
      storedKey(scope),
      scope,
      scopeLockName(conn.database, scope),
      () => mysql.createConnection(common),
      setup,
      { ...DEFAULT_RETRY, ...opts.retry },
      where,
      resolveClaims(scope, opts.claims),
    );
    try {
      await store.migrate(conn.database);
    } catch (cause) {
      await pool.end().catch(() => {});
      throw storeFailed('cannot open the MySQL state store', cause, where);
    }
    await store.fillActiveUntil({ ...ACTIVE_UNTIL_FILL, ...opts.fillActiveUntil });
    return store;
  }

  /** Transactions redone after deadlocks and lock wait timeouts since open. */
  get contentionStats(): Readonly<ContentionStats> {
    return { ...this.contention };
  }

  private async migrate(database: string): Promise<void> {
    const conn = await this.connection();
    // Server-wide named lock (64 characters at most): concurrent first opens migrate once.
    const lock = `hwaudit.migrate.${database}`.slice(0, 64);
    try {
      const [got] = await select<{ got: number | null }>(conn, 'SELECT GET_LOCK(?, 60) AS got', [lock]);
      if (got?.got !== 1) {
        throw new AuditError('STORE_FAILED', 'timed out waiting for the schema migration lock', {
          details: this.where,
        });
      }
      try {
        await conn.query(
          `CREATE TABLE IF NOT EXISTS schema_version (version INT NOT NULL, applied_at BIGINT NOT NULL,
             PRIMARY KEY (version)) ${TABLE}`,
        );
        const [row] = await select<{ v: number | null }>(
          conn,
          'SELECT MAX(version) AS v FROM schema_version',
        );
        const version = Number(row?.v ?? 0);
        if (version > MIGRATIONS.length) {
          throw new AuditError('STORE_FAILED', 'the state store was written by a newer version', {
            details: { ...this.where, version },
          });
        }
        for (let v = version; v < MIGRATIONS.length; v++) {
          for (const step of MIGRATIONS[v]!) {
            if (typeof step === 'string') await conn.query(step);
            else await step(conn);
          }
          await run(conn, 'INSERT INTO schema_version (version, applied_at) VALUES (?, ?)', [
            v + 1,
            Date.now(),
          ]);
        }
      } finally {
        await conn.query('SELECT RELEASE_LOCK(?)', [lock]);
      }
    } finally {
      conn.release();
    }
  }

  /**
   * Some of the fill of `active_until_ts` that schema 12 leaves to the opens, outside the migration
   * lock. A failure leaves it to the next open: reads take a null column from the row meanwhile.
   */
  private async fillActiveUntil(budget: ActiveUntilFill): Promise<void> {
    let conn: Connection | undefined;
    try {
      // A connection of its own, whose session bounds each statement: a row of the page locked by
      // another transaction, or a slow server, must not hold the open for the lock wait timeout.
      conn = await this.connectAlone();
      conn.on('error', () => {});
      for (const statement of this.sessionSetup) await conn.query(statement);
      await allowBackslashEscapes(conn);
      await boundStatements(conn, budget.ms);
      await fillActiveUntil(conn, budget);
    } catch {
      // Left to the next open.
    } finally {
      conn?.destroy();
    }
  }

  /** A pooled connection, set up for this store on first use. */
  private async connection(): Promise<PoolConnection> {
    const conn = await this.pool.getConnection();
    if (!this.ready.has(conn.connection)) {
      try {
        for (const statement of this.sessionSetup) await conn.query(statement);
        await allowBackslashEscapes(conn);
      } catch (cause) {
        conn.destroy();
        throw cause;
      }
      this.ready.add(conn.connection);
    }
    return conn;
  }

  /** Runs `work` in one transaction, redone from the start after a deadlock or lock wait timeout. */
  private async transaction<T>(what: string, work: (conn: PoolConnection) => Promise<T>): Promise<T> {
    let reconnects = 0;
    for (let attempt = 1; ; attempt++) {
      let conn: PoolConnection | undefined;
      let committing = false;
      try {
        conn = await this.connection();
        await conn.query('START TRANSACTION');
        const result = await work(conn);
        committing = true;
        await conn.query('COMMIT');
        conn.release();
        return result;
      } catch (cause) {
        if (conn) {
          // 1205 rolls back only the statement: the whole transaction must go before a retry.
          const c = conn;
          await c.query('ROLLBACK').then(
            () => c.release(),
            () => c.destroy(),
          );
        }
        // A connection lost before COMMIT took its transaction with it: redo it on a fresh one. Lost
        // during COMMIT, the outcome is unknown: surface it (the batch is redone on redelivery).
        if (conn && !committing && connectionLost(cause) && reconnects < MAX_RECONNECTS) {
          reconnects++;
          continue;
        }
        const n = errno(cause);
        if ((n === ER_LOCK_DEADLOCK || n === ER_LOCK_WAIT_TIMEOUT) && attempt < this.retry.attempts) {
          if (n === ER_LOCK_DEADLOCK) this.contention.deadlocks++;
          else this.contention.lockWaits++;
          const ceiling = Math.min(this.retry.maxMs, this.retry.baseMs * 2 ** (attempt - 1));
          await sleep(ceiling / 2 + Math.random() * (ceiling / 2));
          continue;
        }
        throw storeFailed(`state store ${what} failed`, cause, { attempts: attempt });
      }
    }
  }

  /** A read outside any transaction (autocommit: a consistent snapshot, no locks). */
  private async read<T>(what: string, sql: string, params: unknown[] = []): Promise<T[]> {
    for (let reconnects = 0; ; reconnects++) {
      let conn: PoolConnection | undefined;
      try {
        conn = await this.connection();
        const rows = await select<T>(conn, sql, params);
        conn.release();
        return rows;
      } catch (cause) {
        const lost = conn !== undefined && connectionLost(cause);
        if (lost) conn?.destroy();
        else conn?.release();
        if (lost && reconnects < MAX_RECONNECTS) continue;
        throw storeFailed(`state store ${what} failed`, cause);
      }
    }
  }

  async loadEntities(): Promise<EntityRow[]> {
    const rows = await this.read<{ kind: Buffer; k: Buffer; long_key: string | null; body: string }>(
      'load',
      'SELECT kind, k, long_key, body FROM entity WHERE scope = ?',
      [this.scope],
    );
    return rows.map((r) => ({
      kind: r.kind.toString('utf8'),
      key: r.long_key ?? r.k.toString('utf8'),
      body: JSON.parse(r.body),
    }));
  }

  async loadPending(): Promise<CanonicalEvent[]> {
    const rows = await this.read<{ body: string }>('load', 'SELECT body FROM pending WHERE scope = ?', [
      this.scope,
    ]);
    return rows.map((r) => JSON.parse(r.body) as CanonicalEvent);
  }

  async loadSessions(since: number): Promise<Session[]> {
    const rows = await this.read<{ body: string; last_activity_ts: number | string | null }>(
      'load',
      restoredSessionsSql('is_open', 'body, last_activity_ts'),
      [since],
    );
    return rows.map((r) => {
      const s = JSON.parse(r.body) as Session;
      if (r.last_activity_ts !== null) s[LAST_ACTIVITY] = Number(r.last_activity_ts);
      return s;
    });
  }

  async filterSeen(events: { key: string; ts: number }[]): Promise<Set<string>> {
    const wanted = seenBuckets(events);
    const found = new Set<string>();
    for (const part of chunks([...wanted.keys()], CHUNK_ROWS)) {
      const rows = await this.read<{ bucket: number; seen_keys: string }>(
        'lookup',
        'SELECT bucket, seen_keys FROM seen WHERE scope = ? AND bucket IN (?)',
        [this.scope, part],
      );
      for (const row of rows) {
        const stored = new Set(JSON.parse(row.seen_keys) as string[]);
        for (const key of wanted.get(Number(row.bucket)) ?? []) if (stored.has(key)) found.add(key);
      }
    }
    return found;
  }

  async knownAlerts(keys: string[]): Promise<Set<string>> {
    return this.existing('SELECT id AS k FROM alerts WHERE id IN (?)', keys);
  }

  async loadAlerts(keys: string[]): Promise<Alert[]> {
    const out: Alert[] = [];
    for (const part of chunks([...new Set(keys)], CHUNK_ROWS)) {
      const rows = await this.read<AlertRow>(
        'load',
        'SELECT body, occurrences, last_time FROM alerts WHERE id IN (?) ORDER BY alert_time, id',
        [part.map(storedKey)],
      );
      for (const r of rows) out.push(mergeAlert(r.body, r.occurrences, r.last_time));
    }
    return out;
  }

  private async existing(sql: string, keys: string[], params: unknown[] = []): Promise<Set<string>> {
    const found = new Set<string>();
    for (const part of chunks([...new Set(keys)], CHUNK_ROWS)) {
      const asked = new Map<string, string>();
      const values: StoredKey[] = [];
      for (const key of part) {
        const value = storedKey(key);
        asked.set(lookupForm(value), key);
        values.push(value);
      }
      const rows = await this.read<{ k: Buffer }>('lookup', sql, [...params, values]);
      for (const r of rows) {
        const key = asked.get(lookupFormOfColumn(r.k));
        if (key !== undefined) found.add(key);
      }
    }
    return found;
  }

  async commit(batch: CommitBatch): Promise<CommitResult> {
    let rows: ReturnType<MySqlStore['commitRows']>;
    try {
      rows = this.commitRows(batch);
    } catch (cause) {
      throw storeFailed('state store commit failed', cause);
    }
    const { upserts, deletes, pendingPut, pendingRemove, seen, sessions, alerts, updates, dead, claim } =
      rows;
    const scope = this.scope;
    const newTables = this.tablesWritten.pending(sessions);
    const renewal = this.renewal.due(batch.renew);
    if (renewal !== undefined) this.renewal.renewed(renewal);
    const result = await this.transaction('commit', async (conn) => {
      await this.checkHolds(conn);
      const newAlerts = new Set<string>();
      if (upserts.length > 0) {
        await insertRows(
          conn,
          'INSERT INTO entity (scope, kind, k, long_key, body)',
          upserts,
          'ON DUPLICATE KEY UPDATE long_key = VALUES(long_key), body = VALUES(body)',
        );
      }
      for (const [kind, keys] of deletes) {
        for (const part of chunks(keys, CHUNK_ROWS)) {
          await run(conn, 'DELETE FROM entity WHERE scope = ? AND kind = ? AND k IN (?)', [
            scope,
            kind,
            part,
          ]);
        }
      }
      if (pendingPut.length > 0) {
        await insertRows(
          conn,
          'INSERT INTO pending (scope, k, ts, body)',
          pendingPut,
          'ON DUPLICATE KEY UPDATE ts = VALUES(ts), body = VALUES(body)',
        );
      }
      for (const part of chunks(pendingRemove, CHUNK_ROWS)) {
        await run(conn, 'DELETE FROM pending WHERE scope = ? AND k IN (?)', [scope, part]);
      }
      if (seen.length > 0) await insertRows(conn, 'INSERT INTO seen (scope, bucket, seen_keys)', seen);
      if (batch.pruneSeenBefore !== undefined) {
        await run(conn, 'DELETE FROM seen WHERE scope = ? AND bucket < ?', [
          scope,
          seenBucket(batch.pruneSeenBefore),
        ]);
      }
      await putSessions(conn, sessions, newTables);
      // One statement per alert: its affected-row count says whether this commit stored it first.
      const alertNames = ALERT_COLUMNS.map((f) => f.name);
      for (const { k, key, a, body } of alerts) {
        const result = await run(
          conn,
          `INSERT IGNORE INTO alerts (id, rule, alert_time, body, occurrences, last_time, ${alertNames.join(', ')}, claimant, claimed_until)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            k,
            a.rule,
            recordTime(a),
            body,
            ...alertMerges(a),
            ALERT_COLUMNS.map((f) => f.value(a)),
            claim.claimant,
            claim.until,
          ],
        );
        if (result.affectedRows > 0) newAlerts.add(key);
      }
      for (const { k, u } of updates) {
        await run(conn, 'UPDATE alerts SET occurrences = ?, last_time = ? WHERE id = ?', [
          u.occurrences,
          u.lastTime,
          k,
        ]);
      }
      if (dead.length > 0)
        await insertRows(conn, 'INSERT INTO dead_letters (body, stored_time, stored_ts)', dead);
      if (batch.pruneLedgerBefore !== undefined) {
        const before = batch.pruneLedgerBefore;
        // A session that connected before the horizon, unless still open and active since the other.
        const gone = [before, batch.keepOpenSince ?? before];
        await run(
          conn,
          'DELETE t FROM session_tables t JOIN sessions s ON s.id = t.session_id WHERE s.connect_ts < ? AND (s.is_open = 0 OR s.last_activity_ts < ?)',
          gone,
        );
        await run(
          conn,
          'DELETE FROM sessions WHERE connect_ts < ? AND (is_open = 0 OR last_activity_ts < ?)',
          gone,
        );
        const pruned = prunedAlertsParams(before);
        await run(
          conn,
          `DELETE d FROM deliveries d JOIN alerts a ON a.id = d.alert_id WHERE ${prunedAlerts('a')}`,
          pruned,
        );
        await run(conn, `DELETE a FROM alerts a WHERE ${prunedAlerts('a')}`, pruned);
        await run(conn, 'DELETE FROM dead_letters WHERE stored_ts < ?', [before]);
      }
      if (renewal === undefined) return { newAlerts };
      return { newAlerts, lost: await this.renew(conn, { ...renewal, keys: batch.renew ?? [] }) };
    });
    this.tablesWritten.committed(batch);
    return result;
  }

  /**
   * A commit's rows, built and sorted once outside the transaction so that a retry redoes only
   * SQL. Sorting by key makes concurrent writers lock shared rows in the same order.
   */
  private commitRows(batch: CommitBatch) {
    const scope = this.scope;
    const now = Date.now();
    const upserts: [StoredKey, string, StoredKey, string | null, string][] = [];
    const deletes = new Map<string, StoredKey[]>();
    for (const e of batch.entities) {
      const k = storedKey(e.key);
      const kind = checkedKind(e.kind);
      if (e.body === null) {
        const keys = deletes.get(kind);
        if (keys) keys.push(k);
        else deletes.set(kind, [k]);
      } else upserts.push([scope, kind, k, typeof k === 'string' ? null : e.key, JSON.stringify(e.body)]);
    }
    upserts.sort((a, b) => compareKeys(a[1], b[1]) || compareKeys(a[2], b[2]));
    for (const keys of deletes.values()) keys.sort(compareKeys);
    return {
      upserts,
      deletes,
      pendingPut: batch.pending.put
        .map((ev) => ({ k: storedKey(ev.key), ts: ev.ts, body: JSON.stringify(ev) }))
        .sort(byKey)
        .map((p) => [scope, p.k, p.ts, p.body]),
      pendingRemove: batch.pending.remove.map(storedKey).sort(compareKeys),
      seen: [...seenBuckets(batch.seen)]
        .sort(([a], [b]) => a - b)
        .map(([bucket, keys]) => [scope, bucket, JSON.stringify(keys)]),
      // Full rows: one multi-row upsert costs less here than an UPDATE per counted session.
      sessions: [...batch.sessions, ...batch.counted],
      alerts: batch.alerts
        .map((a) => {
          const key = recordKey(a);
          return { k: storedKey(key), key, a, body: JSON.stringify(a) };
        })
        .sort(byKey),
      updates: batch.alertUpdates.map((u) => ({ k: storedKey(u.id), u })).sort(byKey),
      dead: batch.deadLetters.map((d) => deadLetterRow(d, now)),
      // The claim of the records this commit stores first.
      claim: newClaim(this.claims),
    };
  }

  async markDelivered(sink: string, ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const s = storedKey(sink);
    const now = Date.now();
    const rows = ids
      .map(storedKey)
      .sort(compareKeys)
      .map((k) => [k, s, now]);
    await this.transaction('delivery record', (conn) =>
      insertRows(conn, 'INSERT IGNORE INTO deliveries (alert_id, sink, delivered_ts)', rows),
    );
  }

  async delivered(sink: string, keys: string[]): Promise<Set<string>> {
    return this.existing('SELECT alert_id AS k FROM deliveries WHERE sink = ? AND alert_id IN (?)', keys, [
      storedKey(sink),
    ]);
  }

  /**
   * Finds the records to take without locks (usually none), then claims them in a transaction
   * that locks them first and checks their claims again (see top); reads their bodies last.
   */
  async undelivered(sink: string): Promise<Alert[]> {
    const now = this.claims.now();
    // The keys alone (a secondary index holds them, not the records), then the claims of those found.
    const ids = await this.read<{ id: Buffer }>('load', `SELECT id FROM alerts a WHERE ${NOT_DELIVERED}`, [
      storedKey(sink),
    ]);
    const rows: ClaimRow[] = [];
    for (const part of chunks(
      ids.map((r) => r.id),
      CHUNK_ROWS,
    ))
      rows.push(
        ...(await this.read<ClaimRow>(
          'load',
          'SELECT id, claimant, claimed_until FROM alerts WHERE id IN (?)',
          [part],
        )),
      );
    const taken = await this.claim(rows, now);
    await this.storeLooks([sink], now, { full: true });
    return this.loadUndelivered(sink, taken);
  }

  async lapsed(sinks: readonly string[], { opening = false } = {}): Promise<Map<string, Alert[]>> {
    const out = new Map<string, Alert[]>();
    const wanted = new Map<string, ClaimRow[]>();
    const stored = await this.storedLooks(sinks.filter((s) => !this.looked.has(s)));
    const now = this.claims.now();
    for (const sink of sinks) {
      const window = lookWindow(this.looked.get(sink), stored.get(sink), now, opening);
      if (window === undefined) {
        out.set(sink, await this.undelivered(sink));
        continue;
      }
      // By the claims' end (alerts_claimed), then a key lookup in deliveries for each.
      wanted.set(
        sink,
        await this.read<ClaimRow>(
          'load',
          `SELECT id, claimant, claimed_until FROM alerts a
             WHERE (claimed_until = ? OR (claimed_until > ? AND claimed_until <= ?)) AND ${NOT_DELIVERED}`,
          [GIVEN_UP, window.from, window.to, storedKey(sink)],
        ),
      );
    }
    if (wanted.size === 0) return out;
    await this.transaction('delivery claim', (conn) =>
      run(conn, clearReceivedGivenUpSql(sinks.length, 'a'), [now, GIVEN_UP, ...sinks.map(storedKey)]),
    );
    const rows = new Map<string, ClaimRow>();
    for (const list of wanted.values()) for (const r of list) rows.set(r.id.toString('hex'), r);
    const taken = new Set((await this.claim([...rows.values()], now)).map((id) => id.toString('hex')));
    await this.storeLooks([...wanted.keys()], now);
    for (const [sink, list] of wanted)
      out.set(
        sink,
        await this.loadUndelivered(
          sink,
          list.filter((r) => taken.has(r.id.toString('hex'))).map((r) => r.id),
        ),
      );
    return out;
  }

  /** The time of the last look stored for each of `sinks` that has one (see `lapsed`). */
  private async storedLooks(sinks: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (sinks.length === 0) return out;
    const asked = new Map(sinks.map((s) => [lookupForm(storedKey(s)), s]));
    const rows = await this.read<{ sink: Buffer; looked_until: number | string }>(
      'load',
      'SELECT sink, looked_until FROM delivery_looks WHERE sink IN (?)',
      [sinks.map(storedKey)],
    );
    for (const r of rows) {
      const sink = asked.get(lookupFormOfColumn(r.sink));
      if (sink !== undefined) out.set(sink, Number(r.looked_until));
    }
    return out;
  }

  /**
   * Notes, here and in the store, that a look for `sinks` took what it could up to `now`: the later
   * time stored is kept, but a `full` look (at every record) stores its own, so that a time stored
   * from a clock far ahead (see `lookWindow`) is gone once that clock is.
   */
  private async storeLooks(sinks: readonly string[], now: number, { full = false } = {}): Promise<void> {
    const rows = sinks
      .map(storedKey)
      .sort(compareKeys)
      .map((k) => [k, now]);
    await this.transaction('delivery claim', (conn) =>
      insertRows(
        conn,
        'INSERT INTO delivery_looks (sink, looked_until)',
        rows,
        `ON DUPLICATE KEY UPDATE looked_until = ${full ? 'VALUES(looked_until)' : 'GREATEST(looked_until, VALUES(looked_until))'}`,
      ),
    );
    for (const sink of sinks) this.looked.set(sink, now);
  }

  /** Claims for this instance those of `rows` it may take, locking and checking them again; returns their ids. */
  private async claim(rows: readonly ClaimRow[], now: number): Promise<Buffer[]> {
    const { until } = newClaim(this.claims, now);
    const free = (list: readonly ClaimRow[]) =>
      list.filter((r) => claimable(rowClaim(r), this.claims, now)).map((r) => r.id);
    const candidates = free(rows).sort(compareKeys);
    if (candidates.length === 0) return [];
    return this.transaction('delivery claim', async (conn) => {
      const ids: Buffer[] = [];
      for (const part of chunks(candidates, CHUNK_ROWS)) {
        const locked = await select<ClaimRow>(
          conn,
          'SELECT id, claimant, claimed_until FROM alerts WHERE id IN (?) ORDER BY id FOR UPDATE',
          [part],
        );
        const mine = free(locked);
        if (mine.length > 0)
          await run(conn, 'UPDATE alerts SET claimant = ?, claimed_until = ? WHERE id IN (?)', [
            this.claims.claimant,
            until,
            mine,
          ]);
        ids.push(...mine);
      }
      return ids;
    });
  }

  /** The records of these ids that `sink` has not received, in time order. */
  private async loadUndelivered(sink: string, ids: readonly Buffer[]): Promise<Alert[]> {
    const out: { time: Buffer; id: Buffer; alert: Alert }[] = [];
    for (const part of chunks(ids, CHUNK_ROWS)) {
      const rows = await this.read<AlertRow>(
        'load',
        `SELECT id, alert_time, body, occurrences, last_time FROM alerts a WHERE id IN (?) AND ${NOT_DELIVERED}`,
        [part, storedKey(sink)],
      );
      for (const r of rows)
        out.push({ time: r.alert_time, id: r.id, alert: mergeAlert(r.body, r.occurrences, r.last_time) });
    }
    return out
      .sort((a, b) => Buffer.compare(a.time, b.time) || Buffer.compare(a.id, b.id))
      .map((r) => r.alert);
  }

  async renewClaims(keys: string[]): Promise<Set<string>> {
    // Not noted as the commits' renewal (RenewalClock): these may be some of the claims only (a
    // digest's due records), and the next commit renews all of them.
    const claim = newClaim(this.claims);
    return this.transaction('delivery claim', (conn) => this.renew(conn, { ...claim, keys }));
  }

  /**
   * Renews, in the transaction of `conn`, the claims of these records that are still this
   * instance's, locking them first; returns the keys it could not renew (another's, or gone).
   */
  private async renew(
    conn: PoolConnection,
    renewal: NewClaim & { keys: readonly string[] },
  ): Promise<Set<string>> {
    const found = new Map<string, string | null>();
    const asked = new Map<string, string>();
    for (const key of renewal.keys) asked.set(lookupForm(storedKey(key)), key);
    const ids = [...new Set(renewal.keys)].map(storedKey).sort(compareKeys);
    for (const part of chunks(ids, CHUNK_ROWS)) {
      const locked = await select<ClaimRow>(
        conn,
        'SELECT id, claimant, claimed_until FROM alerts WHERE id IN (?) ORDER BY id FOR UPDATE',
        [part],
      );
      for (const r of locked) found.set(asked.get(lookupFormOfColumn(r.id)) ?? '', r.claimant);
      await run(conn, 'UPDATE alerts SET claimed_until = ? WHERE id IN (?) AND claimant = ?', [
        renewal.until,
        part,
        renewal.claimant,
      ]);
    }
    return lostClaims(renewal.keys, found, this.claims);
  }

  async releaseClaims(keys: string[]): Promise<void> {
    for (const part of chunks([...new Set(keys)].map(storedKey).sort(compareKeys), CHUNK_ROWS))
      await this.transaction('delivery claim', (conn) =>
        run(conn, 'UPDATE alerts SET claimed_until = ? WHERE id IN (?) AND claimant = ?', [
          GIVEN_UP,
          part,
          this.claims.claimant,
        ]),
      );
  }

  /**
   * Pages by (connect_ts, id) so that a large ledger is never held in memory at once. An `active`
   * query reads first the sessions that connected before `from` and were active at it or after,
   * through the key on (active_until_ts, connect_ts): its entries say which without reading a row.
   */
  async *sessions(query: LedgerQuery = {}): AsyncIterable<Session> {
    const { active, ...rest } = query;
    if (active && rest.from !== undefined) {
      const carried = carriedSessionConditions(rest.from, rest.dbSystem);
      for await (const s of this.sessionPages(
        'sessions FORCE INDEX (sessions_active)',
        carried.conditions,
        carried.params,
        true,
      ))
        if (carriedActive(s, rest.from)) yield s;
    }
    const { conditions, params } = ledgerConditions(rest, { ts: 'connect_ts', db: 'db' });
    yield* this.sessionPages('sessions', conditions, params, active === true);
  }

  /** The sessions of `source` the conditions select, a page at a time, with their last activity when `withLast`. */
  private async *sessionPages(
    source: string,
    conditions: string[],
    params: (string | number)[],
    withLast: boolean,
  ): AsyncIterable<Session> {
    let after: { ts: number; id: Buffer } | undefined;
    for (;;) {
      const where = after ? [...conditions, '(connect_ts > ? OR (connect_ts = ? AND id > ?))'] : conditions;
      const rows = await this.read<{
        id: Buffer;
        connect_ts: number;
        body: string;
        last_activity_ts: number | string | null;
      }>(
        'read',
        `SELECT id, connect_ts, body, last_activity_ts FROM ${source} ${whereClause(where)} ORDER BY connect_ts, id LIMIT ${PAGE}`,
        after ? [...params, after.ts, after.ts, after.id] : params,
      );
      for (const r of rows) {
        const s = JSON.parse(r.body) as Session;
        if (withLast && r.last_activity_ts !== null) s[LAST_ACTIVITY] = Number(r.last_activity_ts);
        yield s;
      }
      const last = rows.at(-1);
      if (!last || rows.length < PAGE) return;
      after = { ts: Number(last.connect_ts), id: last.id };
    }
  }

  async sessionCounts(): Promise<SessionCount[]> {
    const rows = await this.read<SessionCount>('read', SESSION_COUNTS_SQL);
    return rows.map((r) => ({ ...r, sessions: Number(r.sessions) }));
  }

  async *alerts(query: LedgerQuery = {}): AsyncIterable<Alert> {
    const columns = { ts: 'finding_ts', db: 'db_system_id', rule: 'rule' };
    if (query.active && query.from !== undefined) {
      const { from, ...rest } = query;
      const repeated = repeatedAlertsQuery('mysql', from);
      const others = ledgerConditions(rest, columns);
      yield* this.alertPages(
        repeated.source,
        [...repeated.conditions, ...others.conditions],
        [...repeated.params, ...others.params],
      );
    }
    const { conditions, params } = ledgerConditions(query, columns);
    yield* this.alertPages('alerts', conditions, params);
  }

  /** Alerts of `source` on the conditions, by time and id, a page at a time. */
  private async *alertPages(source: string, conditions: string[], params: unknown[]): AsyncIterable<Alert> {
    let after: { time: Buffer; id: Buffer } | undefined;
    for (;;) {
      const where = after ? [...conditions, '(alert_time > ? OR (alert_time = ? AND id > ?))'] : conditions;
      const rows = await this.read<AlertRow>(
        'read',
        `SELECT id, alert_time, body, occurrences, last_time FROM ${source} ${whereClause(where)}
         ORDER BY alert_time, id LIMIT ${PAGE}`,
        after ? [...params, after.time, after.time, after.id] : params,
      );
      for (const r of rows) yield mergeAlert(r.body, r.occurrences, r.last_time);
      const last = rows.at(-1);
      if (!last || rows.length < PAGE) return;
      after = { time: last.alert_time, id: last.id };
    }
  }

  async *deadLetters(query: DeadLetterQuery = {}): AsyncIterable<StoredDeadLetter> {
    const { conditions, params } = ledgerConditions(query, { ts: 'stored_ts' });
    for (let after = 0; ; ) {
      const rows = await this.read<DeadLetterRow>(
        'read',
        `SELECT seq, stored_time, body FROM dead_letters WHERE ${['seq > ?', ...conditions].join(' AND ')}
         ORDER BY seq LIMIT ${PAGE}`,
        [after, ...params],
      );
      for (const r of rows) yield storedDeadLetter(r);
      const last = rows.at(-1);
      if (!last || rows.length < PAGE) return;
      after = Number(last.seq);
    }
  }

  async putSnapshot(snapshot: Snapshot, pruneBefore?: number): Promise<void> {
    const taken = Date.parse(snapshot.time);
    const id = storedKey(snapshot.id);
    await this.transaction('snapshot', async (conn) => {
      await run(
        conn,
        'INSERT INTO snapshots (id, taken_at, body) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE taken_at = VALUES(taken_at), body = VALUES(body)',
        [id, taken, JSON.stringify(snapshot)],
      );
      if (pruneBefore !== undefined)
        await run(conn, 'DELETE FROM snapshots WHERE taken_at < ? AND id <> ?', [
          Math.min(pruneBefore, taken),
          id,
        ]);
    });
  }

  async snapshots(since?: number): Promise<Snapshot[]> {
    const rows = await this.read<{ body: string }>(
      'load',
      since === undefined
        ? 'SELECT body FROM snapshots ORDER BY taken_at DESC, id DESC LIMIT 1'
        : 'SELECT body FROM snapshots WHERE taken_at >= ? ORDER BY taken_at, id',
      since === undefined ? [] : [since],
    );
    return rows.map((r) => readSnapshot(r.body));
  }

  /**
   * Takes GET_LOCK on a connection of its own (see top), in waits of whole seconds and then
   * short polls, so that the wait ends within LOCK_POLL_MS of `timeoutMs` whatever the server's
   * timeout granularity.
   */
  async lockScope(opts: LockScopeOptions): Promise<ScopeLock> {
    if (this.closed) throw new AuditError('STORE_FAILED', 'the state store is closed');
    const scope = { scope: this.scopeName };
    const deadline = Date.now() + Math.max(0, opts.timeoutMs);
    let conn: Connection;
    try {
      conn = await this.connectAlone();
    } catch (cause) {
      throw storeFailed('cannot connect for the scope lock', cause, { ...this.where, ...scope });
    }
    const hold: Hold = { connectionId: 0, lost: false };
    let checkEveryMs = LOCK_CHECK_MAX_MS;
    // A lost connection has lost the lock with it (the server released it).
    conn.on('error', () => {
      hold.lost = true;
    });
    conn.on('end', () => {
      hold.lost = true;
    });
    try {
      await allowBackslashEscapes(conn);
      const [session] = await select<{ id: number | string; idle: number | string }>(
        conn,
        'SELECT CONNECTION_ID() AS id, @@SESSION.wait_timeout AS idle',
      );
      hold.connectionId = Number(session?.id);
      checkEveryMs = Math.min(LOCK_CHECK_MAX_MS, (Number(session?.idle) * 1000) / 3) || LOCK_CHECK_MAX_MS;
      for (;;) {
        const left = deadline - Date.now();
        const wait = left >= 1000 ? Math.floor(left / 1000) : 0;
        const [row] = await select<{ got: number | string | null }>(conn, 'SELECT GET_LOCK(?, ?) AS got', [
          this.lockName,
          wait,
        ]);
        const got = row?.got === null || row?.got === undefined ? null : Number(row.got);
        if (got === 1) break;
        // NULL: an error on the server (out of memory, the thread killed).
        if (got !== 0)
          throw new AuditError('STORE_FAILED', 'the scope lock could not be taken', { details: scope });
        const rest = deadline - Date.now();
        if (rest <= 0) {
          const [holder] = await select<LockHolder>(
            conn,
            'SELECT pid, host, since FROM holders WHERE scope = ?',
            [storedKey(this.scopeName)],
          );
          throw scopeBusy(this.scopeName, holder ? { ...holder, pid: Number(holder.pid) } : undefined);
        }
        if (wait === 0) await sleep(Math.min(LOCK_POLL_MS, rest));
      }
      const me = thisHolder();
      await run(conn, 'REPLACE INTO holders (scope, pid, host, since) VALUES (?, ?, ?, ?)', [
        storedKey(this.scopeName),
        me.pid,
        me.host.slice(0, 255),
        me.since,
      ]);
    } catch (cause) {
      conn.destroy();
      throw storeFailed('the scope lock could not be taken', cause, scope);
    }
    const stopChecks = keepLock(conn, this.lockName, hold, checkEveryMs);
    let released: Promise<void> | undefined;
    const release = () => {
      released ??= (async () => {
        stopChecks();
        this.holds.delete(hold);
        if (hold.lost) {
          conn.destroy();
          return;
        }
        try {
          await conn.query('DELETE FROM holders WHERE scope = ? AND pid = ? AND host = ?', [
            storedKey(this.scopeName),
            process.pid,
            hostname().slice(0, 255),
          ]);
          await conn.query('SELECT RELEASE_LOCK(?)', [this.lockName]);
          await conn.end();
        } catch {
          // Ending the connection frees the lock on the server as well.
          conn.destroy();
        }
      })();
      return released;
    };
    this.holds.set(hold, release);
    return { release };
  }

  /**
   * Inside a commit's transaction: when this store holds its scope lock, checks that the lock is
   * still held by its connection, so that an instance whose lock connection died (and whose lock
   * another instance may have taken since) does not commit state loaded under the lost lock. A
   * loss between this check and COMMIT is not caught: the window is one round trip.
   */
  private async checkHolds(conn: Conn): Promise<void> {
    for (const hold of this.holds.keys()) {
      if (!hold.lost) {
        const [row] = await select<{ owner: number | string | null }>(
          conn,
          'SELECT IS_USED_LOCK(?) AS owner',
          [this.lockName],
        );
        if (row?.owner !== null && row?.owner !== undefined && Number(row.owner) === hold.connectionId)
          continue;
        hold.lost = true;
      }
      throw new AuditError('STORE_FAILED', 'the scope lock was lost before the commit', {
        details: { scope: this.scopeName },
      });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.holds.values()].map((release) => release()));
    await this.pool.end();
  }
}
