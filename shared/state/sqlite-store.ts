// SQLite adapter of the state store port (better-sqlite3, WAL, one transaction per commit). A store
// may have a thread of its own (commit-thread.ts): it applies the writes, or it only copies the
// log into the file after each commit (checkpoints), so that the writer does not wait for the disk.
//
// Scope lock (lockScope), in two layers. In the process: a mutex per database file (its real
// path) and scope, shared by every SqliteStore of the process, with waiters served in arrival
// order. Across processes: a row per scope in `holders` (PID, host, since, heartbeat), taken in a
// write transaction when no live process holds it. A holder on this host is alive while its PID
// is; one on another host (a file on shared storage) while it refreshes its heartbeat (every
// HEARTBEAT_MS; stale after STALE_MS). A process killed with SIGKILL leaves its row, which the
// next one takes over at once on the same host. A `:memory:` store is private to its instance,
// and so is its lock.
//
// Delivery claims (StateStore.undelivered) run out at the end of their lease, or at once when
// their claimant is a process of this host that no longer runs (as holder rows do).
import { existsSync, realpathSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { Alert } from '../../schemas/alert.js';
import type { CanonicalEvent } from '../../schemas/events.js';
import { activeUntilOf, type Session } from '../../schemas/session.js';
import type { Snapshot } from '../../schemas/snapshot.js';
import { AuditError } from '../errors.js';
import { toIso } from '../time.js';
import { COMMIT_WORKER, CommitThread, type StoreThread } from './commit-thread.js';
import type { EntityRow } from './entity-cache.js';
import {
  ALERT_COLUMNS,
  backfillPlantedCredentialsSql,
  carriedActive,
  carriedSessionConditions,
  columnType,
  DEAD_LETTER_COLUMNS,
  type DeadLetterQuery,
  type DeadLetterRow,
  deadLetterView,
  FIRST_SESSION_COLUMNS,
  type LedgerField,
  type LedgerQuery,
  laterSessionColumns,
  ledgerConditions,
  ledgerViews,
  RESTORED_COLUMNS,
  readSession,
  repairAlertMergesSql,
  repeatedAlertsQuery,
  restoredSession,
  restoredSessionsSql,
  rowKey,
  SESSION_COUNTS_SQL,
  type SessionCount,
  type SessionRow,
  SessionTablesWritten,
  type StoredDeadLetter,
  sessionsView,
  sessionTableRows,
  storedDeadLetter,
} from './ledger.js';
import {
  type AppliedCommit,
  applyCommit,
  applyDelivered,
  BUSY_MS,
  type CommitRows,
  commitRows,
  connectionSettings,
  ledgerWriters,
  renewClaims,
  sessionRow,
} from './sqlite-commit.js';
import {
  type ClaimOptions,
  type Claims,
  type CommitBatch,
  type CommitResult,
  chunks,
  claimable,
  claimantOfThisProcess,
  claimantProcess,
  clearReceivedGivenUpSql,
  GIVEN_UP,
  type LockHolder,
  type LockScopeOptions,
  type LookWindow,
  lookWindow,
  mergeAlert,
  newClaim,
  RenewalClock,
  readSnapshot,
  resolveClaims,
  type ScopeLock,
  type StateStore,
  type StoredClaim,
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
    add('sessions', FIRST_SESSION_COLUMNS);
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
    const writers = ledgerWriters(db, { schema4: true });
    for (const [table, write] of [
      [
        'sessions',
        (body: string) => {
          const s = JSON.parse(body) as Session;
          writers.session(sessionRow(s, FIRST_SESSION_COLUMNS));
          writers.tables(sessionTableRows([s]));
        },
      ],
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
  // No change to the tables: from this version on, a session's body leaves its OCIDs to the row's
  // columns (sessionBody), which an earlier version would not put back.
  '',
  // No change to the tables: from this version on, a session's body leaves its times and texts to
  // the row's columns too (sessionBody).
  '',
  // Dead letters: when each was stored, and the view that reads them (audit_dead_letters).
  (db) => {
    for (const f of DEAD_LETTER_COLUMNS)
      db.exec(`ALTER TABLE dead_letters ADD COLUMN ${f.name} ${columnType(f, 'sqlite')}`);
    const view = deadLetterView('sqlite');
    db.exec(`CREATE VIEW ${view.name} AS ${view.select}`);
  },
  // Alerts stored with repeats already merged into them counted one: their body has the count.
  repairAlertMergesSql('sqlite'),
  // When each session last did something (CommitBatch.keepOpenSince): a session stored open before
  // counts from its connect, as it did then.
  `ALTER TABLE sessions ADD COLUMN last_activity_ts INTEGER;
   UPDATE sessions SET last_activity_ts = connect_ts WHERE open = 1;`,
  // How a session ended that the server logged no disconnect for (Session.endReason), in a column
  // of its own and the view; no session stored before has one.
  (db) => addSessionColumns(db, 1),
  // How many credentials another principal created on the person were in force at the login
  // (Attribution.plantedCredentials), in a column of its own and the view, from the bodies of the
  // sessions stored before.
  (db) => {
    addSessionColumns(db, 2);
    db.exec(backfillPlantedCredentialsSql('sqlite'));
  },
  // Who delivers each record, until when (StateStore.undelivered): the instance whose commit stored
  // it. A record stored before has no claim: any instance may send what it has not received.
  // The index finds the claims that ended since a pipeline's last look (StateStore.lapsed).
  `ALTER TABLE alerts ADD COLUMN claimant TEXT;
   ALTER TABLE alerts ADD COLUMN claimed_until INTEGER;
   CREATE INDEX alerts_claimed ON alerts (claimed_until);`,
  // Per sink, the claims' time up to which a look took what it could (StateStore.lapsed): a
  // pipeline that opens looks from there. None for a sink yet: its first look reads every record.
  'CREATE TABLE delivery_looks (sink TEXT PRIMARY KEY, looked_until INTEGER NOT NULL) WITHOUT ROWID;',
  // Until when each session was active (activeUntil), for the reports' sessions active in a period
  // (StateStore.sessions `active`), with the index that finds those that connected before it; the
  // sessions stored before from their outcome, connect, disconnect and last activity.
  (db) => {
    db.exec('ALTER TABLE sessions ADD COLUMN active_until_ts INTEGER');
    db.function('hwaudit_active_until', { deterministic: true }, (outcome, connect, disconnect, last) =>
      activeUntilOf({
        outcome: String(outcome),
        connectTs: Number(connect),
        disconnectTime: disconnect as string | null,
        lastActivity: last as number | null,
      }),
    );
    db.exec(`UPDATE sessions SET active_until_ts =
               hwaudit_active_until(outcome, connect_ts, disconnect_time, last_activity_ts);
             CREATE INDEX sessions_active ON sessions (active_until_ts, connect_ts, id);`);
  },
  // When each alert's last merged repeat was, for the reports' alerts raised before a period and
  // repeated into it (StateStore.alerts `active`): without it, every report read the whole history.
  'CREATE INDEX alerts_last ON alerts (last_time, time);',
];

/** The `later`-th migration's typed session columns, and the view that shows them. */
function addSessionColumns(db: Database.Database, later: number): void {
  for (const f of laterSessionColumns(later))
    db.exec(`ALTER TABLE sessions ADD COLUMN ${f.name} ${columnType(f, 'sqlite')}`);
  const view = sessionsView('sqlite', later);
  db.exec(`DROP VIEW ${view.name}; CREATE VIEW ${view.name} AS ${view.select}`);
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
  return processRuns(row.pid);
}

/** Whether a process of this host runs. */
function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as { code?: string }).code === 'EPERM';
  }
}

