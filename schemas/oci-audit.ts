// OCI Audit events: the `data` object and the two envelopes around it.
// OCI sends explicit nulls for absent values, so almost every field is nullish; unknown fields are
// kept (looseObject) because services add fields without notice.
//
// Records exported by other tools (SIEM connectors) may carry nested objects as JSON text and
// spell null `"None"`: the fields read are accepted in those forms too, and the fields not read
// (tags, headers, timings, messages) are kept whatever their shape, so they never reject a record.
import { z } from 'zod';
import { type Check, fields, isPlainObject, nullish } from './hand-check.js';

/** How exports by other tools spell null (`"None"`: Python's). */
const NULL_SPELLINGS: ReadonlySet<string> = new Set(['None', 'null', 'NULL', 'Null', 'nil']);

const LONGEST_NULL_SPELLING = Math.max(...[...NULL_SPELLINGS].map((s) => s.length));
const printable = (code: number) => code > 0x20 && code < 0x7f;

/** True for a string that spells null, blanks around it allowed. */
function spellsNull(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  // Most strings are longer than any spelling and begin and end with a printable ASCII character,
  // which trim() would keep: they need no trimmed copy.
  const last = value.length - 1;
  if (last >= LONGEST_NULL_SPELLING && printable(value.charCodeAt(0)) && printable(value.charCodeAt(last)))
    return false;
  return NULL_SPELLINGS.has(value.trim());
}

function nullSpelled(value: unknown): unknown {
  return spellsNull(value) ? null : value;
}

/** A JSON object given as text is parsed; anything else is left for the schema to judge. */
function objectText(value: unknown): unknown {
  const v = nullSpelled(value);
  if (typeof v !== 'string' || !v.trimStart().startsWith('{')) return v;
  let unsafe = false;
  try {
    // Keys that would reach a prototype once merged, as the reader refuses them in records.
    const parsed: unknown = JSON.parse(v, (key, inner: unknown) => {
      if (key === '__proto__' || (key === 'constructor' && isObjectWith(inner, 'prototype'))) unsafe = true;
      return inner;
    });
    return unsafe ? v : parsed;
  } catch {
    return v;
  }
}

function isObjectWith(value: unknown, key: string): boolean {
  return typeof value === 'object' && value !== null && Object.hasOwn(value, key);
}

const text = z.preprocess(nullSpelled, z.string().nullish()).optional();

/** A nested object of a field that is read: an object, its JSON text, or a null spelling. */
function nested<T extends z.ZodType>(schema: T) {
  return z.preprocess(objectText, schema.nullish()).optional();
}

/** A field that is not read: kept as it came, never a reason to reject the record. */
const unread = z.unknown().optional();

/** `{name: [values]}`, as OCI renders request parameters (a single value is a list of one). */
const StringListMap = z.record(
  z.string(),
  z.preprocess((v) => {
    const value = nullSpelled(v);
    return typeof value === 'string' ? [value] : value;
  }, z.array(z.string()).nullable()),
);

/** A free-form JSON object (`stateChange.current`, `response.payload`); `"None"` values are null. */
const JsonObject = z.record(z.string(), z.preprocess(nullSpelled, z.unknown()));

/** An event time: ISO 8601 with `Z` or an offset, or a Date when the OCI SDK already parsed it. */
export const OciInstantSchema = z.union([z.iso.datetime({ offset: true }), z.date()]);

export const OciIdentitySchema = z.looseObject({
  principalName: text,
  principalId: text,
  /** `natv` (native API key / console), `fed` (federated), `instance`, `resource`, ... */
  authType: text,
  callerName: unread,
  callerId: unread,
  tenantId: text,
  ipAddress: text,
  credentials: unread,
  userAgent: unread,
  consoleSessionId: text,
});

export const OciRequestSchema = z.looseObject({
  id: unread,
  path: text,
  action: unread,
  parameters: nested(StringListMap),
  /** Not an OCI field; read for policy statements when an export carries it. */
  payload: nested(JsonObject),
  headers: unread,
});

export const OciResponseSchema = z.looseObject({
  /** HTTP status as a string (`"200"`); a number from an export is read as its text. */
  status: z
    .preprocess((v) => (typeof v === 'number' ? String(v) : nullSpelled(v)), z.string().nullish())
    .optional(),
  responseTime: unread,
  headers: unread,
  payload: nested(JsonObject),
  message: unread,
});

/** The resource before and after the call, as the service's API renders it. */
export const OciStateChangeSchema = z.looseObject({
  previous: nested(JsonObject),
  current: nested(JsonObject),
});

/**
 * `additionalDetails` of an Identity Domains event (those carry `eventId`); classic events put
 * other, service-specific keys here, which are kept as they are.
 */
export const IdentityDomainDetailsSchema = z.looseObject({
  /** `sso.session.create.success`, `admin.group.add.member.success`, ... */
  eventId: text,
  actorName: text,
  actorId: text,
  actorType: text,
  actorDisplayName: text,
  ssoSessionId: text,
  ssoIdentityProvider: text,
  /** The MFA factor of a sign-on (`TOTP`, `PUSH`, `EMAIL`, ...). */
  ssoAuthFactor: text,
  ssoUserAgent: text,
  clientIp: text,
  /** The resource acted on: the group of a membership event, the user of a user event. */
  adminResourceName: text,
  adminResourceId: text,
  adminResourceType: text,
  /** The referenced resource: the member of a membership event. */
  adminRefResourceName: text,
  adminRefResourceId: text,
  adminRefResourceType: text,
  /** The identity domain the event is about. */
  domainOcid: text,
  domainName: text,
});

