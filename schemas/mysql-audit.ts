// MySQL Enterprise Audit JSON records, as HeatWave and on-premises servers
// write them. Objects are loose (unknown fields kept), values may be truncated, so numbers that
// arrive as numeric strings are accepted and optional text fields may be null.
import { z } from 'zod';
import { type Check, type Fields, isObject, nullish } from './hand-check.js';

const NUMERIC_TEXT = /^\s*-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\s*$/;

const numericText = (value: unknown) =>
  typeof value === 'string' && NUMERIC_TEXT.test(value) ? Number(value) : value;

/** A number, or a string holding one (`"1045"`). */
export const LenientNumber = z.preprocess(numericText, z.number());
const LenientInt = z.preprocess(numericText, z.number().int());
const OptionalText = z.string().nullish();
const OptionalNumber = LenientNumber.nullish();

/** `account`: the account whose privileges apply (CURRENT_USER). */
export const MysqlAccountRefSchema = z.looseObject({ user: OptionalText, host: OptionalText });

/** `login`: what the client sent (`user`), the plugin's external user (`os`), source `ip`, `proxy` account. */
export const MysqlLoginSchema = z.looseObject({
  user: OptionalText,
  os: OptionalText,
  ip: OptionalText,
  proxy: OptionalText,
});

/** Fields every record carries; `account` and `login` are absent on some (e.g. shutdown). */
const common = {
  /** UTC, `YYYY-MM-DD hh:mm:ss`. */
  timestamp: z.string().min(1),
  /** Unique per server together with `timestamp`. */
  id: LenientInt,
  /** Restarts at 1 after a server restart. */
  connection_id: LenientInt.nullish(),
  account: MysqlAccountRefSchema.nullish(),
  login: MysqlLoginSchema.nullish(),
};

export const StartupDataSchema = z.looseObject({
  server_id: OptionalNumber,
  os_version: OptionalText,
  mysql_version: OptionalText,
  args: z.array(z.string()).nullish(),
});

export const ShutdownDataSchema = z.looseObject({ server_id: OptionalNumber });

export const ConnectionDataSchema = z.looseObject({
  /** tcp/ip, ssl, socket, named_pipe, shared_memory. */
  connection_type: OptionalText,
  /** 0, or the MySQL errno of a failed connect (1045 access denied). */
  status: OptionalNumber,
  db: OptionalText,
  connection_attributes: z.record(z.string(), z.unknown()).nullish(),
});

export const QueryStatisticsSchema = z.looseObject({
  query_time: OptionalNumber,
  rows_sent: OptionalNumber,
  rows_examined: OptionalNumber,
  bytes_received: OptionalNumber,
  bytes_sent: OptionalNumber,
});

export const GeneralDataSchema = z.looseObject({
  /** "Query", "Init DB", ... */
  command: OptionalText,
  /** "select", "grant", "create_user", ... */
  sql_command: OptionalText,
  query: OptionalText,
  status: OptionalNumber,
});

export const TableAccessDataSchema = z.looseObject({
  db: OptionalText,
  table: OptionalText,
  query: OptionalText,
  sql_command: OptionalText,
});

/** Requires `key` on the events that cannot be read without it (a connect without its status is not a success). */
function requirePayload(events: readonly string[], key: string) {
  return (record: { event?: string | null | undefined } & Record<string, unknown>, ctx: z.RefinementCtx) => {
    if (events.includes(record.event ?? '') && record[key] == null) {
      ctx.addIssue({ code: 'custom', path: [key], message: `${key} is required for this event` });
    }
  };
}

/** `audit` / `startup`, `shutdown`. Old Percona builds write an `audit` record without `event`. */
export const AuditRecordSchema = z
  .looseObject({
    ...common,
    class: z.literal('audit'),
    event: OptionalText,
    startup_data: StartupDataSchema.nullish(),
    shutdown_data: ShutdownDataSchema.nullish(),
    server_id: OptionalNumber,
  })
  .superRefine(requirePayload(['startup'], 'startup_data'));

/** `connection` / `connect`, `change_user`, `disconnect` (disconnect carries only `connection_type`). */
export const ConnectionRecordSchema = z
  .looseObject({
    ...common,
    class: z.literal('connection'),
    event: z.string(),
    connection_data: ConnectionDataSchema.nullish(),
  })
  .superRefine(requirePayload(['connect', 'change_user'], 'connection_data'));

/** `general` / `status`; `query` may be absent, `query_statistics` is optional. */
export const GeneralRecordSchema = z
  .looseObject({
    ...common,
    class: z.literal('general'),
    event: z.string(),
    general_data: GeneralDataSchema.nullish(),
    query_statistics: QueryStatisticsSchema.nullish(),
  })
  .superRefine(requirePayload(['status'], 'general_data'));

/** `table_access` / `read`, `insert`, `update`, `delete`. */
export const TableAccessRecordSchema = z
  .looseObject({
    ...common,
    class: z.literal('table_access'),
    event: z.string(),
    table_access_data: TableAccessDataSchema.nullish(),
    query_statistics: QueryStatisticsSchema.nullish(),
  })
  .superRefine(requirePayload(['read', 'insert', 'update', 'delete'], 'table_access_data'));

