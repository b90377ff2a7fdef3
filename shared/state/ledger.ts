// The queryable audit ledger both state store adapters keep beside the JSON bodies: sessions and
// alerts (findings) in typed columns, the tables each session touched, when each sink received
// each alert, and when each dead letter was stored. The columns are defined once here, with the
// SQL views that are the stable interface for people who query the store directly (docs/sql.md),
// and the CSV exports use the same columns.
import { type Alert, alertOccurrences, recordTime } from '../../schemas/alert.js';
import type { DeadLetter } from '../../schemas/dead-letter.js';
import {
  type Attribution,
  activeUntil,
  LAST_ACTIVITY,
  type Session,
  sessionPlantedCredentials,
} from '../../schemas/session.js';
import { toIso } from '../time.js';

/** What exports and reports ask the ledger for: a time range (`from` inclusive, `to` exclusive) and filters. */
export type LedgerQuery = {
  from?: number;
  to?: number;
  /** A DB system OCID. */
  dbSystem?: string;
  /**
   * Sessions: those active at some time in [from, to) (connected before `to`, and active until
   * `from` or later: activeUntil), not only those that connected in it. Alerts: also those raised
   * before `from` whose last merged repeat (`last_time`) is at `from` or after, first (by time).
   */
  active?: boolean;
  /** Alerts only: rule ids. */
  rules?: readonly string[];
};

export type CellValue = string | number | null;

/**
 * One column of a view (and of a CSV export). `stored` names the table column where it is older
 * than the ledger (per dialect); the others are typed columns of the same name.
 */
export type LedgerField<T> = {
  name: string;
  type: 'text' | 'int' | 'enum';
  value(row: T): CellValue;
  stored?: { sqlite: string; mysql: string };
  /**
   * A column added after the ledger's first schema, by a migration of its own (see
   * FIRST_SESSION_COLUMNS): the first such migration, the second, ...
   */
  later?: number;
};

/** Column `c` stored as VARBINARY in MySQL, shown as text. */
const binary = (c: string) => ({ sqlite: c, mysql: `CONVERT(${c} USING utf8mb4)` });
const same = (c: string) => ({ sqlite: c, mysql: c });
const bool = (b: boolean) => (b ? 1 : 0);
const optional = (v: string | undefined | null) => (v === undefined || v === '' ? null : v);

/** The `audit_sessions` view and the sessions CSV, in this order. */
export const SESSION_FIELDS: readonly LedgerField<Session>[] = [
  { name: 'session_id', type: 'text', value: (s) => s.id, stored: binary('id') },
  { name: 'db_system_id', type: 'text', value: (s) => s.dbSystem.id, stored: same('db') },
  { name: 'db_system_name', type: 'text', value: (s) => s.dbSystem.name },
  { name: 'instance', type: 'text', value: (s) => optional(s.instance) },
  { name: 'connection_id', type: 'int', value: (s) => s.connectionId },
  { name: 'connect_time', type: 'text', value: (s) => s.connectTime },
  { name: 'connect_ts', type: 'int', value: (s) => s.connectTs, stored: same('connect_ts') },
  { name: 'disconnect_time', type: 'text', value: (s) => optional(s.disconnectTime) },
  { name: 'end_reason', type: 'enum', value: (s) => s.endReason ?? null, later: 1 },
  { name: 'outcome', type: 'enum', value: (s) => s.outcome },
  { name: 'error_code', type: 'int', value: (s) => s.status },
  { name: 'login_user', type: 'text', value: (s) => s.login.user },
  { name: 'login_os', type: 'text', value: (s) => optional(s.login.os) },
  { name: 'login_proxy', type: 'text', value: (s) => optional(s.login.proxy) },
  { name: 'source_ip', type: 'text', value: (s) => optional(s.sourceIp) },
  { name: 'mysql_account', type: 'text', value: (s) => s.mysqlAccount },
  { name: 'person_id', type: 'text', value: (s) => s.identity?.id ?? null },
  { name: 'person_name', type: 'text', value: (s) => s.identity?.name ?? null },
  { name: 'group_id', type: 'text', value: (s) => s.group?.id ?? null },
  { name: 'group_name', type: 'text', value: (s) => s.group?.name ?? null },
  { name: 'proxied', type: 'int', value: (s) => bool(s.proxied) },
  { name: 'attribution_method', type: 'enum', value: (s) => s.attribution?.method ?? null },
  { name: 'attribution_confidence', type: 'enum', value: (s) => s.attribution?.confidence ?? null },
  { name: 'attribution_problem', type: 'enum', value: (s) => s.attribution?.problem ?? null },
  {
    name: 'planted_credentials',
    type: 'int',
    value: (s) => sessionPlantedCredentials(s).length || null,
    later: 2,
  },
  { name: 'break_glass_grant', type: 'text', value: (s) => s.breakGlassGrant },
  { name: 'mfa_factor', type: 'text', value: (s) => optional(s.mfaFactor) },
  { name: 'queries', type: 'int', value: (s) => s.counts.queries },
  { name: 'table_access', type: 'int', value: (s) => s.counts.tableAccess },
  { name: 'change_user', type: 'int', value: (s) => s.counts.changeUser },
  { name: 'failed_statements', type: 'int', value: (s) => s.counts.failedStatements },
];

