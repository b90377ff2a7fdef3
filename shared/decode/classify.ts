// Tells what a decoded JSON value is and unwraps its transport envelopes:
// a MySQL audit event (raw, or in a collector record), an OCI audit event (CloudEvents 1.0 or
// ListEvents v2), or an envelope holding some of them (Logging Search rows and responses,
// ListEvents pages, Streaming messages, CloudEvents whose `data` carries a MySQL audit event).
import { isUtf8 } from 'node:buffer';
import type { z } from 'zod';
import type { DeadLetter, DeadLetterCode, RecordLocation } from '../../schemas/dead-letter.js';
import {
  type GapRecord,
  GapRecordSchema,
  parseCollectorRecord,
  StreamMessageSchema,
} from '../../schemas/envelopes.js';
import { ociEnvelopeOf } from '../../schemas/oci-audit.js';
import { deadLetter, parseJsonRecord } from './split-records.js';

/** The DB system a MySQL audit event belongs to, and the instance whose log it came from. */
export type DbRef = { id: string; name?: string; instance?: string };

export type ClassifiedItem =
  | { kind: 'mysql-audit'; raw: unknown; db?: DbRef; loc: RecordLocation }
  | { kind: 'oci-audit'; raw: unknown; loc: RecordLocation }
  | { kind: 'gap'; record: GapRecord; loc: RecordLocation }
  | { kind: 'dead'; dead: DeadLetter };

type Json = Record<string, unknown>;

// A stream message holding a Logging Search response holding CloudEvents is 3 deep; more is abuse.
const MAX_NESTING = 5;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Where classified items go as they are found: an array, or a consumer of each. */
export type ClassifiedSink = { push(item: ClassifiedItem): unknown };

/**
 * Classifies one decoded value, expanding envelopes; every expanded item gets its `index`. The
 * items go to `out` when given: a decoder takes them one by one, so that a record (nearly always
 * one item) needs no array of its own.
 */
export function classifyRecord(value: unknown, loc: RecordLocation): ClassifiedItem[];
export function classifyRecord(value: unknown, loc: RecordLocation, out: ClassifiedSink): void;
export function classifyRecord(
  value: unknown,
  loc: RecordLocation,
  out: ClassifiedSink = [],
): ClassifiedItem[] | undefined {
  classifyInto(value, loc, 0, out);
  return Array.isArray(out) ? out : undefined;
}

function classifyInto(value: unknown, loc: RecordLocation, depth: number, out: ClassifiedSink): void {
  if (depth > MAX_NESTING) {
    out.push(dead('UNKNOWN_KIND', loc, 'envelopes nested too deeply'));
    return;
  }
  if (Array.isArray(value)) {
    expand(value, loc, depth, out);
    return;
  }
  if (!isObject(value)) {
    out.push(
      dead('UNKNOWN_KIND', loc, `a ${value === null ? 'null' : typeof value} is no record kind we read`),
    );
    return;
  }
  if (ociEnvelopeOf(value) !== undefined) {
    const inner = embeddedMysqlRecord(value.data, loc);
    if (inner === undefined) out.push({ kind: 'oci-audit', raw: value, loc });
    else classifyInto(inner, loc, depth + 1, out);
    return;
  }
  if (isCollectorRecord(value)) {
    out.push(collectorItem(value, loc));
    return;
  }
  if (value.source === 'audit-gap') {
    const parsed = GapRecordSchema.safeParse(value);
    out.push(
      parsed.success
        ? { kind: 'gap', record: parsed.data, loc }
        : { kind: 'dead', dead: schemaInvalidLetter(parsed.error, loc, 'audit gap record') },
    );
    return;
  }
  if (isStreamMessage(value)) {
    decodeStreamMessage(value, loc, depth, out);
    return;
  }
  if (isMysqlAuditEvent(value)) {
    out.push({ kind: 'mysql-audit', raw: value, loc });
    return;
  }
  const inner = envelopeContent(value);
  if (inner !== undefined) {
    classifyInto(inner, loc, depth + 1, out);
    return;
  }
  out.push(dead('UNKNOWN_KIND', loc, unknownKindMessage(value)));
}

/** Why a record is no kind we read: what it lacks when it looks like one, else the kinds we read. */
function unknownKindMessage(value: Json): string {
  const data = isObject(value.data) ? value.data : undefined;
  if (typeof value.type === 'string' && data && ('identity' in data || 'eventName' in data)) {
    const missing = [
      ...(typeof value.id === 'string' ? [] : [value.id === undefined ? 'id' : 'id as a string']),
      ...('time' in value ? [] : ['time']),
    ];
    return `looks like an OCI audit event (type, data.${'identity' in data ? 'identity' : 'eventName'}) but has no ${missing.join(' or ')}: a CloudEvents record needs id, type, time and data, a ListEvents item eventType, eventId, eventTime and data`;
  }
  if ('class' in value || 'connection_id' in value) {
    return 'looks like a MySQL audit event (class, connection_id) but has no timestamp (a string)';
  }
  return 'record is no kind we read (MySQL audit event, collector record, OCI audit event or a known envelope)';
}

