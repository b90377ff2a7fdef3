// A commit of the SQLite store (sqlite-store.ts) as rows: built on the pipeline's thread, where the
// batch's objects are and as they stand when `commit` is called, then applied in one transaction,
// on that thread or on the store's commit thread (commit-thread.ts), which receives only these
// strings and numbers.
import type Database from 'better-sqlite3';
import { type Alert, recordKey, recordTime } from '../../schemas/alert.js';
import { activeUntil, lastActivity, type Session } from '../../schemas/session.js';
import {
  ALERT_COLUMNS,
  alertMerges,
  type CellValue,
  deadLetterRow,
  FIRST_SESSION_COLUMNS,
  type LedgerField,
  SESSION_COLUMNS,
  sessionBody,
  sessionTableRows,
} from './ledger.js';
import {
  type CommitBatch,
  type NewClaim,
  prunedAlerts,
  prunedAlertsParams,
  seenBucket,
  seenBuckets,
} from './state-store.js';

/** How long a statement waits for another connection's write lock before failing. */
export const BUSY_MS = 5000;

/** The settings of every connection to a state file (its write-ahead log is the file's own setting). */
export function connectionSettings(db: Database.Database): void {
  db.pragma(`busy_timeout = ${BUSY_MS}`);
  db.pragma('synchronous = NORMAL');
  // Checkpoint every ~40 MB of log rather than 4 MB: the ledger's indexes put every batch's
  // sessions on many pages, and a page rewritten by several batches is then copied back once
  // (replay spends about a third less time committing).
  db.pragma('wal_autocheckpoint = 10000');
}

/**
 * A session's row: id, DB system, connect time, open, body, the typed columns (schema 4's
 * migration writes those of the first schema), then its last activity and until when it was
 * active (activeUntil).
 */
export type SessionRow = CellValue[];
/** An alert's row: record key, rule, time, body, the merges, the typed columns, then its claim (who, until when). */
export type AlertRow = CellValue[];

/** A counted session (CommitBatch.counted): its counts, last activity and id, and how to write it whole. */
export type CountRow = {
  counts: [
    queries: number,
    tableAccess: number,
    changeUser: number,
    failedStatements: number,
    lastActivity: number,
    id: string,
  ];
  /** When it closed since it was written: its disconnect time. */
  closed?: string;
  /** Until when it was active (activeUntil). */
  until: number;
  /** The whole row, for a session the ledger no longer holds (pruned): given, or made when needed. */
  whole: SessionRow | Session;
};

export type CommitRows = {
  scope: string;
  /** Entity rows by kind and key: a body (JSON), or null to delete. */
  entities: [kind: string, key: string, body: string | null][];
  pendingPut: [key: string, ts: number, body: string][];
  pendingRemove: string[];
  /** Seen keys by bucket, as a JSON array. */
  seen: [bucket: number, keys: string][];
  pruneSeenBucket?: number;
  sessions: SessionRow[];
  /** (session id, table) rows not written yet. */
  tables: [string, string][];
  counted: CountRow[];
  alerts: AlertRow[];
  alertUpdates: [occurrences: number, lastTime: string, id: string][];
  /** Each dead letter's body, and when it was stored (ISO 8601 and epoch ms). */
  deadLetters: [body: string, time: string, ts: number][];
  pruneLedger?: { before: number; keepOpenSince: number };
  /** The claims the commit renews (CommitBatch.renew), when it is time to. */
  renew?: Renewal;
};

/** Claims to renew: the records' keys, and the claim they get (this instance's). */
export type Renewal = NewClaim & { keys: string[] };

/** What a commit did: the record keys it stored first, and of those it renewed, the claims it lost. */
export type AppliedCommit = { newAlerts: string[]; lost?: string[] };

export function sessionRow(
  s: Session,
  columns: readonly LedgerField<Session>[] = SESSION_COLUMNS,
): SessionRow {
  const open = s.outcome === 'success' && s.disconnectTime === undefined ? 1 : 0;
  // Pushed to, not a spread of the mapped columns (two more arrays for each of a replay's rows),
  // nor made with its length (an array with holes, which goes to the commit thread as a sparse one).
  const row: SessionRow = [s.id, s.dbSystem.id, s.connectTs, open, sessionBody(s)];
  for (const f of columns) row.push(f.value(s));
  row.push(lastActivity(s), activeUntil(s));
  return row;
}