/** A string detail of an alert (`details.sessionId`), or null. */
function detail(a: Alert, key: string): string | null {
  const v = a.details?.[key];
  return typeof v === 'string' ? v : null;
}

/** The `audit_findings` view and the alerts CSV, in this order. */
export const ALERT_FIELDS: readonly LedgerField<Alert>[] = [
  { name: 'finding_id', type: 'text', value: (a) => a.id, stored: binary('id') },
  { name: 'rule', type: 'text', value: (a) => a.rule, stored: same('rule') },
  { name: 'severity', type: 'enum', value: (a) => a.severity },
  {
    name: 'finding_time',
    type: 'text',
    value: recordTime,
    stored: { sqlite: 'time', mysql: 'CONVERT(alert_time USING utf8mb4)' },
  },
  { name: 'finding_ts', type: 'int', value: (a) => Date.parse(recordTime(a)) },
  { name: 'status', type: 'enum', value: (a) => a.status ?? 'open' },
  { name: 'title', type: 'text', value: (a) => a.title },
  { name: 'db_system_id', type: 'text', value: (a) => a.dbSystem?.id ?? null },
  { name: 'db_system_name', type: 'text', value: (a) => a.dbSystem?.name ?? null },
  { name: 'person_id', type: 'text', value: (a) => a.identity?.principalId ?? null },
  { name: 'person_name', type: 'text', value: (a) => a.identity?.name ?? null },
  { name: 'mysql_account', type: 'text', value: (a) => optional(a.mysqlAccount) },
  { name: 'login_user', type: 'text', value: (a) => optional(a.loginUser) },
  { name: 'group_id', type: 'text', value: (a) => a.group?.id ?? null },
  { name: 'group_name', type: 'text', value: (a) => a.group?.name ?? null },
  { name: 'source_ip', type: 'text', value: (a) => optional(a.sourceIp) },
  { name: 'session_id', type: 'text', value: (a) => detail(a, 'sessionId') },
  {
    name: 'occurrences',
    type: 'int',
    value: alertOccurrences,
    stored: same('occurrences'),
  },
  { name: 'last_time', type: 'text', value: (a) => detail(a, 'lastTime'), stored: same('last_time') },
];

/**
 * A dead letter as a store keeps it: its number there, and when it was stored (unknown for those
 * stored before stores recorded it).
 */
export type StoredDeadLetter = DeadLetter & { seq: number; storedTime?: string };

/** A field of a dead letter's JSON body, in each dialect. */
const fromBody = (key: string, int = false) => ({
  sqlite: `json_extract(body, '$.${key}')`,
  mysql: int
    ? `CAST(JSON_EXTRACT(body, '$.${key}') AS SIGNED)`
    : `JSON_UNQUOTE(JSON_EXTRACT(body, '$.${key}'))`,
});