export const OciAuditDataSchema = z.looseObject({
  eventGroupingId: unread,
  eventName: text,
  compartmentId: text,
  compartmentName: unread,
  resourceName: text,
  resourceId: text,
  availabilityDomain: unread,
  freeformTags: unread,
  definedTags: unread,
  identity: nested(OciIdentitySchema),
  request: nested(OciRequestSchema),
  response: nested(OciResponseSchema),
  stateChange: nested(OciStateChangeSchema),
  additionalDetails: nested(IdentityDomainDetailsSchema),
  message: unread,
});

/** Audit API `ListEvents` item (npm `oci-audit` AuditEvent). Version fields are documented, not enforced. */
export const OciListEventSchema = z.looseObject({
  eventType: z.string().min(1),
  /** `"0.1"` */
  cloudEventsVersion: unread,
  /** `"2.0"` */
  eventTypeVersion: unread,
  source: unread,
  eventId: z.string().min(1),
  eventTime: OciInstantSchema,
  contentType: unread,
  data: z.preprocess(objectText, OciAuditDataSchema),
});

/** Logging (`_Audit`), Logging Search `logContent` and Connector Hub records: CloudEvents 1.0. */
export const OciCloudEventSchema = z.looseObject({
  /** `"1.0"`; exports by other tools may drop it, and it is not needed to read the event. */
  specversion: unread,
  type: z.string().min(1),
  id: z.string().min(1),
  time: OciInstantSchema,
  source: unread,
  /** `"2.0"` */
  dataschema: unread,
  oracle: nested(
    z.looseObject({ compartmentid: text, ingestedtime: text, loggroupid: text, tenantid: text }),
  ),
  data: z.preprocess(objectText, OciAuditDataSchema),
});

export type OciAuditData = z.infer<typeof OciAuditDataSchema>;

/**
 * Which envelope a record claims to be: `specversion` marks CloudEvents 1.0 (and wins), `eventType`
 * or `cloudEventsVersion` marks a ListEvents item, and a record with a string `type` and `id`, a
 * `time` and `data` is a CloudEvent that lost its `specversion` on the way; undefined otherwise.
 */
export function ociEnvelopeOf(raw: unknown): 'cloudevents' | 'listevents' | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  // Reads, not `in`: every record read is asked, and on records of many shapes V8 looks an `in` up
  // in full each time, where it caches a read by shape. Parsed JSON holds no undefined values, so
  // a key is there exactly when its value is not undefined.
  const r = raw as Record<string, unknown>;
  if (r.specversion !== undefined) return 'cloudevents';
  if (r.eventType !== undefined || r.cloudEventsVersion !== undefined) return 'listevents';
  if (typeof r.type === 'string' && typeof r.id === 'string' && r.time !== undefined && r.data !== undefined)
    return 'cloudevents';
  return undefined;
}

// The hand check of the common shape (hand-check.ts): true only for records the schemas accept
// unchanged (no null spelled as text, no object given as JSON text, no number for a status, no
// parsed Date), so that the record itself stands for zod's copy of it, which differs only in the
// order of its keys (the normalizer reads fields by name).
/** `text`: absent, null, or a string that does not spell null. */
const plainText: Check = (v) => nullish(v) || (typeof v === 'string' && !spellsNull(v));

const texts = (...names: string[]): Record<string, Check> =>
  Object.fromEntries(names.map((name) => [name, plainText]));
/** A `nested` record whose every value passes `value`. */
const record =
  (value: Check): Check =>
  (v) =>
    nullish(v) || (isPlainObject(v) && Object.values(v).every(value));

const stringListMap = record(
  (v) => v === null || (Array.isArray(v) && v.every((s) => typeof s === 'string')),
);
const jsonObject = record((v) => !spellsNull(v));
const nonEmptyText: Check = (v) => typeof v === 'string' && v.length > 0;
const IsoInstant = z.iso.datetime({ offset: true });
const instant: Check = (v) => typeof v === 'string' && IsoInstant.safeParse(v).success;

const dataFields = fields({
  ...texts('eventName', 'compartmentId', 'resourceName', 'resourceId'),
  identity: fields(
    texts('principalName', 'principalId', 'authType', 'tenantId', 'ipAddress', 'consoleSessionId'),
  ),
  request: fields({ path: plainText, parameters: stringListMap, payload: jsonObject }),
  response: fields({ status: plainText, payload: jsonObject }),
  stateChange: fields({ previous: jsonObject, current: jsonObject }),
  additionalDetails: fields(texts(...Object.keys(IdentityDomainDetailsSchema.shape))),
});
/** `data` is required, unlike the nested objects within it. */
const auditData: Check = (v) => !nullish(v) && dataFields(v);

const isCommonCloudEvent = fields({
  type: nonEmptyText,
  id: nonEmptyText,
  time: instant,
  oracle: fields(texts('compartmentid', 'ingestedtime', 'loggroupid', 'tenantid')),
  data: auditData,
});
const isCommonListEvent = fields({
  eventType: nonEmptyText,
  eventId: nonEmptyText,
  eventTime: instant,
  data: auditData,
});

/** `schema.safeParse`, with the hand check of the common shape first. */
function checked<S extends z.ZodType>(schema: S, common: Check) {
  return (raw: unknown): z.ZodSafeParseResult<z.output<S>> =>
    raw !== null && raw !== undefined && common(raw)
      ? { success: true, data: raw as z.output<S> }
      : schema.safeParse(raw);
}

/** A CloudEvents record, as OciCloudEventSchema.safeParse reads it. */
export const parseOciCloudEvent = checked(OciCloudEventSchema, isCommonCloudEvent);
/** A ListEvents item, as OciListEventSchema.safeParse reads it. */
export const parseOciListEvent = checked(OciListEventSchema, isCommonListEvent);
