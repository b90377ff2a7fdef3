// MySQL Enterprise audit record -> canonical DbEvent (schemas/events.ts).
import type { z } from 'zod';
import type { Outcome, RecordLocation } from '../../schemas/dead-letter.js';
import type { DbEvent } from '../../schemas/events.js';
import {
  type GenericMysqlAuditRecord,
  type KnownMysqlAuditRecord,
  LenientNumber,
  parseMysqlAuditRecord,
  type QueryStatisticsSchema,
} from '../../schemas/mysql-audit.js';
import { heldStatementFacts, isRoutineStatement } from '../correlate/sql-facts.js';
import { type DbRef, schemaInvalidLetter } from '../decode/classify.js';
import { deadLetter } from '../decode/split-records.js';
import { redactSecrets } from './redact.js';

type Sql = NonNullable<DbEvent['sql']>;
type Stats = NonNullable<DbEvent['stats']>;

// `YYYY-MM-DD hh:mm:ss` (UTC) as MySQL writes it; also ISO 8601 with `T`, fractions and an offset.
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/;

const CONNECTION_KINDS = ['connect', 'change_user', 'disconnect'] as const;

/**
 * A normalized record, and whether it is a routine statement (`isRoutineStatement`): decoding
 * knows, so that a replay can take a connection's routine statements together without asking again.
 */
export type MysqlOutcome = Outcome<DbEvent> & ({ ok: false } | { ok: true; routine: boolean });

/** A record's time: as the log wrote it, as epoch ms, and in ISO 8601. */
type EventTime = { text: string; ts: number; iso: string };

/**
 * A normalized MySQL audit event whose dedupe key is joined only when it is first read. A replay
 * reads the keys of few routine statements (log positions dedupe the rest, log-positions.ts), and
 * a key is the largest string a statement would hold while it waits for its batch. `toJSON` gives
 * the plain event, key in its place; a structured clone (postMessage) does not call it, so what is
 * sent to another thread is `toJSON()` (shared/decode/transfer.ts).
 */
export class MysqlEvent implements DbEvent {
  readonly source = 'mysql';
  kind: DbEvent['kind'] = 'other';
  time: string;
  ts: number;
  dbSystemId: string;
  recordId: number;
  connectionId: number | null;
  class: string;
  event: string;
  login: DbEvent['login'] = null;
  account: DbEvent['account'] = null;
  status = 0;
  declare dbSystemName?: string;
  declare instance?: string;
  declare db?: string;
  declare connectionType?: string;
  declare attributes?: DbEvent['attributes'];
  declare sql?: DbEvent['sql'];
  declare table?: DbEvent['table'];
  declare stats?: DbEvent['stats'];
  declare server?: DbEvent['server'];
  /** The record's timestamp as the log wrote it, which the key names. */
  readonly #stamp: string;
  #key: string | undefined;

  constructor(
    db: DbRef,
    stamp: string,
    ts: number,
    time: string,
    recordId: number,
    connectionId: number | null,
    cls: string,
    event: string,
  ) {
    this.time = time;
    this.ts = ts;
    this.dbSystemId = db.id;
    this.recordId = recordId;
    this.connectionId = connectionId;
    this.class = cls;
    this.event = event;
    if (db.name !== undefined) this.dbSystemName = db.name;
    if (db.instance !== undefined) this.instance = db.instance;
    this.#stamp = stamp;
  }

  /** `dbSystemId[/instance]:timestamp:id:connectionId` (the timestamp as the log wrote it). */
  get key(): string {
    this.#key ??= mysqlEventKey(this, this.#stamp);
    return this.#key;
  }

  /** The record's timestamp as the log wrote it. */
  get stamp(): string {
    return this.#stamp;
  }

  /** The plain event, with the properties in the order JSON has always had them. */
  toJSON(): DbEvent {
    const { source, kind, ...rest } = this;
    return { source, kind, key: this.key, ...rest };
  }
}