/** The `audit_dead_letters` view and the dead letters CSV, in this order. */
export const DEAD_LETTER_FIELDS: readonly LedgerField<StoredDeadLetter>[] = [
  { name: 'seq', type: 'int', value: (d) => d.seq, stored: same('seq') },
  { name: 'stored_time', type: 'text', value: (d) => d.storedTime ?? null },
  {
    name: 'stored_ts',
    type: 'int',
    value: (d) => (d.storedTime === undefined ? null : Date.parse(d.storedTime)),
  },
  { name: 'code', type: 'enum', value: (d) => d.code, stored: fromBody('code') },
  { name: 'source', type: 'text', value: (d) => d.source, stored: fromBody('source') },
  { name: 'line', type: 'int', value: (d) => d.line ?? null, stored: fromBody('line', true) },
  { name: 'record_index', type: 'int', value: (d) => d.index ?? null, stored: fromBody('index', true) },
  {
    name: 'field_path',
    type: 'text',
    value: (d) => (d.path === undefined ? null : JSON.stringify(d.path)),
    stored: fromBody('path'),
  },
  { name: 'message', type: 'text', value: (d) => d.message, stored: fromBody('message') },
];

/** The typed columns a commit writes (the fields without an older stored column). */
export const SESSION_COLUMNS = SESSION_FIELDS.filter((f) => f.stored === undefined);
/** The typed session columns of the ledger's first schema (schema 4's migration adds and fills these, and no others). */
export const FIRST_SESSION_COLUMNS = SESSION_COLUMNS.filter((f) => !f.later);
/**
 * The typed session columns the `later`-th migration after the first schema adds, with the view that
 * shows them: 1 `end_reason`, 2 `planted_credentials`.
 */
export const laterSessionColumns = (later: number) => SESSION_COLUMNS.filter((f) => f.later === later);
export const ALERT_COLUMNS = ALERT_FIELDS.filter((f) => f.stored === undefined);

const field = (name: string) => ALERT_FIELDS.find((f) => f.name === name)!;
const OCCURRENCES = field('occurrences');
const LAST_TIME = field('last_time');

/**
 * The `occurrences` and `last_time` columns of an alert row as it is first stored: a repeat merged
 * into the alert before it was stored (in the same batch) counts there too.
 */
export function alertMerges(a: Alert): [occurrences: CellValue, lastTime: CellValue] {
  return [OCCURRENCES.value(a), LAST_TIME.value(a)];
}

/** SQL that repairs the merge columns of alerts stored with 1 and NULL though their body counted more. */
export function repairAlertMergesSql(dialect: 'sqlite' | 'mysql'): string {
  const extract = (path: string) =>
    dialect === 'sqlite'
      ? `json_extract(body, '$.details.${path}')`
      : `JSON_UNQUOTE(JSON_EXTRACT(body, '$.details.${path}'))`;
  return `UPDATE alerts SET occurrences = ${extract('occurrences')}, last_time = ${extract('lastTime')}
    WHERE occurrences = 1 AND ${extract('occurrences')} > 1`;
}
export const DEAD_LETTER_COLUMNS = DEAD_LETTER_FIELDS.filter((f) => f.stored === undefined);

export type Dialect = 'sqlite' | 'mysql';

/** Column type of a typed column. MySQL free text is TEXT: a long value must never fail a commit. */
export function columnType(field: LedgerField<unknown>, dialect: Dialect): string {
  if (dialect === 'sqlite') return field.type === 'int' ? 'INTEGER' : 'TEXT';
  return field.type === 'int' ? 'BIGINT' : field.type === 'enum' ? 'VARCHAR(32)' : 'TEXT';
}

/** A view's select list: each field from its column or expression. */
function viewColumns<T>(fields: readonly LedgerField<T>[], dialect: Dialect): string {
  return fields
    .map((f) => {
      const column = f.stored?.[dialect] ?? f.name;
      return column === f.name ? f.name : `${column} AS ${f.name}`;
    })
    .join(', ');
}