export const KnownMysqlAuditRecordSchema = z.discriminatedUnion('class', [
  AuditRecordSchema,
  ConnectionRecordSchema,
  GeneralRecordSchema,
  TableAccessRecordSchema,
]);

/**
 * Any other class: Percona's `query` (`query_data`) and `command` (`command_data`), `message`,
 * classes of later versions. Only the common fields are checked; payloads are read best-effort.
 */
export const GenericMysqlAuditRecordSchema = z.looseObject({
  ...common,
  class: z.string().min(1),
  event: OptionalText,
});

const KNOWN_MYSQL_AUDIT_CLASSES = ['audit', 'connection', 'general', 'table_access'] as const;

export type KnownMysqlAuditRecord = z.infer<typeof KnownMysqlAuditRecordSchema>;
export type GenericMysqlAuditRecord = z.infer<typeof GenericMysqlAuditRecordSchema>;
export type MysqlAuditRecord =
  | { known: true; record: KnownMysqlAuditRecord }
  | { known: false; record: GenericMysqlAuditRecord };

/**
 * Validates a raw record with its class's schema: known classes strictly, any other generically.
 * The common shapes are checked by hand and returned as they are; zod reads everything else
 * (numbers as text, the rare classes, invalid records, whose dead letter carries zod's message).
 */
export function parseMysqlAuditRecord(
  raw: unknown,
): { success: true; data: MysqlAuditRecord } | { success: false; error: z.ZodError } {
  if (isCommonShape(raw)) return { success: true, data: { known: true, record: raw } };
  const cls = typeof raw === 'object' && raw !== null ? (raw as { class?: unknown }).class : undefined;
  if ((KNOWN_MYSQL_AUDIT_CLASSES as readonly unknown[]).includes(cls)) {
    const parsed = KnownMysqlAuditRecordSchema.safeParse(raw);
    return parsed.success
      ? { success: true, data: { known: true, record: parsed.data } }
      : { success: false, error: parsed.error };
  }
  const parsed = GenericMysqlAuditRecordSchema.safeParse(raw);
  return parsed.success
    ? { success: true, data: { known: false, record: parsed.data } }
    : { success: false, error: parsed.error };
}

// The hand check (hand-check.ts): true only for records the schemas accept unchanged (no text to
// convert to a number), so that returning the record itself is the same as returning zod's copy.
const text = (v: unknown) => nullish(v) || typeof v === 'string';
const number = (v: unknown) => nullish(v) || (typeof v === 'number' && Number.isFinite(v));
const int = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v);

// Each check reads its fields by name, written out rather than built with `fields` (hand-check.ts):
// every MySQL record goes through them, and a check that reads a field whose name varies from call
// to call is one V8 cannot cache (about 300 against 40-50 ns a record, measured apart).
const accountRef: Check = (v) => nullish(v) || (isObject(v) && text(v.user) && text(v.host));
const loginRef: Check = (v) =>
  nullish(v) || (isObject(v) && text(v.user) && text(v.os) && text(v.ip) && text(v.proxy));
const queryStatistics: Check = (v) =>
  nullish(v) ||
  (isObject(v) &&
    number(v.query_time) &&
    number(v.rows_sent) &&
    number(v.rows_examined) &&
    number(v.bytes_received) &&
    number(v.bytes_sent));
const connectionData: Check = (v) =>
  nullish(v) ||
  (isObject(v) &&
    text(v.connection_type) &&
    number(v.status) &&
    text(v.db) &&
    (nullish(v.connection_attributes) || isObject(v.connection_attributes)));
const generalData: Check = (v) =>
  nullish(v) || (isObject(v) && text(v.command) && text(v.sql_command) && text(v.query) && number(v.status));
const tableAccessData: Check = (v) =>
  nullish(v) || (isObject(v) && text(v.db) && text(v.table) && text(v.query) && text(v.sql_command));

/** The payload each common class carries, and the events that require it (requirePayload). */
const COMMON_SHAPES = new Map<
  string,
  { payload: (raw: Fields) => unknown; check: Check; requiredBy: string[] }
>([
  [
    'connection',
    { payload: (raw) => raw.connection_data, check: connectionData, requiredBy: ['connect', 'change_user'] },
  ],
  ['general', { payload: (raw) => raw.general_data, check: generalData, requiredBy: ['status'] }],
  [
    'table_access',
    {
      payload: (raw) => raw.table_access_data,
      check: tableAccessData,
      requiredBy: ['read', 'insert', 'update', 'delete'],
    },
  ],
]);

function isCommonShape(raw: unknown): raw is KnownMysqlAuditRecord {
  if (!isObject(raw) || typeof raw.class !== 'string') return false;
  const shape = COMMON_SHAPES.get(raw.class);
  if (shape === undefined) return false;
  const payload = shape.payload(raw);
  return (
    typeof raw.timestamp === 'string' &&
    raw.timestamp.length > 0 &&
    int(raw.id) &&
    (nullish(raw.connection_id) || int(raw.connection_id)) &&
    typeof raw.event === 'string' &&
    accountRef(raw.account) &&
    loginRef(raw.login) &&
    shape.check(payload) &&
    !(nullish(payload) && shape.requiredBy.includes(raw.event)) &&
    (raw.class === 'connection' || queryStatistics(raw.query_statistics))
  );
}