/** A MySQL event's dedupe key (`DbEvent.key`), its timestamp as the log wrote it. */
export function mysqlEventKey(
  ev: Pick<DbEvent, 'dbSystemId' | 'instance' | 'recordId' | 'connectionId'>,
  stamp: string,
): string {
  const log = ev.instance === undefined ? ev.dbSystemId : `${ev.dbSystemId}/${ev.instance}`;
  return [log, stamp, ev.recordId, ev.connectionId ?? '-'].join(':');
}

/** Normalizes one raw MySQL audit record of DB system `db`; a record of the wrong shape is a dead letter. */
export function normalizeMysqlAudit(raw: unknown, db: DbRef, loc: RecordLocation): MysqlOutcome {
  const parsed = parseMysqlAuditRecord(raw);
  if (!parsed.success)
    return { ok: false, dead: schemaInvalidLetter(parsed.error, loc, 'MySQL audit record') };
  const { record } = parsed.data;
  const time = eventTime(record.timestamp);
  if (time === undefined) {
    const message = 'MySQL audit record: timestamp: expected YYYY-MM-DD hh:mm:ss (UTC)';
    return { ok: false, dead: deadLetter('SCHEMA_INVALID', loc, message, ['timestamp']) };
  }
  const connectionId = record.connection_id ?? null;
  const event = new MysqlEvent(
    db,
    time.text,
    time.ts,
    time.iso,
    record.id,
    connectionId,
    record.class,
    record.event ?? '',
  );
  if (parsed.data.known) fillKnown(event, parsed.data.record);
  else fillGeneric(event, parsed.data.record);
  // Routine statements are most events, and each lives until its batch commits: they keep only
  // what their session needs (no login or account objects).
  if (isRoutineStatement(event)) return { ok: true, value: event, routine: true };
  const login = record.login && withPerconaUser(record.login);
  const account = record.account && withPerconaUser(record.account);
  if (login)
    event.login = {
      user: login.user,
      os: record.login?.os ?? '',
      ip: login.ip,
      proxy: record.login?.proxy ?? '',
    };
  if (account) event.account = { user: account.privUser, host: account.host };
  return { ok: true, value: event, routine: false };
}

// Records arrive in time order, many in the same second and most in the same day: remember the
// last timestamp parsed, and the day of the last one in MySQL's own form.
let lastTime: EventTime | undefined;
let lastDay: { prefix: string; ms: number; date: string } | undefined;

function eventTime(text: string): EventTime | undefined {
  if (lastTime?.text === text) return lastTime;
  const sameDay = lastDay !== undefined && text.startsWith(lastDay.prefix) ? timeOfDayMs(text) : undefined;
  if (sameDay !== undefined) {
    lastTime = { text, ts: lastDay!.ms + sameDay, iso: `${lastDay!.date}T${text.slice(11)}.000Z` };
    return lastTime;
  }
  const ts = parseAuditTimestamp(text);
  if (ts === undefined) return undefined;
  lastTime = { text, ts, iso: new Date(ts).toISOString() };
  const ofDay = timeOfDayMs(text);
  if (ofDay !== undefined)
    lastDay = { prefix: text.slice(0, 11), ms: ts - ofDay, date: lastTime.iso.slice(0, 10) };
  return lastTime;
}

/** The `hh:mm:ss` of `YYYY-MM-DD hh:mm:ss` in ms, or undefined for any other form. */
function timeOfDayMs(text: string): number | undefined {
  if (text.length !== 19 || text[10] !== ' ' || text[13] !== ':' || text[16] !== ':') return undefined;
  const hours = twoDigits(text, 11);
  const minutes = twoDigits(text, 14);
  const seconds = twoDigits(text, 17);
  if (!(hours <= 23 && minutes <= 59 && seconds <= 59)) return undefined;
  return ((hours * 60 + minutes) * 60 + seconds) * 1000;
}