/**
 * The views of docs/sql.md as the ledger's migration created them, as `CREATE VIEW` bodies
 * (without the CREATE clause); `deadLetterView` came later, and `sessionsView` replaced the first.
 */
export function ledgerViews(dialect: Dialect): { name: string; select: string }[] {
  const list = <T>(fields: readonly LedgerField<T>[]) => viewColumns(fields, dialect);
  const text = (c: string) => (dialect === 'mysql' ? `CONVERT(${c} USING utf8mb4)` : c);
  return [
    sessionsView(dialect, 0),
    {
      name: 'audit_session_tables',
      select: `SELECT ${text('t.session_id')} AS session_id, s.db AS db_system_id, s.connect_time, s.connect_ts,
        s.person_id, s.person_name, s.mysql_account, t.table_name
        FROM session_tables t JOIN sessions s ON s.id = t.session_id`,
    },
    { name: 'audit_findings', select: `SELECT ${list(ALERT_FIELDS)} FROM alerts` },
    {
      name: 'audit_deliveries',
      select: `SELECT ${text('alert_id')} AS finding_id, ${text('sink')} AS sink, delivered_ts FROM deliveries`,
    },
  ];
}

/**
 * The `audit_sessions` view of docs/sql.md; as the `later`-th migration after the first schema
 * made it, when given (0: the first schema's).
 */
export function sessionsView(dialect: Dialect, later = Infinity): { name: string; select: string } {
  const fields = SESSION_FIELDS.filter((f) => (f.later ?? 0) <= later);
  return { name: 'audit_sessions', select: `SELECT ${viewColumns(fields, dialect)} FROM sessions` };
}

/**
 * Fills `planted_credentials` of the sessions stored before it existed, from their bodies (which
 * keep `attribution.plantedCredentials` whole in both dialects).
 */
export function backfillPlantedCredentialsSql(dialect: Dialect): string {
  const count =
    dialect === 'sqlite'
      ? "json_array_length(body, '$.attribution.plantedCredentials')"
      : "JSON_LENGTH(body, '$.attribution.plantedCredentials')";
  return `UPDATE sessions SET planted_credentials = ${count} WHERE body LIKE '%"plantedCredentials"%'`;
}

/** Which stored dead letters to read: stored in [from, to). */
export type DeadLetterQuery = Pick<LedgerQuery, 'from' | 'to'>;

/** A dead letter's row, as both stores read it. */
export type DeadLetterRow = { seq: number | string; stored_time: string | null; body: string };

/** What a commit stores for a dead letter: its body, and when (ISO 8601 and epoch ms). */
export function deadLetterRow(dead: DeadLetter, now: number): [body: string, time: string, ts: number] {
  return [JSON.stringify(dead), toIso(now), now];
}

export function storedDeadLetter(r: DeadLetterRow): StoredDeadLetter {
  const dead = JSON.parse(r.body) as DeadLetter;
  return { seq: Number(r.seq), ...(r.stored_time === null ? {} : { storedTime: r.stored_time }), ...dead };
}

/** The `audit_dead_letters` view of docs/sql.md, as a `CREATE VIEW` body. */
export function deadLetterView(dialect: Dialect): { name: string; select: string } {
  return {
    name: 'audit_dead_letters',
    select: `SELECT ${viewColumns(DEAD_LETTER_FIELDS, dialect)} FROM dead_letters`,
  };
}

/** Sessions of the ledger with one outcome and attribution (what attribution coverage counts). */
export type SessionCount = {
  outcome: string;
  method: string | null;
  confidence: string | null;
  sessions: number;
};

/** The ledger's sessions counted by outcome and attribution, from the typed columns (both dialects). */
export const SESSION_COUNTS_SQL = `SELECT outcome, attribution_method AS method, attribution_confidence AS confidence,
  COUNT(*) AS sessions FROM sessions GROUP BY outcome, attribution_method, attribution_confidence`;

