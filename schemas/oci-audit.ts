// OCI Audit events: the `data` object and the two envelopes around it.
// OCI sends explicit nulls for absent values, so almost every field is nullish; unknown fields are
// kept (looseObject) because services add fields without notice.
import { z } from 'zod';

const text = z.string().nullish();

/** `{name: [values]}`, as OCI renders request parameters and HTTP headers. */
const StringListMap = z.record(z.string(), z.array(z.string()).nullable());

/** A free-form JSON object (`stateChange.current`, `response.payload`, tags). */
const JsonObject = z.record(z.string(), z.unknown());

/** An event time: ISO 8601 with `Z` or an offset, or a Date when the OCI SDK already parsed it. */
export const OciInstantSchema = z.union([z.iso.datetime({ offset: true }), z.date()]);

export const OciIdentitySchema = z.looseObject({
  principalName: text,
  principalId: text,
  /** `natv` (native API key / console), `fed` (federated), `instance`, `resource`, ... */
  authType: text,
  callerName: text,
  callerId: text,
  tenantId: text,
  ipAddress: text,
  credentials: text,
  userAgent: text,
  consoleSessionId: text,
});

export const OciRequestSchema = z.looseObject({
  id: text,
  path: text,
  action: text,
  parameters: StringListMap.nullish(),
  headers: StringListMap.nullish(),
});

export const OciResponseSchema = z.looseObject({
  /** HTTP status as a string (`"200"`). */
  status: text,
  responseTime: z.union([z.string(), z.date()]).nullish(),
  headers: StringListMap.nullish(),
  payload: JsonObject.nullish(),
  message: text,
});

/** The resource before and after the call, as the service's API renders it. */
export const OciStateChangeSchema = z.looseObject({
  previous: JsonObject.nullish(),
  current: JsonObject.nullish(),
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
  eventGroupingId: text,
  eventName: text,
  compartmentId: text,
  compartmentName: text,
  resourceName: text,
  resourceId: text,
  availabilityDomain: text,
  freeformTags: z.record(z.string(), z.string()).nullish(),
  definedTags: z.record(z.string(), JsonObject).nullish(),
  identity: OciIdentitySchema.nullish(),
  request: OciRequestSchema.nullish(),
  response: OciResponseSchema.nullish(),
  stateChange: OciStateChangeSchema.nullish(),
  additionalDetails: IdentityDomainDetailsSchema.nullish(),
  message: text,
});

/** Audit API `ListEvents` item (npm `oci-audit` AuditEvent). Version fields are documented, not enforced. */
export const OciListEventSchema = z.looseObject({
  eventType: z.string().min(1),
  /** `"0.1"` */
  cloudEventsVersion: text,
  /** `"2.0"` */
  eventTypeVersion: text,
  source: text,
  eventId: z.string().min(1),
  eventTime: OciInstantSchema,
  contentType: text,
  data: OciAuditDataSchema,
});

/** Logging (`_Audit`), Logging Search `logContent` and Connector Hub records: CloudEvents 1.0. */
export const OciCloudEventSchema = z.looseObject({
  /** `"1.0"` */
  specversion: z.string(),
  type: z.string().min(1),
  id: z.string().min(1),
  time: OciInstantSchema,
  source: text,
  /** `"2.0"` */
  dataschema: text,
  oracle: z
    .looseObject({ compartmentid: text, ingestedtime: text, loggroupid: text, tenantid: text })
    .nullish(),
  data: OciAuditDataSchema,
});

export type OciAuditData = z.infer<typeof OciAuditDataSchema>;

/**
 * Which envelope a record claims to be: `specversion` marks CloudEvents 1.0 (and wins), `eventType`
 * or `cloudEventsVersion` marks a ListEvents item; undefined for anything else.
 */
export function ociEnvelopeOf(raw: unknown): 'cloudevents' | 'listevents' | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  if ('specversion' in raw) return 'cloudevents';
  if ('eventType' in raw || 'cloudEventsVersion' in raw) return 'listevents';
  return undefined;
}