function alertRow(a: Alert, claim: NewClaim | undefined): AlertRow {
  return [
    recordKey(a),
    a.rule,
    recordTime(a),
    JSON.stringify(a),
    ...alertMerges(a),
    ...ALERT_COLUMNS.map((f) => f.value(a)),
    claim?.claimant ?? null,
    claim?.until ?? null,
  ];
}

/**
 * The rows of a batch. `newTables` are the sessions whose touched tables are not all written;
 * `plain` makes every value a string or a number (counted sessions' whole rows included), for
 * another thread; `claim` is the claim of the records this commit stores first.
 */
export function commitRows(
  scope: string,
  batch: CommitBatch,
  newTables: ReadonlySet<Session>,
  plain: boolean,
  claim?: NewClaim,
  renewal?: NewClaim,
): CommitRows {
  const now = Date.now();
  const rows: CommitRows = {
    scope,
    entities: batch.entities.map((e) => [e.kind, e.key, e.body === null ? null : JSON.stringify(e.body)]),
    pendingPut: batch.pending.put.map((ev) => [ev.key, ev.ts, JSON.stringify(ev)]),
    pendingRemove: batch.pending.remove,
    seen: [...seenBuckets(batch.seen)].map(([bucket, keys]) => [bucket, JSON.stringify(keys)]),
    sessions: batch.sessions.map((s) => sessionRow(s)),
    tables: sessionTableRows(batch.sessions.filter((s) => newTables.has(s))),
    counted: batch.counted.map((s) => {
      const { queries, tableAccess, changeUser, failedStatements } = s.counts;
      const row: CountRow = {
        counts: [queries, tableAccess, changeUser, failedStatements, lastActivity(s), s.id],
        until: activeUntil(s),
        whole: plain ? sessionRow(s) : s,
      };
      if (s.disconnectTime !== undefined) row.closed = s.disconnectTime;
      return row;
    }),
    alerts: batch.alerts.map((a) => alertRow(a, claim)),
    alertUpdates: batch.alertUpdates.map((u) => [u.occurrences, u.lastTime, u.id]),
    deadLetters: batch.deadLetters.map((d) => deadLetterRow(d, now)),
  };
  if (renewal !== undefined) rows.renew = { ...renewal, keys: batch.renew ?? [] };
  if (batch.pruneSeenBefore !== undefined) rows.pruneSeenBucket = seenBucket(batch.pruneSeenBefore);
  const before = batch.pruneLedgerBefore;
  if (before !== undefined) rows.pruneLedger = { before, keepOpenSince: batch.keepOpenSince ?? before };
  return rows;
}