/**
 * The sessions a pipeline restores when it opens (StateStore.loadSessions), ordered: the open ones
 * (column `open`), then the closed ones connected since a time (the one parameter). Each part
 * searches its own index. Written as one `open = 1 OR connect_ts >= ?`, SQLite scanned the whole
 * ledger, which grows with retention and is read each time a function opens a shared store.
 */
export function restoredSessionsSql(open: string, columns: string): string {
  const select = `SELECT connect_ts, id, ${columns} FROM sessions`;
  return `${select} WHERE ${open} = 1 UNION ALL ${select} WHERE connect_ts >= ? AND ${open} = 0 ORDER BY connect_ts, id`;
}

/**
 * What a SQLite store reads a session from, in this order: `connect_ts, id` (as restoredSessionsSql
 * selects them first), then `SESSION_READ_COLUMNS`. The row comes as an array (better-sqlite3's
 * `raw`): as an object of 27 columns it took half again as long to read.
 */
const SESSION_ROW = [
  'connect_ts',
  'id',
  'db',
  'person_id',
  'group_id',
  'db_system_name',
  'instance',
  'connect_time',
  'disconnect_time',
  'outcome',
  'login_user',
  'login_os',
  'login_proxy',
  'source_ip',
  'mysql_account',
  'person_name',
  'group_name',
  'attribution_method',
  'attribution_confidence',
  'attribution_problem',
  'break_glass_grant',
  'mfa_factor',
  'body',
  'queries',
  'table_access',
  'change_user',
  'failed_statements',
] as const;

/** The columns of a session's row after `connect_ts, id`, for a SELECT list (`readSession`). */
export const SESSION_READ_COLUMNS = SESSION_ROW.slice(2).join(', ');

/** Each column's place in a row read with `SESSION_READ_COLUMNS`. */
const R = Object.fromEntries(SESSION_ROW.map((name, i) => [name, i])) as Record<
  (typeof SESSION_ROW)[number],
  number
>;

/** A session's row as a SQLite store reads it: `connect_ts, id, SESSION_READ_COLUMNS`. */
export type SessionRow = readonly unknown[];

/** The time (connect_ts) and id of a session's row: where a page of them ends. */
export const rowKey = (row: SessionRow) => ({ ts: row[R.connect_ts] as number, id: row[R.id] as string });

/** Stands for a value the row's column holds: never a valid value of the fields it replaces. */
const OMITTED = 0 as unknown as string;

/**
 * A session's body as the SQLite store keeps it: its JSON with what the row's typed columns already
 * hold left as 0 (the four OCIDs, its times and texts; a text only when it is not empty, since a
 * column holds an empty text as null), its counts as 0 (a commit may update the count columns alone),
 * and its connect key, when its attribution names that key as evidence, as a number: the evidence's
 * index n, or -(n + 1) where that evidence also leaves the DB system's OCID it starts with to the row.
 * Every key stays in its place, so `readSession` gives back the same JSON: about 40% fewer bytes
 * than the whole JSON, each written again whenever the session changes. Bodies written before
 * schema 7 hold more, and are read as they are.
 */
