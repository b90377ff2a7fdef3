// SQLite adapter of the state store port (better-sqlite3, WAL, one transaction per commit).
//
// Scope lock (lockScope), in two layers. In the process: a mutex per database file (its real
// path) and scope, shared by every SqliteStore of the process, with waiters served in arrival
// order. Across processes: a row per scope in `holders` (PID, host, since, heartbeat), taken in a
// write transaction when no live process holds it. A holder on this host is alive while its PID
// is; one on another host (a file on shared storage) while it refreshes its heartbeat (every
// HEARTBEAT_MS; stale after STALE_MS). A process killed with SIGKILL leaves its row, which the
// next one takes over at once on the same host. A `:memory:` store is private to its instance,
// and so is its lock.
import { existsSync, realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { type Alert, recordKey, recordTime } from '../../schemas/alert.js';
import type { CanonicalEvent } from '../../schemas/events.js';
import type { Session } from '../../schemas/session.js';
import type { Snapshot } from '../../schemas/snapshot.js';
import { AuditError } from '../errors.js';
import { toIso } from '../time.js';
import type { EntityRow } from './entity-cache.js';
import {
  ALERT_COLUMNS,
  COUNT_COLUMNS,
  type CountColumns,
  columnType,
  type LedgerField,
  type LedgerQuery,
  ledgerConditions,
  ledgerViews,
  readSession,
  SESSION_COLUMNS,
  SessionTablesWritten,
  sessionTableRows,
} from './ledger.js';
import {
  type CommitBatch,
  type CommitResult,
  chunks,
  type LockHolder,
  type LockScopeOptions,
  mergeAlert,
  readSnapshot,
  type ScopeLock,
  SEEN_BUCKET_MS,
  type StateStore,
  scopeBusy,
  seenBuckets,
  thisHolder,
} from './state-store.js';

/** Each entry upgrades the schema by one version, in one transaction; never edit a released one. */
const MIGRATIONS: (string | ((db: Database.Database) => void))[] = [
  `CREATE TABLE entity (scope TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (scope, kind, key)) WITHOUT ROWID;
   CREATE TABLE pending (scope TEXT NOT NULL, key TEXT NOT NULL, ts INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (scope, key)) WITHOUT ROWID;
   CREATE TABLE seen (id INTEGER PRIMARY KEY, scope TEXT NOT NULL, bucket INTEGER NOT NULL, keys TEXT NOT NULL);
   CREATE INDEX seen_bucket ON seen (scope, bucket);
   CREATE TABLE sessions (id TEXT PRIMARY KEY, db TEXT NOT NULL, connect_ts INTEGER NOT NULL, open INTEGER NOT NULL, body TEXT NOT NULL);
   CREATE INDEX sessions_connect ON sessions (connect_ts);
   CREATE INDEX sessions_open ON sessions (open) WHERE open = 1;
   CREATE TABLE alerts (id TEXT PRIMARY KEY, rule TEXT NOT NULL, time TEXT NOT NULL, body TEXT NOT NULL,
                        occurrences INTEGER NOT NULL DEFAULT 1, last_time TEXT);
   CREATE INDEX alerts_time ON alerts (time, id);
   CREATE TABLE deliveries (alert_id TEXT NOT NULL, sink TEXT NOT NULL, PRIMARY KEY (alert_id, sink)) WITHOUT ROWID;
   CREATE TABLE dead_letters (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);`,
  `CREATE TABLE holders (scope TEXT PRIMARY KEY, pid INTEGER NOT NULL, host TEXT NOT NULL, since TEXT NOT NULL,
                         heartbeat INTEGER NOT NULL) WITHOUT ROWID;`,
  `CREATE TABLE snapshots (id TEXT PRIMARY KEY, taken_at INTEGER NOT NULL, body TEXT NOT NULL);
   CREATE INDEX snapshots_taken ON snapshots (taken_at);`,
  // The queryable ledger (shared/state/ledger.ts): typed columns, touched tables, delivery times, views.
  (db) => {
    const add = (table: string, fields: readonly LedgerField<never>[]) => {
      for (const f of fields) db.exec(`ALTER TABLE ${table} ADD COLUMN ${f.name} ${columnType(f, 'sqlite')}`);
    };
    add('sessions', SESSION_COLUMNS);
    add('alerts', ALERT_COLUMNS);
    db.exec(`ALTER TABLE deliveries ADD COLUMN delivered_ts INTEGER;
      CREATE TABLE session_tables (session_id TEXT NOT NULL, table_name TEXT NOT NULL,
                                   PRIMARY KEY (session_id, table_name)) WITHOUT ROWID;
      DROP INDEX sessions_connect;
      CREATE INDEX sessions_connect ON sessions (connect_ts, id);
      CREATE INDEX sessions_db_time ON sessions (db, connect_ts, id);
      CREATE INDEX sessions_person ON sessions (person_id, connect_ts);
      CREATE INDEX sessions_grant ON sessions (break_glass_grant) WHERE break_glass_grant IS NOT NULL;
      CREATE INDEX alerts_ts ON alerts (finding_ts);
      CREATE INDEX alerts_rule ON alerts (rule, finding_ts);
      CREATE INDEX alerts_db ON alerts (db_system_id, finding_ts);`);
    for (const v of ledgerViews('sqlite')) db.exec(`CREATE VIEW ${v.name} AS ${v.select}`);
    // Rows written before: their typed columns from their bodies, a page at a time.
    const writers = ledgerWriters(db);
    for (const [table, write] of [
      ['sessions', (body: string) => writers.session(JSON.parse(body) as Session)],
      ['alerts', (body: string) => writers.alertColumns(JSON.parse(body) as Alert)],
    ] as const) {
      const page = db.prepare<[number], { rowid: number; body: string }>(
        `SELECT rowid, body FROM ${table} WHERE rowid > ? ORDER BY rowid LIMIT 1000`,
      );
      for (let after = 0; ; ) {
        const rows = page.all(after);
        for (const r of rows) write(r.body);
        const last = rows.at(-1);
        if (!last) break;
        after = last.rowid;
      }
    }
  },
  // No change to the tables: from this version on, a session's count columns may be ahead of its
  // body (readSession), so an earlier version, which reads counts from bodies, must refuse the file.
  '',
];

/** Prepared statements that write the ledger's typed rows. */
function ledgerWriters(db: Database.Database) {
  const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');
  const sessionNames = SESSION_COLUMNS.map((f) => f.name);
  const putSession = db.prepare(
    `INSERT INTO sessions (id, db, connect_ts, open, body, ${sessionNames.join(', ')})
     VALUES (${placeholders(5 + sessionNames.length)})
     ON CONFLICT (id) DO UPDATE SET open = excluded.open, body = excluded.body,
       ${sessionNames.map((n) => `${n} = excluded.${n}`).join(', ')}`,
  );
  const putCounts = db.prepare(
    'UPDATE sessions SET queries = ?, table_access = ?, change_user = ?, failed_statements = ? WHERE id = ?',
  );
  const putTable = db.prepare('INSERT OR IGNORE INTO session_tables (session_id, table_name) VALUES (?, ?)');
  const alertNames = ALERT_COLUMNS.map((f) => f.name);
  const putAlert = db.prepare(
    `INSERT OR IGNORE INTO alerts (id, rule, time, body, occurrences, last_time, ${alertNames.join(', ')})
     VALUES (?, ?, ?, ?, 1, NULL, ${placeholders(alertNames.length)})`,
  );
  const setAlert = db.prepare(
    `UPDATE alerts SET ${alertNames.map((n) => `${n} = ?`).join(', ')} WHERE id = ?`,
  );
  return {
    /** Upserts a session, and its touched tables unless `tables` is false (none is new). */
    session(s: Session, tables = true): void {
      const open = s.outcome === 'success' && s.disconnectTime === undefined ? 1 : 0;
      putSession.run(
        s.id,
        s.dbSystem.id,
        s.connectTs,
        open,
        JSON.stringify(s),
        ...SESSION_COLUMNS.map((f) => f.value(s)),
      );
      if (tables) for (const [id, table] of sessionTableRows([s])) putTable.run(id, table);
    },
    /**
     * Updates a stored session's counts alone (no body, no indexed column: a third of the cost of
     * the upsert); a session the ledger no longer holds (pruned) is written in full.
     */
    counts(s: Session): void {
      const { queries, tableAccess, changeUser, failedStatements } = s.counts;
      if (putCounts.run(queries, tableAccess, changeUser, failedStatements, s.id).changes === 0)
        this.session(s);
    },
    /** Stores the record (alert or resolution) unless it is stored already; true when it was new. */
    alert(a: Alert): boolean {
      return (
        putAlert.run(
          recordKey(a),
          a.rule,
          recordTime(a),
          JSON.stringify(a),
          ...ALERT_COLUMNS.map((f) => f.value(a)),
        ).changes > 0
      );
    },
    alertColumns(a: Alert): void {
      setAlert.run(...ALERT_COLUMNS.map((f) => f.value(a)), a.id);
    },
  };
}

/** How often a holder refreshes its row, and when a row of another host counts as abandoned. */
const HEARTBEAT_MS = 30_000;
const STALE_MS = 120_000;
/** Poll interval while another process holds the scope. */
const HOLDER_POLL_MS = 100;

type HolderRow = { pid: number; host: string; since: string; heartbeat: number };

/** Whether the process that wrote a holder row may still run. */
function holderAlive(row: HolderRow, me: LockHolder, now: number): boolean {
  if (row.host !== me.host) return now - row.heartbeat < STALE_MS;
  if (row.pid === me.pid) return false;
  try {
    process.kill(row.pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as { code?: string }).code === 'EPERM';
  }
}

const CHUNK = 500;
/** Rows per page of a ledger read. */
const PAGE = 1000;

type AlertRow = { body: string; occurrences: number; last_time: string | null };

/** One scope's in-process lock: held or not, and the waiters in arrival order. */
type Mutex = { held: boolean; waiters: (() => void)[] };

/** Per `<file>\0<scope>`: the locks of every SqliteStore in this process. */
const MUTEXES = new Map<string, Mutex>();

let memoryStores = 0;

function acquire(key: string, timeoutMs: number, scope: string): Promise<void> {
  let mutex = MUTEXES.get(key);
  if (mutex === undefined) {
    mutex = { held: false, waiters: [] };
    MUTEXES.set(key, mutex);
  }
  if (!mutex.held) {
    mutex.held = true;
    return Promise.resolve();
  }
  const m = mutex;
  return new Promise<void>((resolvePromise, reject) => {
    const grant = () => {
      clearTimeout(timer);
      resolvePromise();
    };
    const timer = setTimeout(
      () => {
        m.waiters.splice(m.waiters.indexOf(grant), 1);
        reject(scopeBusy(scope, undefined));
      },
      Math.max(0, timeoutMs),
    );
    m.waiters.push(grant);
  });
}

/** Hands the lock to the next waiter (it stays held), or frees it. */
function handOver(key: string): void {
  const mutex = MUTEXES.get(key);
  if (mutex === undefined) return;
  const next = mutex.waiters.shift();
  if (next) next();
  else MUTEXES.delete(key);
}

export class SqliteStore implements StateStore {
  private readonly db: Database.Database;
  /** The key of this store's scope lock (see top). */
  private readonly lockKey: string;
  /** Releases of the scope locks held through this store, run on close. */
  private readonly holds = new Set<() => Promise<void>>();
  private readonly tablesWritten = new SessionTablesWritten();

  private constructor(
    path: string,
    private readonly scope: string,
  ) {
    if (path !== ':memory:' && !existsSync(dirname(resolve(path))))
      throw new AuditError('USAGE', `the state file ${path} cannot be created: its folder does not exist`);
    try {
      this.db = new Database(path);
    } catch (cause) {
      throw stateFileError(path, cause);
    }
    try {
      // The busy timeout first: another process may be creating or migrating the same file.
      this.db.pragma(`busy_timeout = ${BUSY_MS}`);
      walMode(this.db);
      this.db.pragma('synchronous = NORMAL');
      // Checkpoint every ~40 MB of log rather than 4 MB: the ledger's indexes put every batch's
      // sessions on many pages, and a page rewritten by several batches is then copied back once
      // (replay spends about a third less time committing).
      this.db.pragma('wal_autocheckpoint = 10000');
      this.migrate(path);
    } catch (cause) {
      this.db.close();
      throw stateFileError(path, cause);
    }
    this.lockKey = `${this.db.memory ? `:memory:${++memoryStores}` : fileKey(path)}\u0000${scope}`;
  }

  /** Opens (creating if needed) a state file; `:memory:` for a throwaway store. */
  static open(path: string, opts: { scope?: string } = {}): SqliteStore {
    return new SqliteStore(path, opts.scope ?? 'default');
  }

  /**
   * Brings the schema up to date in one write transaction, taken before the version is read:
   * two processes opening a new file at once migrate it once, the second waiting for the first.
   */
  private migrate(path: string): void {
    const version = () => this.db.pragma('user_version', { simple: true }) as number;
    if (version() === MIGRATIONS.length) return;
    this.db
      .transaction(() => {
        const from = version();
        if (from > MIGRATIONS.length) {
          throw new AuditError(
            'STORE_FAILED',
            `the state file ${path} was written by a newer version of heatwave-iam-audit (schema ${from}); use that version, or a new state file`,
            { details: { version: from } },
          );
        }
        for (const migration of MIGRATIONS.slice(from)) {
          if (typeof migration === 'string') this.db.exec(migration);
          else migration(this.db);
        }
        this.db.pragma(`user_version = ${MIGRATIONS.length}`);
      })
      .immediate();
  }

  async loadEntities(): Promise<EntityRow[]> {
    return this.db
      .prepare<[string], { kind: string; key: string; body: string }>(
        'SELECT kind, key, body FROM entity WHERE scope = ?',
      )
      .all(this.scope)
      .map((r) => ({ kind: r.kind, key: r.key, body: JSON.parse(r.body) }));
  }

  async loadPending(): Promise<CanonicalEvent[]> {
    return this.db
      .prepare<[string], { body: string }>('SELECT body FROM pending WHERE scope = ?')
      .all(this.scope)
      .map((r) => JSON.parse(r.body) as CanonicalEvent);
  }

  async loadSessions(since: number): Promise<Session[]> {
    return this.db
      .prepare<[number], { body: string } & CountColumns>(
        `SELECT body, ${COUNT_COLUMNS} FROM sessions WHERE open = 1 OR connect_ts >= ? ORDER BY connect_ts, id`,
      )
      .all(since)
      .map(readSession);
  }

  async filterSeen(events: { key: string; ts: number }[]): Promise<Set<string>> {
    const wanted = seenBuckets(events);
    const found = new Set<string>();
    for (const part of chunks([...wanted.keys()], CHUNK)) {
      const rows = this.db
        .prepare<unknown[], { bucket: number; keys: string }>(
          `SELECT bucket, keys FROM seen WHERE scope = ? AND bucket IN (${part.map(() => '?').join(',')})`,
        )
        .all(this.scope, ...part);
      for (const row of rows) {
        const stored = new Set(JSON.parse(row.keys) as string[]);
        for (const key of wanted.get(row.bucket) ?? []) if (stored.has(key)) found.add(key);
      }
    }
    return found;
  }

  async knownAlerts(keys: string[]): Promise<Set<string>> {
    return this.existing('SELECT id AS k FROM alerts WHERE id IN', keys);
  }

  async loadAlerts(keys: string[]): Promise<Alert[]> {
    const out: Alert[] = [];
    for (const part of chunks([...new Set(keys)], CHUNK)) {
      const rows = this.db
        .prepare<string[], AlertRow>(
          `SELECT body, occurrences, last_time FROM alerts WHERE id IN (${part.map(() => '?').join(',')}) ORDER BY time, id`,
        )
        .all(...part);
      for (const r of rows) out.push(mergeAlert(r.body, r.occurrences, r.last_time));
    }
    return out;
  }

  private existing(sql: string, keys: string[], params: string[] = []): Set<string> {
    const found = new Set<string>();
    for (const part of chunks(keys, CHUNK)) {
      const rows = this.db
        .prepare<string[], { k: string }>(`${sql} (${part.map(() => '?').join(',')})`)
        .all(...params, ...part);
      for (const r of rows) found.add(r.k);
    }
    return found;
  }

  async commit(batch: CommitBatch): Promise<CommitResult> {
    const db = this.db;
    const scope = this.scope;
    const putEntity = db.prepare(
      'INSERT INTO entity (scope, kind, key, body) VALUES (?, ?, ?, ?) ON CONFLICT (scope, kind, key) DO UPDATE SET body = excluded.body',
    );
    const delEntity = db.prepare('DELETE FROM entity WHERE scope = ? AND kind = ? AND key = ?');
    const putPending = db.prepare(
      'INSERT OR REPLACE INTO pending (scope, key, ts, body) VALUES (?, ?, ?, ?)',
    );
    const delPending = db.prepare('DELETE FROM pending WHERE scope = ? AND key = ?');
    const putSeen = db.prepare('INSERT INTO seen (scope, bucket, keys) VALUES (?, ?, ?)');
    const ledger = ledgerWriters(db);
    const updAlert = db.prepare('UPDATE alerts SET occurrences = ?, last_time = ? WHERE id = ?');
    const putDead = db.prepare('INSERT INTO dead_letters (body) VALUES (?)');
    const newAlerts = new Set<string>();
    const newTables = this.tablesWritten.pending(batch.sessions);
    try {
      db.transaction(() => {
        for (const e of batch.entities) {
          if (e.body === null) delEntity.run(scope, e.kind, e.key);
          else putEntity.run(scope, e.kind, e.key, JSON.stringify(e.body));
        }
        for (const ev of batch.pending.put) putPending.run(scope, ev.key, ev.ts, JSON.stringify(ev));
        for (const key of batch.pending.remove) delPending.run(scope, key);
        for (const [bucket, keys] of seenBuckets(batch.seen))
          putSeen.run(scope, bucket, JSON.stringify(keys));
        if (batch.pruneSeenBefore !== undefined) {
          db.prepare('DELETE FROM seen WHERE scope = ? AND bucket < ?').run(
            scope,
            Math.floor(batch.pruneSeenBefore / SEEN_BUCKET_MS),
          );
        }
        for (const s of batch.sessions) ledger.session(s, newTables.has(s));
        for (const s of batch.counted) ledger.counts(s);
        for (const a of batch.alerts) if (ledger.alert(a)) newAlerts.add(recordKey(a));
        for (const u of batch.alertUpdates) updAlert.run(u.occurrences, u.lastTime, u.id);
        for (const d of batch.deadLetters) putDead.run(JSON.stringify(d));
        if (batch.pruneLedgerBefore !== undefined) {
          const before = batch.pruneLedgerBefore;
          db.prepare(
            'DELETE FROM session_tables WHERE session_id IN (SELECT id FROM sessions WHERE connect_ts < ?)',
          ).run(before);
          db.prepare('DELETE FROM sessions WHERE connect_ts < ?').run(before);
          db.prepare(
            'DELETE FROM deliveries WHERE alert_id IN (SELECT id FROM alerts WHERE finding_ts < ?)',
          ).run(before);
          db.prepare('DELETE FROM alerts WHERE finding_ts < ?').run(before);
        }
      }).immediate();
    } catch (cause) {
      throw new AuditError('STORE_FAILED', 'state store commit failed', { cause });
    }
    this.tablesWritten.committed(batch);
    return { newAlerts };
  }

  async markDelivered(sink: string, ids: string[]): Promise<void> {
    const put = this.db.prepare(
      'INSERT OR IGNORE INTO deliveries (alert_id, sink, delivered_ts) VALUES (?, ?, ?)',
    );
    const now = Date.now();
    this.db.transaction(() => {
      for (const id of ids) put.run(id, sink, now);
    })();
  }

  async delivered(sink: string, keys: string[]): Promise<Set<string>> {
    return this.existing('SELECT alert_id AS k FROM deliveries WHERE sink = ? AND alert_id IN', keys, [sink]);
  }

  async undelivered(sink: string): Promise<Alert[]> {
    return this.db
      .prepare<[string], AlertRow>(
        `SELECT body, occurrences, last_time FROM alerts a
         WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = a.id AND d.sink = ?) ORDER BY time, id`,
      )
      .all(sink)
      .map((r) => mergeAlert(r.body, r.occurrences, r.last_time));
  }

  /**
   * Pages by (connect_ts, id): an open iterator would keep the connection busy (better-sqlite3)
   * while the caller commits, and a page is what a reader of a large ledger holds at once.
   */
  async *sessions(query: LedgerQuery = {}): AsyncIterable<Session> {
    // The range starts where the page key does, so that each page seeks the (connect_ts, id) index.
    const { from, ...rest } = query;
    const { conditions, params } = ledgerConditions(rest, { ts: 'connect_ts', db: 'db' });
    const page = this.db.prepare<unknown[], { id: string; connect_ts: number; body: string } & CountColumns>(
      `SELECT id, connect_ts, body, ${COUNT_COLUMNS} FROM sessions
       WHERE ${['(connect_ts, id) > (?, ?)', ...conditions].join(' AND ')}
       ORDER BY connect_ts, id LIMIT ${PAGE}`,
    );
    for (let after = { ts: from ?? Number.MIN_SAFE_INTEGER, id: '' }; ; ) {
      const rows = page.all(after.ts, after.id, ...params);
      for (const r of rows) yield readSession(r);
      const last = rows.at(-1);
      if (!last || rows.length < PAGE) return;
      after = { ts: last.connect_ts, id: last.id };
    }
  }

  async *alerts(query: LedgerQuery = {}): AsyncIterable<Alert> {
    const { from, ...rest } = query;
    const { conditions, params } = ledgerConditions(rest, {
      ts: 'finding_ts',
      db: 'db_system_id',
      rule: 'rule',
    });
    const page = this.db.prepare<
      unknown[],
      { id: string; time: string; body: string; occurrences: number; last_time: string | null }
    >(
      `SELECT id, time, body, occurrences, last_time FROM alerts
       WHERE ${['(time, id) > (?, ?)', ...conditions].join(' AND ')}
       ORDER BY time, id LIMIT ${PAGE}`,
    );
    // Alert times are ISO 8601 UTC as toIso writes them: their text order is their time order.
    for (let after = { time: from === undefined ? '' : toIso(from), id: '' }; ; ) {
      const rows = page.all(after.time, after.id, ...params);
      for (const r of rows) yield mergeAlert(r.body, r.occurrences, r.last_time);
      const last = rows.at(-1);
      if (!last || rows.length < PAGE) return;
      after = { time: last.time, id: last.id };
    }
  }

  async deadLetterCount(): Promise<number> {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM dead_letters').get() as { n: number }).n;
  }

  async putSnapshot(snapshot: Snapshot, pruneBefore?: number): Promise<void> {
    const taken = Date.parse(snapshot.time);
    try {
      this.db
        .transaction(() => {
          this.db
            .prepare('INSERT OR REPLACE INTO snapshots (id, taken_at, body) VALUES (?, ?, ?)')
            .run(snapshot.id, taken, JSON.stringify(snapshot));
          if (pruneBefore !== undefined)
            this.db
              .prepare('DELETE FROM snapshots WHERE taken_at < ? AND id <> ?')
              .run(Math.min(pruneBefore, taken), snapshot.id);
        })
        .immediate();
    } catch (cause) {
      throw new AuditError('STORE_FAILED', 'cannot store the snapshot', { cause });
    }
  }

  async snapshots(since?: number): Promise<Snapshot[]> {
    const rows =
      since === undefined
        ? this.db
            .prepare<[], { body: string }>(
              'SELECT body FROM snapshots ORDER BY taken_at DESC, id DESC LIMIT 1',
            )
            .all()
        : this.db
            .prepare<[number], { body: string }>(
              'SELECT body FROM snapshots WHERE taken_at >= ? ORDER BY taken_at, id',
            )
            .all(since);
    return rows.map((r) => readSnapshot(r.body));
  }

  /** Waits for the scope's in-process mutex, then for its holder row (see top). */
  async lockScope(opts: LockScopeOptions): Promise<ScopeLock> {
    if (!this.db.open) throw new AuditError('STORE_FAILED', 'the state store is closed');
    const deadline = Date.now() + Math.max(0, opts.timeoutMs);
    await acquire(this.lockKey, opts.timeoutMs, this.scope);
    const me = thisHolder();
    let heartbeat: NodeJS.Timeout | undefined;
    if (!this.db.memory) {
      try {
        for (;;) {
          const busy = this.takeHolderRow(me);
          if (busy === undefined) break;
          const rest = deadline - Date.now();
          if (rest <= 0) throw scopeBusy(this.scope, busy);
          await new Promise((r) => setTimeout(r, Math.min(HOLDER_POLL_MS, rest)));
        }
      } catch (error) {
        handOver(this.lockKey);
        throw error;
      }
      heartbeat = setInterval(() => {
        if (this.db.open)
          this.db
            .prepare('UPDATE holders SET heartbeat = ? WHERE scope = ? AND pid = ? AND host = ?')
            .run(Date.now(), this.scope, me.pid, me.host);
      }, HEARTBEAT_MS);
      heartbeat.unref();
    }
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      clearInterval(heartbeat);
      this.holds.delete(release);
      if (this.db.open && !this.db.memory)
        this.db
          .prepare('DELETE FROM holders WHERE scope = ? AND pid = ? AND host = ?')
          .run(this.scope, me.pid, me.host);
      handOver(this.lockKey);
    };
    this.holds.add(release);
    return { release };
  }

  /** Takes the scope's holder row unless a live process holds it; returns that holder if so. */
  private takeHolderRow(me: LockHolder): LockHolder | undefined {
    return this.db
      .transaction(() => {
        const row = this.db
          .prepare<[string], HolderRow>('SELECT pid, host, since, heartbeat FROM holders WHERE scope = ?')
          .get(this.scope);
        const now = Date.now();
        if (row && holderAlive(row, me, now)) return { pid: row.pid, host: row.host, since: row.since };
        this.db
          .prepare(
            'INSERT OR REPLACE INTO holders (scope, pid, host, since, heartbeat) VALUES (?, ?, ?, ?, ?)',
          )
          .run(this.scope, me.pid, me.host, me.since, now);
        return undefined;
      })
      .immediate();
  }

  async close(): Promise<void> {
    for (const release of [...this.holds]) await release();
    if (this.db.open) this.db.close();
  }
}