/** The two decimal digits at `at`, or NaN. */
function twoDigits(text: string, at: number): number {
  const tens = text.charCodeAt(at) - 48;
  const units = text.charCodeAt(at + 1) - 48;
  return tens >= 0 && tens <= 9 && units >= 0 && units <= 9 ? tens * 10 + units : Number.NaN;
}

/** Epoch ms of an audit timestamp (UTC unless it carries an offset); undefined if it is not one. */
export function parseAuditTimestamp(text: string): number | undefined {
  const m = TIMESTAMP.exec(text);
  if (!m) return undefined;
  const part = (i: number) => Number(m[i]);
  const [year, month, day, hour, minute, second] = [part(1), part(2), part(3), part(4), part(5), part(6)];
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const date = new Date(ms);
  // Date.UTC rolls over (2026-02-30 is March 2nd): reject instead.
  if (
    date.getUTCMonth() !== month - 1 ||
    date.getUTCDate() !== day ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    return undefined;
  }
  const fraction = m[7] ? Math.floor(Number(m[7]) * 1000) : 0;
  return ms + fraction - offsetMs(m[8]);
}

function offsetMs(zone: string | undefined): number {
  if (zone === undefined || zone === 'Z') return 0;
  const digits = zone.slice(1).replace(':', '');
  const minutes = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2));
  return (zone[0] === '-' ? -1 : 1) * minutes * 60_000;
}

/** Sets the kind, status and class-specific fields of a known class. */
function fillKnown(event: DbEvent, record: KnownMysqlAuditRecord): void {
  switch (record.class) {
    case 'audit': {
      event.kind =
        record.event === 'startup' ? 'server_start' : record.event === 'shutdown' ? 'server_stop' : 'other';
      const serverId = record.startup_data?.server_id ?? record.shutdown_data?.server_id ?? record.server_id;
      const version = record.startup_data?.mysql_version;
      if (serverId != null || version) {
        event.server = {};
        if (serverId != null) event.server.serverId = serverId;
        if (version) event.server.version = version;
      }
      return;
    }
    case 'connection': {
      const data = record.connection_data;
      event.kind = CONNECTION_KINDS.find((k) => k === record.event) ?? 'other';
      event.status = data?.status ?? 0;
      if (data?.db) event.db = data.db;
      if (data?.connection_type) event.connectionType = data.connection_type;
      const attributes = stringValues(data?.connection_attributes);
      if (attributes) event.attributes = attributes;
      return;
    }
    case 'general': {
      const data = record.general_data;
      event.kind = record.event === 'status' ? 'query' : 'other';
      event.status = data?.status ?? 0;
      const sql = sqlOf(data?.command, data?.sql_command, data?.query, data?.status);
      if (sql) event.sql = sql;
      const stats = statsOf(record.query_statistics);
      if (stats) event.stats = stats;
      return;
    }
    case 'table_access': {
      // A table access is a routine statement: its session counts it and notes its table. Its
      // statement is the `general` record's that follows it, so its own copy of the text is not
      // kept (neither redacted nor held until its batch commits).
      const data = record.table_access_data;
      if (!data) return;
      event.kind = 'table_access';
      event.table = { db: data.db ?? '', table: data.table ?? '', op: record.event };
      const stats = statsOf(record.query_statistics);
      if (stats) event.stats = stats;
      return;
    }
  }
}

/**
 * Any other class is `other`. Percona's `command` (`command_data`: `command_start`,
 * `command_end`) and `query` (`query_data`: `query_start`, `query_status_end`, ...) records mark
 * the steps of a statement that Percona also writes as `general`/`status`, which is the one that
 * counts: their status and text are kept in `sql` for outputs, never counted again.
 */
function fillGeneric(event: DbEvent, record: GenericMysqlAuditRecord): void {
  const data =
    record.class === 'query'
      ? record.query_data
      : record.class === 'command'
        ? record.command_data
        : undefined;
  if (typeof data !== 'object' || data === null) return;
  const fields = data as Record<string, unknown>;
  const status = lenientNumber(fields.status);
  event.status = status ?? 0;
  const sql =
    record.class === 'query'
      ? sqlOf(undefined, text(fields.sql_command), text(fields.query), status)
      : sqlOf(text(fields.command) ?? text(fields.name), undefined, undefined, status);
  if (sql) event.sql = sql;
}