export function sessionBody(s: Session): string {
  // Replaced for the stringify and put back after it, not copied: a replay writes a body per
  // session and batch, and copies made it take 6.1 µs a body instead of 4.4.
  const { dbSystem, login, identity, group, attribution, counts } = s;
  const kept = {
    id: s.id,
    db: dbSystem.id,
    dbName: dbSystem.name,
    instance: s.instance,
    connectTime: s.connectTime,
    connectTs: s.connectTs,
    disconnectTime: s.disconnectTime,
    outcome: s.outcome,
    user: login.user,
    os: login.os,
    proxy: login.proxy,
    sourceIp: s.sourceIp,
    mysqlAccount: s.mysqlAccount,
    person: identity?.id,
    personName: identity?.name,
    group: group?.id,
    groupName: group?.name,
    method: attribution?.method,
    confidence: attribution?.confidence,
    problem: attribution?.problem,
    grant: s.breakGlassGrant,
    mfa: s.mfaFactor,
    connectKey: s.connectKey,
    queries: counts.queries,
    tableAccess: counts.tableAccess,
    changeUser: counts.changeUser,
    failed: counts.failedStatements,
  };
  const text = <T extends string | null | undefined>(v: T): T => (v ? (OMITTED as T) : v);
  s.id = OMITTED;
  dbSystem.id = OMITTED;
  dbSystem.name = text(dbSystem.name)!;
  if (s.instance !== undefined) s.instance = text(s.instance);
  s.connectTime = text(s.connectTime)!;
  s.connectTs = 0;
  if (s.disconnectTime !== undefined) s.disconnectTime = text(s.disconnectTime);
  s.outcome = OMITTED as Session['outcome'];
  login.user = text(login.user)!;
  login.os = text(login.os)!;
  login.proxy = text(login.proxy)!;
  if (s.sourceIp !== undefined) s.sourceIp = text(s.sourceIp);
  s.mysqlAccount = text(s.mysqlAccount)!;
  if (identity) {
    identity.id = OMITTED;
    identity.name = text(identity.name)!;
  }
  if (group) {
    group.id = OMITTED;
    group.name = text(group.name)!;
  }
  const evidence = attribution ? attribution.evidence.indexOf(s.connectKey) : -1;
  if (attribution) {
    attribution.method = OMITTED as Attribution['method'];
    attribution.confidence = OMITTED as Attribution['confidence'];
    if (attribution.problem !== undefined) attribution.problem = OMITTED as Attribution['problem'];
  }
  s.breakGlassGrant = text(s.breakGlassGrant)!;
  if (s.mfaFactor !== undefined) s.mfaFactor = text(s.mfaFactor);
  // The connect key names its DB system first (MysqlEvent.key).
  const stripped = evidence >= 0 && kept.connectKey.startsWith(kept.db);
  if (stripped) attribution!.evidence[evidence] = kept.connectKey.slice(kept.db.length);
  if (evidence >= 0) s.connectKey = (stripped ? -(evidence + 1) : evidence) as unknown as string;
  counts.queries = 0;
  counts.tableAccess = 0;
  counts.changeUser = 0;
  counts.failedStatements = 0;
  try {
    return JSON.stringify(s);
  } finally {
    s.id = kept.id;
    dbSystem.id = kept.db;
    dbSystem.name = kept.dbName;
    if (kept.instance !== undefined) s.instance = kept.instance;
    s.connectTime = kept.connectTime;
    s.connectTs = kept.connectTs;
    if (kept.disconnectTime !== undefined) s.disconnectTime = kept.disconnectTime;
    s.outcome = kept.outcome;
    login.user = kept.user;
    login.os = kept.os;
    login.proxy = kept.proxy;
    if (kept.sourceIp !== undefined) s.sourceIp = kept.sourceIp;
    s.mysqlAccount = kept.mysqlAccount;
    if (identity) {
      identity.id = kept.person!;
      identity.name = kept.personName!;
    }
    if (group) {
      group.id = kept.group!;
      group.name = kept.groupName!;
    }
    if (attribution) {
      attribution.method = kept.method!;
      attribution.confidence = kept.confidence!;
      if (kept.problem !== undefined) attribution.problem = kept.problem;
    }
    s.breakGlassGrant = kept.grant;
    if (kept.mfa !== undefined) s.mfaFactor = kept.mfa;
    s.connectKey = kept.connectKey;
    if (stripped) attribution!.evidence[evidence] = kept.connectKey;
    counts.queries = kept.queries;
    counts.tableAccess = kept.tableAccess;
    counts.changeUser = kept.changeUser;
    counts.failedStatements = kept.failed;
  }
}

/** A text of a body (`sessionBody`): the column's when the body left it as 0. */
const fromColumn = <T>(body: T, column: unknown): T => ((body as unknown) === 0 ? (column as T) : body);