/**
 * What a SQLite failure while opening means for the user, naming the file: a user's problem to
 * fix (exit 2), except failures we cannot explain.
 */
function stateFileError(path: string, cause: unknown): AuditError {
  if (cause instanceof AuditError) return cause;
  const code = (cause as { code?: unknown } | null)?.code;
  const fix: Record<string, string> = {
    SQLITE_CORRUPT: 'is damaged: restore it from a backup, or start a new state file and replay the inputs',
    SQLITE_NOTADB: 'is not a state file (not a SQLite database): check --state, or start a new state file',
    SQLITE_CANTOPEN: 'cannot be opened: check that its folder exists and is writable',
    SQLITE_READONLY: 'is read-only: the state is written at every batch; check its permissions',
    SQLITE_PERM: 'cannot be written: check its permissions',
    SQLITE_IOERR: 'cannot be read or written (an I/O error): check the disk',
    SQLITE_FULL: 'cannot grow: the disk is full',
  };
  const known = typeof code === 'string' ? Object.entries(fix).find(([k]) => code.startsWith(k)) : undefined;
  if (known === undefined)
    return new AuditError('STORE_FAILED', `cannot open the state file ${path}`, { cause, details: { path } });
  return new AuditError('USAGE', `the state file ${path} ${known[1]} (${String(code)})`, { cause });
}

/** The file's real path (the same file under two names is one lock), else the resolved path. */
function fileKey(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/** How long a statement waits for another process's write lock before failing. */
const BUSY_MS = 5000;

/**
 * Switches to write-ahead logging. SQLite does not wait for a lock on this switch (the busy
 * timeout does not apply), so a file another process is creating is retried here, up to BUSY_MS.
 */
function walMode(db: Database.Database): void {
  const until = Date.now() + BUSY_MS;
  for (;;) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > until) throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 25);
    }
  }
}
