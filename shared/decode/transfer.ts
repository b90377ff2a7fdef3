// Decoded items sent from a decoding worker to the replay's thread. Structured clone costs about as
// much per object as decoding the record did, so routine statements (95% of a fleet's records)
// travel as flat arrays of their fields and are rebuilt here exactly as normalize built them: the
// same properties in the same order. Every other item is sent as it is.
import type { DbEvent } from '../../schemas/events.js';
import type { DecodedItem } from './read-input.js';

/** A routine statement's fields, in this order (see `pack`). */
type Packed = [
  kind: DbEvent['kind'],
  key: string,
  time: string,
  ts: number,
  dbSystemId: string,
  recordId: number,
  connectionId: number | null,
  cls: string,
  event: string,
  status: number,
  dbSystemName: string | undefined,
  instance: string | undefined,
  command: string | undefined,
  sqlCommand: string | undefined,
  text: string | undefined,
  sqlStatus: number | undefined,
  tableDb: string | undefined,
  table: string | undefined,
  op: string | undefined,
  queryTime: number | undefined,
  rowsSent: number | undefined,
  rowsExamined: number | undefined,
  bytesReceived: number | undefined,
  bytesSent: number | undefined,
];

export type TransferItem = Packed | DecodedItem;

/** A chunk's items as a worker posts them. */
export function packItems(items: readonly DecodedItem[]): TransferItem[] {
  return items.map((item) =>
    item.type === 'event' && item.routine && item.event.source === 'mysql' ? pack(item.event) : item,
  );
}

/** The items `packItems` was given. */
export function unpackItems(items: readonly TransferItem[]): DecodedItem[] {
  return items.map((item) =>
    Array.isArray(item) ? { type: 'event', event: unpack(item as Packed), routine: true } : item,
  );
}

function pack(ev: DbEvent): Packed {
  const { sql, table, stats } = ev;
  return [
    ev.kind,
    ev.key,
    ev.time,
    ev.ts,
    ev.dbSystemId,
    ev.recordId,
    ev.connectionId,
    ev.class,
    ev.event,
    ev.status,
    ev.dbSystemName,
    ev.instance,
    sql?.command,
    sql?.sqlCommand,
    sql?.text,
    sql?.status,
    table?.db,
    table?.table,
    table?.op,
    stats?.queryTime,
    stats?.rowsSent,
    stats?.rowsExamined,
    stats?.bytesReceived,
    stats?.bytesSent,
  ];
}

/** A routine statement as normalizeMysqlAudit builds it (no login or account; optional parts absent, not undefined). */
function unpack(p: Packed): DbEvent {
  const ev: DbEvent = {
    source: 'mysql',
    kind: p[0],
    key: p[1],
    time: p[2],
    ts: p[3],
    dbSystemId: p[4],
    recordId: p[5],
    connectionId: p[6],
    class: p[7],
    event: p[8],
    login: null,
    account: null,
    status: p[9],
  };
  if (p[10] !== undefined) ev.dbSystemName = p[10];
  if (p[11] !== undefined) ev.instance = p[11];
  if (p[12] !== undefined || p[13] !== undefined || p[14] !== undefined || p[15] !== undefined) {
    const sql: NonNullable<DbEvent['sql']> = {};
    if (p[12] !== undefined) sql.command = p[12];
    if (p[13] !== undefined) sql.sqlCommand = p[13];
    if (p[14] !== undefined) sql.text = p[14];
    if (p[15] !== undefined) sql.status = p[15];
    ev.sql = sql;
  }
  if (p[18] !== undefined) ev.table = { db: p[16]!, table: p[17]!, op: p[18] };
  const stats = statsOf(p);
  if (stats !== undefined) ev.stats = stats;
  return ev;
}

const STATS = ['queryTime', 'rowsSent', 'rowsExamined', 'bytesReceived', 'bytesSent'] as const;

function statsOf(p: Packed): DbEvent['stats'] {
  let stats: DbEvent['stats'];
  for (const [i, name] of STATS.entries()) {
    const value = p[19 + i] as number | undefined;
    if (value === undefined) continue;
    stats ??= {};
    stats[name] = value;
  }
  return stats;
}