/**
 * A session read from a SQLite row (`SessionRow`): its body (`sessionBody`) with what it left to the
 * row's columns put back, and the counts and disconnect of the typed columns, which a commit may
 * update alone (CommitBatch.counted) and so be ahead of the body's.
 */
export function readSession(row: SessionRow): Session {
  const s = JSON.parse(row[R.body] as string) as Session;
  s.id = fromColumn(s.id, row[R.id]);
  const { dbSystem, login, identity, group, attribution } = s;
  dbSystem.id = fromColumn(dbSystem.id, row[R.db]);
  dbSystem.name = fromColumn(dbSystem.name, row[R.db_system_name]);
  if (s.instance !== undefined) s.instance = fromColumn(s.instance, row[R.instance]);
  s.connectTime = fromColumn(s.connectTime, row[R.connect_time]);
  s.connectTs = row[R.connect_ts] as number;
  if (s.disconnectTime !== undefined) s.disconnectTime = fromColumn(s.disconnectTime, row[R.disconnect_time]);
  // A close written as columns alone (CommitBatch.counted): the disconnect is the session's last key.
  else if (row[R.disconnect_time] !== null) s.disconnectTime = row[R.disconnect_time] as string;
  s.outcome = fromColumn(s.outcome, row[R.outcome]);
  login.user = fromColumn(login.user, row[R.login_user]);
  login.os = fromColumn(login.os, row[R.login_os]);
  login.proxy = fromColumn(login.proxy, row[R.login_proxy]);
  if (s.sourceIp !== undefined) s.sourceIp = fromColumn(s.sourceIp, row[R.source_ip]);
  s.mysqlAccount = fromColumn(s.mysqlAccount, row[R.mysql_account]);
  if (identity) {
    identity.id = fromColumn(identity.id, row[R.person_id] ?? '');
    identity.name = fromColumn(identity.name, row[R.person_name]);
  }
  if (group) {
    group.id = fromColumn(group.id, row[R.group_id] ?? '');
    group.name = fromColumn(group.name, row[R.group_name]);
  }
  if (attribution) {
    attribution.method = fromColumn(attribution.method, row[R.attribution_method]);
    attribution.confidence = fromColumn(attribution.confidence, row[R.attribution_confidence]);
    if (attribution.problem !== undefined)
      attribution.problem = fromColumn(attribution.problem, row[R.attribution_problem]);
  }
  s.breakGlassGrant = fromColumn(s.breakGlassGrant, row[R.break_glass_grant]);
  if (s.mfaFactor !== undefined) s.mfaFactor = fromColumn(s.mfaFactor, row[R.mfa_factor]);
  const connectKey = s.connectKey as string | number;
  if (typeof connectKey === 'number') {
    const { evidence } = attribution!;
    if (connectKey < 0) evidence[-connectKey - 1] = row[R.db] + evidence[-connectKey - 1]!;
    s.connectKey = evidence[connectKey < 0 ? -connectKey - 1 : connectKey]!;
  }
  const { counts } = s;
  counts.queries = row[R.queries] as number;
  counts.tableAccess = row[R.table_access] as number;
  counts.changeUser = row[R.change_user] as number;
  counts.failedStatements = row[R.failed_statements] as number;
  return s;
}

/** What a SQLite store restores a session from (StateStore.loadSessions): its row, then its last activity. */
export const RESTORED_COLUMNS = `${SESSION_READ_COLUMNS}, last_activity_ts`;

/** A session a pipeline restores, from `connect_ts, id, RESTORED_COLUMNS`: with its last activity. */
export function restoredSession(row: SessionRow): Session {
  const s = readSession(row);
  const last = row[SESSION_ROW.length];
  if (last !== null) s[LAST_ACTIVITY] = last as number;
  return s;
}

/** The (session id, table) rows of sessions' touched tables. */
export function sessionTableRows(sessions: readonly Session[]): [string, string][] {
  const rows: [string, string][] = [];
  for (const s of sessions) for (const t of s.tables ?? []) rows.push([s.id, t]);
  return rows;
}