/**
 * A claimant that was a process of this host and runs no more (another of this process is not).
 * One with this process's PID and another tag ran before it (a container's PID 1), as a holder row
 * of this PID did.
 */
function claimantGone(claimant: string): boolean {
  const p = claimantProcess(claimant);
  if (p === undefined || p.host !== hostname()) return false;
  return p.pid === process.pid ? !claimantOfThisProcess(claimant) : !processRuns(p.pid);
}

const CHUNK = 500;
/** Rows per page of a ledger read. */
const PAGE = 1000;

type AlertRow = { body: string; occurrences: number; last_time: string | null };

type ClaimRow = { id: string; claimant: string | null; claimed_until: number | null };

const storedClaim = (r: Omit<ClaimRow, 'id'>): StoredClaim => ({
  claimant: r.claimant,
  until: r.claimed_until,
});

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
  /** The store's own thread, if it has one, and what it does (see `open`). */
  private readonly thread: { kind: StoreThread; worker: CommitThread } | undefined;
  private readonly claims: Claims;
  /** When this store last looked for each sink's records to take (`lapsed`), by the claims' clock. */
  private readonly looked = new Map<string, number>();
  private readonly renewal: RenewalClock;

  private constructor(
    path: string,
    private readonly scope: string,
    thread: { kind: StoreThread; file: URL } | undefined,
    claims: ClaimOptions | undefined,
  ) {
    this.claims = resolveClaims(scope, claims);
    this.renewal = new RenewalClock(this.claims);
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
      connectionSettings(this.db);
      this.migrate(path);
    } catch (cause) {
      this.db.close();
      throw stateFileError(path, cause);
    }
    this.lockKey = `${this.db.memory ? `:memory:${++memoryStores}` : fileKey(path)}\u0000${scope}`;
    this.thread =
      thread && !this.db.memory
        ? { kind: thread.kind, worker: new CommitThread(resolve(path), thread.file) }
        : undefined;
  }

  /**
   * Opens (creating if needed) a state file; `:memory:` for a throwaway store. With `thread`, the
   * store has a thread of its own (commit-thread.ts; `threadWorker`: the bundled worker,
   * dist/commit-worker.cjs, unless given):
   * - `commits`: commits and deliveries are written there, so that a pipeline can build its next
   *   batch meanwhile; reads wait for the writes asked for before them;
   * - `checkpoints`: this thread writes, and that one copies the log into the file after each
   *   commit, so that this thread does not wait for the disk.
   * A `:memory:` store has no log to copy and writes on its own thread. `claims`: who claims
   * deliveries through this store (StateStore.undelivered).
   */
  static open(
    path: string,
    opts: { scope?: string; thread?: StoreThread; threadWorker?: URL; claims?: ClaimOptions } = {},
  ): SqliteStore {
    const { thread } = opts;
    return new SqliteStore(
      path,
      opts.scope ?? 'default',
      thread && { kind: thread, file: opts.threadWorker ?? COMMIT_WORKER },
      opts.claims,
    );
  }

  /** The thread that applies the writes, when it is not this one. */
  private get writer(): CommitThread | undefined {
    return this.thread?.kind === 'commits' ? this.thread.worker : undefined;
  }

  /** Calls are applied in order: a read waits for the writes asked for before it. */
  readonly ordered = true;

  /** A `:memory:` store is this instance's alone. */
  get isolated(): boolean {
    return this.db.memory;
  }

  /** Settles once the writes asked for so far are applied (at once when this thread writes). */
  private async settled(): Promise<void> {
    await this.writer?.idle();
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
    await this.settled();
    return this.db
      .prepare<[string], { kind: string; key: string; body: string }>(
        'SELECT kind, key, body FROM entity WHERE scope = ?',
      )
      .all(this.scope)
      .map((r) => ({ kind: r.kind, key: r.key, body: JSON.parse(r.body) }));
  }

  async loadPending(): Promise<CanonicalEvent[]> {
    await this.settled();
    return this.db
      .prepare<[string], { body: string }>('SELECT body FROM pending WHERE scope = ?')
      .all(this.scope)
      .map((r) => JSON.parse(r.body) as CanonicalEvent);
  }

  async loadSessions(since: number): Promise<Session[]> {
    await this.settled();
    return this.db
      .prepare<[number], SessionRow>(restoredSessionsSql('open', RESTORED_COLUMNS))
      .raw()
      .all(since)
      .map(restoredSession);
  }

  async filterSeen(events: { key: string; ts: number }[]): Promise<Set<string>> {
    await this.settled();
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
    await this.settled();
    return this.existing('SELECT id AS k FROM alerts WHERE id IN', keys);
  }

  async loadAlerts(keys: string[]): Promise<Alert[]> {
    await this.settled();
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
    const { writer } = this;
    let rows: CommitRows;
    let applied: AppliedCommit = { newAlerts: [] };
    try {
      const renewal = this.renewal.due(batch.renew);
      rows = commitRows(
        this.scope,
        batch,
        this.tablesWritten.pending(batch.sessions),
        writer !== undefined,
        newClaim(this.claims),
        renewal,
      );
      if (renewal !== undefined) this.renewal.renewed(renewal);
      if (writer === undefined) applied = applyCommit(this.db, rows);
    } catch (cause) {
      throw new AuditError('STORE_FAILED', 'state store commit failed', { cause });
    }
    if (writer === undefined) this.thread?.worker.checkpoint();
    const { newAlerts, lost } = writer === undefined ? applied : await writer.commit(rows);
    this.tablesWritten.committed(batch);
    return { newAlerts: new Set(newAlerts), ...(lost === undefined ? {} : { lost: new Set(lost) }) };
  }

  async markDelivered(sink: string, keys: string[]): Promise<void> {
    const { writer } = this;
    if (writer !== undefined) await writer.delivered(sink, keys);
    else applyDelivered(this.db, sink, keys, Date.now());
  }

  async delivered(sink: string, keys: string[]): Promise<Set<string>> {
    await this.settled();
    return this.existing('SELECT alert_id AS k FROM deliveries WHERE sink = ? AND alert_id IN', keys, [sink]);
  }

  /**
   * Reads the candidates outside any write transaction (a read does not stop other processes'
   * commits), then claims them in one, checking each claim again by key: two stores asking at once
   * take turns, and the second sees the first's claims.
   */
  async undelivered(sink: string): Promise<Alert[]> {
    await this.settled();
    const now = this.claims.now();
    // The keys alone (the primary key's index, not the records), then the claims of those found.
    const ids = this.db
      .prepare<[string], string>(
        `SELECT id FROM alerts a
           WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = a.id AND d.sink = ?)`,
      )
      .pluck()
      .all(sink);
    const rows: ClaimRow[] = [];
    for (const part of chunks(ids, CHUNK))
      rows.push(
        ...this.db
          .prepare<string[], ClaimRow>(
            `SELECT id, claimant, claimed_until FROM alerts WHERE id IN (${part.map(() => '?').join(',')})`,
          )
          .all(...part),
      );
    const taken = this.claim(rows, now);
    this.storeLooks([sink], now, { full: true });
    return this.loadUndelivered(sink, taken);
  }

  async lapsed(sinks: readonly string[], { opening = false } = {}): Promise<Map<string, Alert[]>> {
    const out = new Map<string, Alert[]>();
    const windows = new Map<string, LookWindow>();
    await this.settled();
    const stored = this.storedLooks(sinks.filter((s) => !this.looked.has(s)));
    const now = this.claims.now();
    for (const sink of sinks) {
      const window = lookWindow(this.looked.get(sink), stored.get(sink), now, opening);
      if (window === undefined) out.set(sink, await this.undelivered(sink));
      else windows.set(sink, window);
    }
    if (windows.size === 0) return out;
    const rows = this.db
      .prepare<[number, number, number], ClaimRow>(
        `SELECT id, claimant, claimed_until FROM alerts
           WHERE claimed_until = ? OR (claimed_until > ? AND claimed_until <= ?)`,
      )
      .all(
        GIVEN_UP,
        Math.min(...[...windows.values()].map((w) => w.from)),
        Math.max(...[...windows.values()].map((w) => w.to)),
      );
    // By sink, the records it has not received among those whose claim ended since its last look.
    const wanted = new Map<string, Set<string>>();
    for (const [sink, { from, to }] of windows) {
      const ended = rows
        .filter((r) => r.claimed_until === GIVEN_UP || (r.claimed_until! > from && r.claimed_until! <= to))
        .map((r) => r.id);
      const received = await this.delivered(sink, ended);
      wanted.set(sink, new Set(ended.filter((id) => !received.has(id))));
    }
    const taken = new Set(
      this.claim(
        rows.filter((r) => [...wanted.values()].some((w) => w.has(r.id))),
        now,
      ),
    );
    this.storeLooks([...windows.keys()], now);
    for (const [sink, ids] of wanted)
      out.set(
        sink,
        await this.loadUndelivered(
          sink,
          [...ids].filter((id) => taken.has(id)),
        ),
      );
    if (rows.some((r) => r.claimed_until === GIVEN_UP))
      this.db.prepare(clearReceivedGivenUpSql(sinks.length)).run(now, GIVEN_UP, ...sinks);
    return out;
  }

  /** The time of the last look stored for each of `sinks` that has one (see `lapsed`). */
  private storedLooks(sinks: readonly string[]): Map<string, number> {
    const out = new Map<string, number>();
    for (const part of chunks(sinks, CHUNK))
      for (const r of this.db
        .prepare<string[], { sink: string; looked_until: number }>(
          `SELECT sink, looked_until FROM delivery_looks WHERE sink IN (${part.map(() => '?').join(',')})`,
        )
        .all(...part))
        out.set(r.sink, r.looked_until);
    return out;
  }

  /**
   * Notes, here and in the store, that a look for `sinks` took what it could up to `now`: the later
   * time stored is kept, but a `full` look (at every record) stores its own, so that a time stored
   * from a clock far ahead (see `lookWindow`) is gone once that clock is.
   */
  private storeLooks(sinks: readonly string[], now: number, { full = false } = {}): void {
    const write = this.db.prepare(
      `INSERT INTO delivery_looks (sink, looked_until) VALUES (?, ?)
         ON CONFLICT (sink) DO UPDATE SET looked_until = ${full ? 'excluded.looked_until' : 'MAX(looked_until, excluded.looked_until)'}`,
    );
    this.db.transaction(() => {
      for (const sink of sinks) write.run(sink, now);
    })();
    for (const sink of sinks) this.looked.set(sink, now);
  }

  /**
   * Claims for this instance those of `rows` it may take (`claimable`), in one write transaction
   * that reads each claim again by key; returns their keys.
   */
  private claim(rows: readonly ClaimRow[], now: number): string[] {
    const free = (r: Omit<ClaimRow, 'id'>) => claimable(storedClaim(r), this.claims, now, claimantGone);
    const candidates = rows.filter(free).map((r) => r.id);
    if (candidates.length === 0) return [];
    const read = this.db.prepare<[string], Omit<ClaimRow, 'id'>>(
      'SELECT claimant, claimed_until FROM alerts WHERE id = ?',
    );
    const write = this.db.prepare('UPDATE alerts SET claimant = ?, claimed_until = ? WHERE id = ?');
    const { claimant, until } = newClaim(this.claims, now);
    return this.db
      .transaction(() =>
        candidates.filter((id) => {
          const row = read.get(id);
          if (row === undefined || !free(row)) return false;
          write.run(claimant, until, id);
          return true;
        }),
      )
      .immediate();
  }

  /** The records of these keys that `sink` has not received, in time order. */
  private loadUndelivered(sink: string, keys: readonly string[]): Alert[] {
    const out: { time: string; id: string; alert: Alert }[] = [];
    for (const part of chunks(keys, CHUNK)) {
      const rows = this.db
        .prepare<string[], AlertRow & { id: string; time: string }>(
          `SELECT id, time, body, occurrences, last_time FROM alerts a WHERE id IN (${part.map(() => '?').join(',')})
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = a.id AND d.sink = ?)`,
        )
        .all(...part, sink);
      for (const r of rows)
        out.push({ time: r.time, id: r.id, alert: mergeAlert(r.body, r.occurrences, r.last_time) });
    }
    const order = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
    return out.sort((a, b) => order(a.time, b.time) || order(a.id, b.id)).map((r) => r.alert);
  }

  async renewClaims(keys: string[]): Promise<Set<string>> {
    await this.settled();
    // Not noted as the commits' renewal (RenewalClock): these may be some of the claims only (a
    // digest's due records), and the next commit renews all of them.
    const claim = newClaim(this.claims);
    return new Set(renewClaims(this.db, { keys, ...claim }));
  }

  async releaseClaims(keys: string[]): Promise<void> {
    await this.settled();
    const release = this.db.prepare('UPDATE alerts SET claimed_until = ? WHERE id = ? AND claimant = ?');
    this.db.transaction(() => {
      for (const key of keys) release.run(GIVEN_UP, key, this.claims.claimant);
    })();
  }

  /**
   * Pages by (connect_ts, id): an open iterator would keep the connection busy (better-sqlite3)
   * while the caller commits, and a page is what a reader of a large ledger holds at once. An
   * `active` query reads first the sessions that connected before `from` and were active at it or
   * after, through the index on (active_until_ts, connect_ts, id): its entries say which without
   * reading a row (those that connected in the range are skipped on the entry: the second part
   * reads them, as any query does).
   */
  async *sessions(query: LedgerQuery = {}): AsyncIterable<Session> {
    // The range starts where the page key does, so that each page seeks the (connect_ts, id) index.
    const { from, active, ...rest } = query;
    if (active && from !== undefined) {
      const carried = carriedSessionConditions(from, rest.dbSystem);
      for await (const s of this.sessionPages(
        'sessions INDEXED BY sessions_active',
        carried.conditions,
        carried.params,
        Number.MIN_SAFE_INTEGER,
        restoredSession,
      ))
        if (carriedActive(s, from)) yield s;
    }
    const { conditions, params } = ledgerConditions(rest, { ts: 'connect_ts', db: 'db' });
    const read = active ? restoredSession : readSession;
    yield* this.sessionPages('sessions', conditions, params, from ?? Number.MIN_SAFE_INTEGER, read);
  }

  /**
   * The sessions of `source` the conditions select, from the key `(start, '')` on, a page at a
   * time, each as `read` makes it of its row (with its last activity, or without).
   */
  private async *sessionPages(
    source: string,
    conditions: string[],
    params: (string | number)[],
    start: number,
    read: (row: SessionRow) => Session,
  ): AsyncIterable<Session> {
    const page = this.db
      .prepare<unknown[], SessionRow>(
        `SELECT connect_ts, id, ${RESTORED_COLUMNS} FROM ${source}
       WHERE ${['(connect_ts, id) > (?, ?)', ...conditions].join(' AND ')}
       ORDER BY connect_ts, id LIMIT ${PAGE}`,
      )
      .raw();
    for (let after = { ts: start, id: '' }; ; ) {
      await this.settled();
      const rows = page.all(after.ts, after.id, ...params);
      for (const r of rows) yield read(r);
      const last = rows.at(-1);
      if (!last || rows.length < PAGE) return;
      after = rowKey(last);
    }
  }

  async sessionCounts(): Promise<SessionCount[]> {
    await this.settled();
    return this.db.prepare<[], SessionCount>(SESSION_COUNTS_SQL).all();
  }

  async *alerts(query: LedgerQuery = {}): AsyncIterable<Alert> {
    const { from, ...rest } = query;
    const { conditions, params } = ledgerConditions(rest, {
      ts: 'finding_ts',
      db: 'db_system_id',
      rule: 'rule',
    });
    // Alert times are ISO 8601 UTC as toIso writes them: their text order is their time order.
    if (query.active && from !== undefined) {
      const repeated = repeatedAlertsQuery('sqlite', from);
      yield* this.alertPages(
        repeated.source,
        '',
        [...repeated.conditions, ...conditions],
        [...repeated.params, ...params],
      );
    }
    yield* this.alertPages('alerts', from === undefined ? '' : toIso(from), conditions, params);
  }

  /** Alerts of `source` after `start` (ISO 8601) on the conditions, by time and id, a page at a time. */
  private async *alertPages(
    source: string,
    start: string,
    conditions: string[],
    params: unknown[],
  ): AsyncIterable<Alert> {
    const page = this.db.prepare<
      unknown[],
      { id: string; time: string; body: string; occurrences: number; last_time: string | null }
    >(
      `SELECT id, time, body, occurrences, last_time FROM ${source}
       WHERE ${['(time, id) > (?, ?)', ...conditions].join(' AND ')}
       ORDER BY time, id LIMIT ${PAGE}`,
    );
    for (let after = { time: start, id: '' }; ; ) {
      await this.settled();
      const rows = page.all(after.time, after.id, ...params);
      for (const r of rows) yield mergeAlert(r.body, r.occurrences, r.last_time);
      const last = rows.at(-1);
      if (!last || rows.length < PAGE) return;
      after = { time: last.time, id: last.id };
    }
  }

  async *deadLetters(query: DeadLetterQuery = {}): AsyncIterable<StoredDeadLetter> {
    const { conditions, params } = ledgerConditions(query, { ts: 'stored_ts' });
    const page = this.db.prepare<unknown[], DeadLetterRow>(
      `SELECT seq, stored_time, body FROM dead_letters WHERE ${['seq > ?', ...conditions].join(' AND ')}
       ORDER BY seq LIMIT ${PAGE}`,
    );
    for (let after = 0; ; ) {
      await this.settled();
      const rows = page.all(after, ...params);
      for (const r of rows) yield storedDeadLetter(r);
      const last = rows.at(-1);
      if (!last || rows.length < PAGE) return;
      after = Number(last.seq);
    }
  }

  async putSnapshot(snapshot: Snapshot, pruneBefore?: number): Promise<void> {
    await this.settled();
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
    await this.settled();
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
    await this.settled();
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
    await this.thread?.worker.close();
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
    SQLITE_CANTOPEN: 'cannot be opened: check that it is a file, in a folder that exists and is writable',
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