/**
 * What a known envelope holds: a Logging Search row's `logContent` (bare, or as the SDK and CLI
 * print it, `{data:{datetime, logContent}}`), a `searchLogs` response's `results` (bare, `{data:…}`
 * from the CLI or `{searchResponse:…}` from the SDK), a ListEvents page's `items` (SDK) or `data`
 * array (CLI).
 */
function envelopeContent(value: Json): unknown {
  if ('logContent' in value) return value.logContent;
  if (Array.isArray(value.results)) return value.results;
  if (Array.isArray(value.items)) return value.items;
  const wrapped = isObject(value.data)
    ? value.data
    : isObject(value.searchResponse)
      ? value.searchResponse
      : undefined;
  if (wrapped !== undefined && ('logContent' in wrapped || Array.isArray(wrapped.results))) {
    return 'logContent' in wrapped ? wrapped.logContent : wrapped.results;
  }
  if (Array.isArray(value.data)) return value.data; // `oci audit event list` output
  return undefined;
}

function expand(values: readonly unknown[], loc: RecordLocation, depth: number, out: ClassifiedSink): void {
  values.forEach((item, index) => {
    if (item !== null) classifyInto(item, { ...loc, index }, depth + 1, out);
  });
}

// Every record read is asked what it is: these read keys rather than test them with `in`, for the
// reason given at `ociEnvelopeOf` (schemas/oci-audit.ts).

/** A raw MySQL Enterprise audit event; one lacking `class` still counts, to be reported as invalid. */
function isMysqlAuditEvent(value: Json): boolean {
  return (
    typeof value.timestamp === 'string' &&
    (value.class !== undefined || value.event !== undefined || value.connection_id !== undefined)
  );
}

/** Claims to be a collector record; its schema is checked later. */
function isCollectorRecord(value: Json): boolean {
  return value.source === 'mysql-audit' && (value.event !== undefined || value.dbSystemId !== undefined);
}

function isStreamMessage(value: Json): boolean {
  return (
    typeof value.value === 'string' &&
    value.stream !== undefined &&
    value.partition !== undefined &&
    value.offset !== undefined
  );
}

function collectorItem(value: Json, loc: RecordLocation): ClassifiedItem {
  const parsed = parseCollectorRecord(value);
  if (!parsed.success)
    return { kind: 'dead', dead: schemaInvalidLetter(parsed.error, loc, 'collector record') };
  const { dbSystemId, dbSystemName, instance, event } = parsed.data;
  const db: DbRef = { id: dbSystemId };
  if (dbSystemName) db.name = dbSystemName;
  if (instance) db.instance = instance;
  return { kind: 'mysql-audit', raw: event, db, loc };
}

/** A collector record or MySQL audit event carried in a CloudEvent's `data` (object or JSON text). */
function embeddedMysqlRecord(data: unknown, loc: RecordLocation): Json | undefined {
  let candidate = data;
  if (typeof data === 'string' && data.trimStart().startsWith('{')) {
    const parsed = parseJsonRecord(data, loc);
    if (!parsed.ok) return undefined;
    candidate = parsed.value;
  }
  if (!isObject(candidate)) return undefined;
  return isCollectorRecord(candidate) || isMysqlAuditEvent(candidate) ? candidate : undefined;
}

function decodeStreamMessage(value: Json, loc: RecordLocation, depth: number, out: ClassifiedSink): void {
  const parsed = StreamMessageSchema.safeParse(value);
  if (!parsed.success) {
    out.push({ kind: 'dead', dead: schemaInvalidLetter(parsed.error, loc, 'stream message') });
    return;
  }
  const encoded = parsed.data.value;
  if (encoded.length % 4 === 1 || !BASE64.test(encoded)) {
    out.push(dead('ENCODING_INVALID', loc, 'stream message value is not base64'));
    return;
  }
  const bytes = Buffer.from(encoded, 'base64');
  if (!isUtf8(bytes)) {
    out.push(dead('ENCODING_INVALID', loc, 'stream message value is not UTF-8'));
    return;
  }
  const record = parseJsonRecord(bytes.toString('utf8'), loc);
  if (!record.ok) out.push({ kind: 'dead', dead: record.dead });
  else classifyInto(record.value, loc, depth + 1, out);
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function dead(code: DeadLetterCode, loc: RecordLocation, message: string): ClassifiedItem {
  return { kind: 'dead', dead: deadLetter(code, loc, message) };
}

/** SCHEMA_INVALID naming the first issue's path and expectation (zod messages carry no values). */
export function schemaInvalidLetter(error: z.ZodError, loc: RecordLocation, what: string): DeadLetter {
  const issue = error.issues[0];
  const path = (issue?.path ?? []).map((p) => (typeof p === 'number' ? p : String(p)));
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more)` : '';
  const message = `${what}: ${path.join('.') || '(record)'}: ${issue?.message ?? 'invalid'}${more}`;
  return deadLetter('SCHEMA_INVALID', loc, message, path);
}