/**
 * The sessions whose touched tables a store still has to write. An open session is written again
 * in every batch that touches it, but its tables only grow: a session with as many tables as this
 * store last committed for it has no new row. `committed` records a batch once it is durable;
 * a prune of the ledger (which deletes table rows) forgets everything.
 */
export class SessionTablesWritten {
  private written = new WeakMap<Session, number>();

  /** The sessions of a batch with tables not yet written. */
  pending(sessions: readonly Session[]): Set<Session> {
    return new Set(sessions.filter((s) => (s.tables?.length ?? 0) !== (this.written.get(s) ?? 0)));
  }

  committed(batch: { sessions: readonly Session[]; pruneLedgerBefore?: number | undefined }): void {
    if (batch.pruneLedgerBefore !== undefined) this.written = new WeakMap();
    else for (const s of batch.sessions) this.written.set(s, s.tables?.length ?? 0);
  }
}

/** The WHERE conditions of a query on `sessions`, `alerts` or `dead_letters` (placeholders, one per value). */
export function ledgerConditions(
  query: LedgerQuery,
  columns: { ts: string; db?: string; rule?: string },
): { conditions: string[]; params: (string | number)[] } {
  const conditions: string[] = [];
  const params: (string | number)[] = [];
  if (query.from !== undefined) {
    conditions.push(`${columns.ts} >= ?`);
    params.push(query.from);
  }
  if (query.to !== undefined) {
    conditions.push(`${columns.ts} < ?`);
    params.push(query.to);
  }
  if (query.dbSystem !== undefined && columns.db !== undefined) {
    conditions.push(`${columns.db} = ?`);
    params.push(query.dbSystem);
  }
  if (query.rules !== undefined && columns.rule !== undefined) {
    if (query.rules.length === 0) conditions.push('1 = 0');
    else conditions.push(`${columns.rule} IN (${query.rules.map(() => '?').join(', ')})`);
    params.push(...query.rules);
  }
  return { conditions, params };
}

/**
 * An `active` alert query's first part (StateStore.alerts): the records raised before `from` (their
 * time column, ISO 8601 text in time order) with a repeat merged in at `from` or after, read through
 * the index on `last_time`: the records raised before a period are the store's whole history before
 * it, those repeated into it a few.
 */
export function repeatedAlertsQuery(
  dialect: 'sqlite' | 'mysql',
  from: number,
): { source: string; conditions: string[]; params: string[] } {
  const [source, time] =
    dialect === 'sqlite'
      ? ['alerts INDEXED BY alerts_last', 'time']
      : ['alerts FORCE INDEX (alerts_last)', 'alert_time'];
  return { source, conditions: [`${time} < ?`, 'last_time >= ?'], params: [toIso(from), toIso(from)] };
}

/**
 * The WHERE conditions of an `active` session query's first part (StateStore.sessions): the
 * sessions on its DB system that connected before `from` and were active at it or after, and those
 * whose row does not say until when they were active (an instance of the version before the column
 * still running after the upgrade writes them so): the reader keeps those of them active at `from`
 * or after (carriedActive). Both stores read them through an index on (active_until_ts, connect_ts).
 */
export function carriedSessionConditions(
  from: number,
  dbSystem: LedgerQuery['dbSystem'],
): { conditions: string[]; params: (string | number)[] } {
  const db = ledgerConditions(dbSystem === undefined ? {} : { dbSystem }, {
    ts: 'connect_ts',
    db: 'db',
  });
  return {
    conditions: ['(active_until_ts >= ? OR active_until_ts IS NULL)', 'connect_ts < ?', ...db.conditions],
    params: [from, from, ...db.params],
  };
}

/**
 * Whether a session the first part of an `active` query read (carriedSessionConditions) was active
 * at `from` or after: its row may not have said, so this asks the session (read with its last
 * activity).
 */
export const carriedActive = (s: Session, from: number): boolean => activeUntil(s) >= from;
