// Decoded items sent from a decoding worker to the replay's thread. Structured clone costs about as
// much per value as decoding the record did, so routine statements (95% of a fleet's records)
// travel as columns: their short, repeating strings (kinds, DB systems, times, commands, tables)
// once per chunk with an index per statement, their numbers in one typed array, and their SQL texts
// end to end in one buffer of UTF-16 code units (a key is joined from its parts when it is read:
// MysqlEvent). The typed arrays are handed over, not copied (`transferables`), and a text is made a
// string only when it is read: few are (a break-glass session's statements). A statement is read
// from the columns when asked (`PackedStatement`): the values normalize gave, and its plain form
// with the same properties in the same order. Every other item is sent as it is, a MySQL event as
// its plain form (a structured clone drops getters).
import type { DbEvent } from '../../schemas/events.js';
import { MysqlEvent, mysqlEventKey, statsFrom } from '../normalize/mysql-audit.js';
import type { DbRef } from './classify.js';
import type { DecodedItem } from './read-input.js';

/** A chunk's items as a worker posts them (see `packItems`). */
export type TransferChunk = {
  /** Each item, or for a routine statement its row in the columns. */
  items: (number | DecodedItem)[];
  /** Distinct short strings; `words` has WORDS.length indexes into it per row (-1: absent). */
  dictionary: string[];
  words: Int32Array<ArrayBuffer>;
  /** NUMBERS.length numbers per row (NaN: absent, or a null connection id). */
  numbers: Float64Array<ArrayBuffer>;
  /**
   * The rows' SQL texts end to end, as UTF-16 code units (any string comes back the same, lone
   * surrogates included), and where each starts and ends (-1: none).
   */
  texts: Uint16Array<ArrayBuffer>;
  textSpans: Int32Array<ArrayBuffer>;
};

/** The short strings of a routine statement, by column. */
const WORDS = [
  'kind',
  'dbSystemId',
  'stamp',
  'time',
  'class',
  'event',
  'dbSystemName',
  'instance',
  'command',
  'sqlCommand',
  'tableDb',
  'table',
  'op',
] as const;
const W = positions(WORDS);

/** The statistics, in the order normalize sets them. */
const STATS = ['queryTime', 'rowsSent', 'rowsExamined', 'bytesReceived', 'bytesSent'] as const;
/** The numbers of a routine statement, by column. */
const NUMBERS = ['ts', 'recordId', 'connectionId', 'status', 'sqlStatus', ...STATS] as const;
const N = positions(NUMBERS);

/** Each name's column. */
function positions<T extends string>(names: readonly T[]): Record<T, number> {
  return Object.fromEntries(names.map((name, i) => [name, i])) as Record<T, number>;
}

/** A chunk's items, routine statements in columns. */
export function packItems(items: readonly DecodedItem[]): TransferChunk {
  const rows: MysqlEvent[] = [];
  const out = items.map((item): number | DecodedItem => {
    if (item.type !== 'event' || !(item.event instanceof MysqlEvent)) return item;
    if (!item.routine) return { ...item, event: item.event.toJSON() };
    rows.push(item.event);
    return rows.length - 1;
  });
  const dictionary: string[] = [];
  const ids = new Map<string, number>();
  const words = new Int32Array(rows.length * WORDS.length);
  const numbers = new Float64Array(rows.length * NUMBERS.length);
  const id = (value: string | undefined): number => {
    if (value === undefined) return -1;
    let i = ids.get(value);
    if (i === undefined) {
      i = dictionary.push(value) - 1;
      ids.set(value, i);
    }
    return i;
  };
  for (const [r, ev] of rows.entries()) {
    const { sql, table, stats } = ev;
    const w = r * WORDS.length;
    words[w + W.kind] = id(ev.kind);
    words[w + W.dbSystemId] = id(ev.dbSystemId);
    words[w + W.stamp] = id(ev.stamp);
    words[w + W.time] = id(ev.time);
    words[w + W.class] = id(ev.class);
    words[w + W.event] = id(ev.event);
    words[w + W.dbSystemName] = id(ev.dbSystemName);
    words[w + W.instance] = id(ev.instance);
    words[w + W.command] = id(sql?.command);
    words[w + W.sqlCommand] = id(sql?.sqlCommand);
    words[w + W.tableDb] = id(table?.db);
    words[w + W.table] = id(table?.table);
    words[w + W.op] = id(table?.op);
    const n = r * NUMBERS.length;
    numbers[n + N.ts] = ev.ts;
    numbers[n + N.recordId] = ev.recordId;
    numbers[n + N.connectionId] = ev.connectionId ?? Number.NaN;
    numbers[n + N.status] = ev.status;
    numbers[n + N.sqlStatus] = sql?.status ?? Number.NaN;
    // Field by field, not in a loop over the names: see statsOf in normalize/mysql-audit.ts.
    numbers[n + N.queryTime] = stats?.queryTime ?? Number.NaN;
    numbers[n + N.rowsSent] = stats?.rowsSent ?? Number.NaN;
    numbers[n + N.rowsExamined] = stats?.rowsExamined ?? Number.NaN;
    numbers[n + N.bytesReceived] = stats?.bytesReceived ?? Number.NaN;
    numbers[n + N.bytesSent] = stats?.bytesSent ?? Number.NaN;
  }
  const textSpans = new Int32Array(rows.length * 2).fill(-1);
  let end = 0;
  for (const [r, ev] of rows.entries()) {
    const text = ev.sql?.text;
    if (text === undefined) continue;
    textSpans[2 * r] = end;
    end += text.length;
    textSpans[2 * r + 1] = end;
  }
  const texts = new Uint16Array(end);
  const bytes = Buffer.from(texts.buffer);
  for (const [r, ev] of rows.entries()) {
    const text = ev.sql?.text;
    if (text !== undefined) bytes.write(text, 2 * textSpans[2 * r]!, 'utf16le');
  }
  return { items: out, dictionary, words, numbers, texts, textSpans };
}