/** The statements commits and delivery marks run (a replay makes a hundred commits or more). */
function writeStatements(db: Database.Database) {
  return {
    putEntity: db.prepare(
      'INSERT INTO entity (scope, kind, key, body) VALUES (?, ?, ?, ?) ON CONFLICT (scope, kind, key) DO UPDATE SET body = excluded.body',
    ),
    delEntity: db.prepare('DELETE FROM entity WHERE scope = ? AND kind = ? AND key = ?'),
    putPending: db.prepare('INSERT OR REPLACE INTO pending (scope, key, ts, body) VALUES (?, ?, ?, ?)'),
    delPending: db.prepare('DELETE FROM pending WHERE scope = ? AND key = ?'),
    putSeen: db.prepare('INSERT INTO seen (scope, bucket, keys) VALUES (?, ?, ?)'),
    pruneSeen: db.prepare('DELETE FROM seen WHERE scope = ? AND bucket < ?'),
    ledger: ledgerWriters(db),
    updAlert: db.prepare('UPDATE alerts SET occurrences = ?, last_time = ? WHERE id = ?'),
    putDead: db.prepare('INSERT INTO dead_letters (body, stored_time, stored_ts) VALUES (?, ?, ?)'),
    // A session that connected before the horizon, unless still open and active since the other.
    pruneSessions: [
      'DELETE FROM session_tables WHERE session_id IN (SELECT id FROM sessions WHERE connect_ts < ? AND (open = 0 OR last_activity_ts < ?))',
      'DELETE FROM sessions WHERE connect_ts < ? AND (open = 0 OR last_activity_ts < ?)',
    ].map((sql) => db.prepare(sql)),
    pruneAlerts: [
      `DELETE FROM deliveries WHERE alert_id IN (SELECT id FROM alerts WHERE ${prunedAlerts('alerts')})`,
      `DELETE FROM alerts WHERE ${prunedAlerts('alerts')}`,
    ].map((sql) => db.prepare(sql)),
    pruneDead: db.prepare('DELETE FROM dead_letters WHERE stored_ts < ?'),
    renewClaim: db.prepare('UPDATE alerts SET claimed_until = ? WHERE id = ? AND claimant = ?'),
    putDelivery: db.prepare(
      'INSERT OR IGNORE INTO deliveries (alert_id, sink, delivered_ts) VALUES (?, ?, ?)',
    ),
  };
}

const prepared = new WeakMap<Database.Database, ReturnType<typeof writeStatements>>();

/** A connection's write statements, prepared on its first write. */
function statementsOf(db: Database.Database): ReturnType<typeof writeStatements> {
  let st = prepared.get(db);
  if (st === undefined) {
    st = writeStatements(db);
    prepared.set(db, st);
  }
  return st;
}

/** Applies a commit's rows in one write transaction. */
export function applyCommit(db: Database.Database, rows: CommitRows): AppliedCommit {
  const { scope } = rows;
  const st = statementsOf(db);
  const { ledger } = st;
  const newAlerts: string[] = [];
  let lost: string[] | undefined;
  db.transaction(() => {
    for (const [kind, key, body] of rows.entities) {
      if (body === null) st.delEntity.run(scope, kind, key);
      else st.putEntity.run(scope, kind, key, body);
    }
    for (const [key, ts, body] of rows.pendingPut) st.putPending.run(scope, key, ts, body);
    for (const key of rows.pendingRemove) st.delPending.run(scope, key);
    for (const [bucket, keys] of rows.seen) st.putSeen.run(scope, bucket, keys);
    if (rows.pruneSeenBucket !== undefined) st.pruneSeen.run(scope, rows.pruneSeenBucket);
    for (const row of rows.sessions) ledger.session(row);
    ledger.tables(rows.tables);
    for (const c of rows.counted) ledger.counts(c);
    for (const row of rows.alerts) if (ledger.alert(row)) newAlerts.push(row[0] as string);
    for (const u of rows.alertUpdates) st.updAlert.run(...u);
    for (const d of rows.deadLetters) st.putDead.run(...d);
    // What names a row goes before it: sessions' tables, sessions, deliveries, alerts.
    if (rows.pruneLedger !== undefined) {
      const { before, keepOpenSince } = rows.pruneLedger;
      for (const prune of st.pruneSessions) prune.run(before, keepOpenSince);
      for (const prune of st.pruneAlerts) prune.run(...prunedAlertsParams(before));
      st.pruneDead.run(before);
    }
    if (rows.renew !== undefined) lost = renewClaims(db, rows.renew);
  }).immediate();
  return lost === undefined ? { newAlerts } : { newAlerts, lost };
}

/**
 * Renews the claims of these records that are still the claimant's, by key, in the transaction
 * under way (or one of its own); returns the keys it could not renew (another instance's, or gone).
 */
export function renewClaims(db: Database.Database, renewal: Renewal): string[] {
  const { claimant, until } = renewal;
  const { renewClaim } = statementsOf(db);
  return db.transaction(() =>
    renewal.keys.filter((key) => renewClaim.run(until, key, claimant).changes === 0),
  )();
}