// Percona writes `user[priv_user] @ host [ip]`, as MySQL's general query log does, where MySQL
// Enterprise writes the name alone.
const PERCONA_USER = /^(.*?)\[([^\]]*)\] @ (\S*) \[([^\]]*)\]$/;

/** `user` split from Percona's form: the name sent, the account whose privileges apply, host and IP. */
function withPerconaUser(ref: {
  user?: string | null | undefined;
  host?: string | null | undefined;
  ip?: string | null | undefined;
}): { user: string; privUser: string; host: string; ip: string } {
  const user = ref.user ?? '';
  const host = ref.host ?? '';
  const ip = ref.ip ?? '';
  const m = user.includes('[') ? PERCONA_USER.exec(user) : null;
  if (!m) return { user, privUser: user, host, ip };
  return { user: m[1]!, privUser: m[2] || m[1]!, host: host || m[3]!, ip: ip || m[4]! };
}

function sqlOf(
  command: string | null | undefined,
  sqlCommand: string | null | undefined,
  query: string | null | undefined,
  status: number | null | undefined,
): Sql | undefined {
  const sql: Sql = {};
  if (command != null) sql.command = command;
  if (sqlCommand != null) sql.sqlCommand = sqlCommand;
  if (query != null) sql.text = redactSecrets(query);
  // The values of user variables are redacted: what a statement held in one would do is read first.
  const held = query != null && sqlCommand != null ? heldStatementFacts(sqlCommand, query) : undefined;
  if (held) sql.held = held;
  if (status != null) sql.status = status;
  return Object.keys(sql).length > 0 ? sql : undefined;
}

/** The statistics the record gives, renamed (see `statsFrom`). */
function statsOf(source: z.infer<typeof QueryStatisticsSchema> | null | undefined): Stats | undefined {
  if (!source) return undefined;
  return statsFrom(
    source.query_time,
    source.rows_sent,
    source.rows_examined,
    source.bytes_received,
    source.bytes_sent,
  );
}

/**
 * The statistics given (null or undefined: absent), in this order; undefined for none. Written
 * field by field: a loop over the names reads and writes a property whose name varies, which V8
 * cannot cache (about 190 ns a record against 30, measured apart), and most statements have
 * statistics. A decoding worker's statements are rebuilt with it too (decode/transfer.ts).
 */
export function statsFrom(
  queryTime: number | null | undefined,
  rowsSent: number | null | undefined,
  rowsExamined: number | null | undefined,
  bytesReceived: number | null | undefined,
  bytesSent: number | null | undefined,
): Stats | undefined {
  if (
    queryTime == null &&
    rowsSent == null &&
    rowsExamined == null &&
    bytesReceived == null &&
    bytesSent == null
  )
    return undefined;
  const stats: Stats = {};
  if (queryTime != null) stats.queryTime = queryTime;
  if (rowsSent != null) stats.rowsSent = rowsSent;
  if (rowsExamined != null) stats.rowsExamined = rowsExamined;
  if (bytesReceived != null) stats.bytesReceived = bytesReceived;
  if (bytesSent != null) stats.bytesSent = bytesSent;
  return stats;
}

/** Connection attributes as strings (numbers and booleans are rendered, nested values dropped). */
function stringValues(
  source: Record<string, unknown> | null | undefined,
): Record<string, string> | undefined {
  if (!source) return undefined;
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(source)) {
    if (typeof value === 'string') out[key] = value;
    else if (typeof value === 'number' || typeof value === 'boolean') out[key] = String(value);
  }
  return out;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function lenientNumber(value: unknown): number | undefined {
  const parsed = LenientNumber.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}