/** The buffers of a chunk's columns, which `postMessage` hands over rather than copies (each is the chunk's own). */
export function transferables(chunk: TransferChunk): ArrayBuffer[] {
  return [chunk.words.buffer, chunk.numbers.buffer, chunk.texts.buffer, chunk.textSpans.buffer];
}

/**
 * The items `packItems` was given, routine statements read from the columns as they are asked for
 * (`PackedStatement`).
 */
export function unpackItems(chunk: TransferChunk): DecodedItem[] {
  const dbs = new DbRefs();
  return chunk.items.map((item) =>
    typeof item === 'number'
      ? { type: 'event', event: new PackedStatement(chunk, item, dbs.of(chunk, item)), routine: true }
      : item,
  );
}

/** The DB system references of a chunk's routine statements: one for each run of rows of the same. */
class DbRefs {
  private last: { id: number; name: number; instance: number; ref: DbRef } | undefined;

  of(c: TransferChunk, r: number): DbRef {
    const w = r * WORDS.length;
    const id = c.words[w + W.dbSystemId]!;
    const name = c.words[w + W.dbSystemName]!;
    const instance = c.words[w + W.instance]!;
    const last = this.last;
    if (last?.id === id && last.name === name && last.instance === instance) return last.ref;
    const ref: DbRef = { id: c.dictionary[id]! };
    if (name >= 0) ref.name = c.dictionary[name]!;
    if (instance >= 0) ref.instance = c.dictionary[instance]!;
    this.last = { id, name, instance, ref };
    return ref;
  }
}

// Columns are passed by number (`W.stamp`), not by name: a property looked up by a name that
// changes from call to call is one of V8's slowest loads (a megamorphic keyed load).
function wordOf(c: TransferChunk, r: number, column: number): string | undefined {
  const id = c.words[r * WORDS.length + column]!;
  return id < 0 ? undefined : c.dictionary[id];
}

function numberOf(c: TransferChunk, r: number, column: number): number | undefined {
  const value = c.numbers[r * NUMBERS.length + column]!;
  return Number.isNaN(value) ? undefined : value;
}

/** A row's SQL text, read from the chunk's texts. */
function textOf(c: TransferChunk, r: number): string | undefined {
  const start = c.textSpans[2 * r]!;
  if (start < 0) return undefined;
  const { buffer, byteOffset } = c.texts;
  return Buffer.from(buffer, byteOffset + 2 * start, 2 * (c.textSpans[2 * r + 1]! - start)).toString(
    'utf16le',
  );
}

/**
 * A routine statement of a chunk, read from its columns when a property is asked for. Rebuilding
 * each as normalize built it (a MysqlEvent with its SQL, table and statistics objects, about 400
 * bytes) was a sixth of what the replay's thread allocated, for statements of which most are only
 * counted on their session: this keeps its row, time and DB system (its key is joined when read,
 * as MysqlEvent's is). Its parts are made anew at each read and nothing may change them;
 * `toJSON` gives the plain event normalize would have given.
 */