/** Records that a sink received these records, in one transaction. */
export function applyDelivered(
  db: Database.Database,
  sink: string,
  keys: readonly string[],
  now: number,
): void {
  const { putDelivery } = statementsOf(db);
  db.transaction(() => {
    for (const key of keys) putDelivery.run(key, sink, now);
  })();
}

/**
 * Prepared statements that write the ledger's typed rows. Schema 4's migration writes the rows
 * stored before it with these, before the last activity column and the later typed columns exist
 * (`schema4`): then a session row has the first schema's columns (`sessionRow(s,
 * FIRST_SESSION_COLUMNS)`) and leaves its last activity out, and counts and alerts (whose claim
 * columns come later) cannot be written.
 */
export function ledgerWriters(db: Database.Database, { schema4 = false } = {}) {
  const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');
  const sessionNames = [
    ...(schema4 ? FIRST_SESSION_COLUMNS : SESSION_COLUMNS).map((f) => f.name),
    ...(schema4 ? [] : ['last_activity_ts', 'active_until_ts']),
  ];
  const putSession = db.prepare(
    `INSERT INTO sessions (id, db, connect_ts, open, body, ${sessionNames.join(', ')})
     VALUES (${placeholders(5 + sessionNames.length)})
     ON CONFLICT (id) DO UPDATE SET open = excluded.open, body = excluded.body,
       ${sessionNames.map((n) => `${n} = excluded.${n}`).join(', ')}`,
  );
  const counted =
    'queries = ?, table_access = ?, change_user = ?, failed_statements = ?, last_activity_ts = ?, active_until_ts = ?';
  const putCounts = schema4 ? undefined : db.prepare(`UPDATE sessions SET ${counted} WHERE id = ?`);
  const putClosed = schema4
    ? undefined
    : db.prepare(`UPDATE sessions SET ${counted}, disconnect_time = ?, open = 0 WHERE id = ?`);
  const putTable = db.prepare('INSERT OR IGNORE INTO session_tables (session_id, table_name) VALUES (?, ?)');
  const alertNames = ALERT_COLUMNS.map((f) => f.name);
  const putAlert = schema4
    ? undefined
    : db.prepare(
        `INSERT OR IGNORE INTO alerts (id, rule, time, body, occurrences, last_time, ${alertNames.join(', ')}, claimant, claimed_until)
         VALUES (?, ?, ?, ?, ?, ?, ${placeholders(alertNames.length + 2)})`,
      );
  const setAlert = db.prepare(
    `UPDATE alerts SET ${alertNames.map((n) => `${n} = ?`).join(', ')} WHERE id = ?`,
  );
  return {
    /** Upserts a session. */
    session(row: SessionRow): void {
      putSession.run(...(schema4 ? row.slice(0, -2) : row));
    },
    tables(rows: readonly [string, string][]): void {
      for (const [id, table] of rows) putTable.run(id, table);
    },
    /**
     * Updates a stored session's counts alone (no body, no indexed column: a third of the cost of
     * the upsert), and for one that closed, its disconnect time and `open`; a session the ledger no
     * longer holds (pruned) is written whole, with its tables.
     */
    counts(c: CountRow): void {
      const [queries, tableAccess, changeUser, failed, last, id] = c.counts;
      const updated =
        c.closed === undefined
          ? putCounts!.run(queries, tableAccess, changeUser, failed, last, c.until, id)
          : putClosed!.run(queries, tableAccess, changeUser, failed, last, c.until, c.closed, id);
      if (updated.changes > 0) return;
      const { whole } = c;
      if (Array.isArray(whole)) {
        this.session(whole);
        this.tables(((JSON.parse(whole[4] as string) as Session).tables ?? []).map((t) => [id, t]));
      } else {
        this.session(sessionRow(whole));
        this.tables(sessionTableRows([whole]));
      }
    },
    /** Stores the record (alert or resolution) unless it is stored already; true when it was new. */
    alert(row: AlertRow): boolean {
      return putAlert!.run(...row).changes > 0;
    },
    alertColumns(a: Alert): void {
      setAlert.run(...ALERT_COLUMNS.map((f) => f.value(a)), a.id);
    },
  };
}