export class PackedStatement implements DbEvent {
  readonly source = 'mysql';
  readonly login = null;
  readonly account = null;
  readonly ts: number;
  readonly #chunk: TransferChunk;
  readonly #row: number;
  readonly #db: DbRef;
  #key: string | undefined;

  constructor(chunk: TransferChunk, row: number, db: DbRef) {
    this.ts = numberOf(chunk, row, N.ts)!;
    this.#chunk = chunk;
    this.#row = row;
    this.#db = db;
  }

  get kind(): DbEvent['kind'] {
    return wordOf(this.#chunk, this.#row, W.kind) as DbEvent['kind'];
  }
  get time(): string {
    return wordOf(this.#chunk, this.#row, W.time)!;
  }
  get dbSystemId(): string {
    return this.#db.id;
  }
  get dbSystemName(): string | undefined {
    return this.#db.name;
  }
  get instance(): string | undefined {
    return this.#db.instance;
  }
  get recordId(): number {
    return numberOf(this.#chunk, this.#row, N.recordId)!;
  }
  get connectionId(): number | null {
    return numberOf(this.#chunk, this.#row, N.connectionId) ?? null;
  }
  get class(): string {
    return wordOf(this.#chunk, this.#row, W.class)!;
  }
  get event(): string {
    return wordOf(this.#chunk, this.#row, W.event)!;
  }
  get status(): number {
    return numberOf(this.#chunk, this.#row, N.status)!;
  }
  get sql(): DbEvent['sql'] {
    return sqlOf(this.#chunk, this.#row);
  }
  get table(): DbEvent['table'] {
    return tableOf(this.#chunk, this.#row);
  }
  get stats(): DbEvent['stats'] {
    return statsOfRow(this.#chunk, this.#row);
  }
  get key(): string {
    this.#key ??= mysqlEventKey(this, wordOf(this.#chunk, this.#row, W.stamp)!);
    return this.#key;
  }

  /** The plain event: that of the MysqlEvent normalize built. */
  toJSON(): DbEvent {
    return rebuild(this.#chunk, this.#row, this.#db).toJSON();
  }
}

function sqlOf(c: TransferChunk, r: number): DbEvent['sql'] {
  const command = wordOf(c, r, W.command);
  const sqlCommand = wordOf(c, r, W.sqlCommand);
  const text = textOf(c, r);
  const sqlStatus = numberOf(c, r, N.sqlStatus);
  if (command === undefined && sqlCommand === undefined && text === undefined && sqlStatus === undefined)
    return undefined;
  const sql: NonNullable<DbEvent['sql']> = {};
  if (command !== undefined) sql.command = command;
  if (sqlCommand !== undefined) sql.sqlCommand = sqlCommand;
  if (text !== undefined) sql.text = text;
  if (sqlStatus !== undefined) sql.status = sqlStatus;
  return sql;
}

function tableOf(c: TransferChunk, r: number): DbEvent['table'] {
  const op = wordOf(c, r, W.op);
  return op === undefined ? undefined : { db: wordOf(c, r, W.tableDb)!, table: wordOf(c, r, W.table)!, op };
}

function statsOfRow(c: TransferChunk, r: number): DbEvent['stats'] {
  return statsFrom(
    numberOf(c, r, N.queryTime),
    numberOf(c, r, N.rowsSent),
    numberOf(c, r, N.rowsExamined),
    numberOf(c, r, N.bytesReceived),
    numberOf(c, r, N.bytesSent),
  );
}

/** A routine statement as normalizeMysqlAudit builds it (no login or account; optional parts absent, not undefined). */
function rebuild(c: TransferChunk, r: number, db: DbRef): MysqlEvent {
  const ev = new MysqlEvent(
    db,
    wordOf(c, r, W.stamp)!,
    numberOf(c, r, N.ts)!,
    wordOf(c, r, W.time)!,
    numberOf(c, r, N.recordId)!,
    numberOf(c, r, N.connectionId) ?? null,
    wordOf(c, r, W.class)!,
    wordOf(c, r, W.event)!,
  );
  ev.kind = wordOf(c, r, W.kind) as DbEvent['kind'];
  ev.status = numberOf(c, r, N.status)!;
  const sql = sqlOf(c, r);
  if (sql !== undefined) ev.sql = sql;
  const table = tableOf(c, r);
  if (table !== undefined) ev.table = table;
  const stats = statsOfRow(c, r);
  if (stats !== undefined) ev.stats = stats;
  return ev;
}
