// Audit API (20190901) ListEvents, in memory: events of one compartment whose *processing* time
// lies in [startTime, endTime), both truncated to the minute, ordered by processing time, paged
// with an opaque `opc-next-page` token bound to the query.
//
// Times are parsed the way the service's RFC 3339 parser is lenient enough to read what the SDK
// sends: the SDK formats query-string Dates with local-time getters, an unpadded hour and a
// literal `Z`, e.g. `2026-11-02T9:00:00Z` written in UTC+5:30 for
// 03:30 UTC. The endpoint takes the `Z` at its word, so a client that lets the SDK format Dates
// outside TZ=UTC queries the wrong window: exactly the bug a test must catch. Every query is
// recorded with its raw strings for assertions.
import { readFileSync } from 'node:fs';
import { type EndpointRequest, ociError, type ServiceHandler } from './server.js';

export const AUDIT_DEFAULT_PAGE_SIZE = 100;

export interface AuditRecord {
  compartmentId: string;
  /** When OCI processed the event (ms): what ListEvents filters on. */
  processedAt: number;
  /** The ListEvents item (`eventType`, `cloudEventsVersion`, `eventId`, `eventTime`, `data`...). */
  event: Record<string, unknown>;
}

export interface AuditQuery {
  compartmentId: string;
  /** As received (decoded query value). */
  startTime: string;
  endTime: string;
  /** Parsed, truncated to the minute. */
  start: number;
  end: number;
  page: string | undefined;
  returned: number;
}

export interface AuditService {
  handler: ServiceHandler;
  add(records: AuditRecord[]): void;
  queries: AuditQuery[];
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{1,2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** RFC 3339 (also with the SDK's one-digit hour) -> ms; undefined when unreadable. */
export function parseQueryTime(text: string): number | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const iso = `${y}-${mo}-${d}T${h!.padStart(2, '0')}:${mi}:${s}${frac ?? ''}${zone}`;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? undefined : ms;
}

/** base64 `++++////`: makes every token need URL-encoding in a query string. */
const URL_HOSTILE_PREFIX = Buffer.from([0xfb, 0xef, 0xbe, 0xff, 0xff, 0xff]);

export function opaqueToken(value: unknown): string {
  return Buffer.concat([URL_HOSTILE_PREFIX, Buffer.from(JSON.stringify(value))]).toString('base64');
}

export function readOpaqueToken(token: string): unknown {
  try {
    const bytes = Buffer.from(token, 'base64');
    if (
      bytes.length <= URL_HOSTILE_PREFIX.length ||
      !bytes.subarray(0, URL_HOSTILE_PREFIX.length).equals(URL_HOSTILE_PREFIX)
    ) {
      return undefined;
    }
    return JSON.parse(bytes.subarray(URL_HOSTILE_PREFIX.length).toString('utf8'));
  } catch {
    return undefined;
  }
}

const MINUTE = 60_000;

export function auditService(opts: { records?: AuditRecord[]; pageSize?: number } = {}): AuditService {
  const pageSize = opts.pageSize ?? AUDIT_DEFAULT_PAGE_SIZE;
  const records: AuditRecord[] = [...(opts.records ?? [])];
  const queries: AuditQuery[] = [];

  const listEvents = (req: EndpointRequest) => {
    const { compartmentId, startTime, endTime, page } = req.query;
    if (!compartmentId) return ociError(400, 'MissingParameter', 'compartmentId is required.');
    if (!startTime || !endTime)
      return ociError(400, 'MissingParameter', 'startTime and endTime are required.');
    const startRaw = parseQueryTime(startTime);
    const endRaw = parseQueryTime(endTime);
    if (startRaw === undefined || endRaw === undefined) {
      return ociError(400, 'InvalidParameter', 'startTime and endTime must be RFC 3339 timestamps.');
    }
    const start = Math.floor(startRaw / MINUTE) * MINUTE;
    const end = Math.floor(endRaw / MINUTE) * MINUTE;
    if (end <= start) return ociError(400, 'InvalidParameter', 'endTime must be after startTime.');
    const queryId = `${compartmentId}|${start}|${end}`;
    let from = 0;
    if (page !== undefined) {
      const token = readOpaqueToken(page) as { q?: unknown; i?: unknown } | undefined;
      if (!token || token.q !== queryId || typeof token.i !== 'number') {
        return ociError(400, 'InvalidParameter', 'The page token is not valid for this query.');
      }
      from = token.i;
    }
    const matching = records
      .filter((r) => r.compartmentId === compartmentId && r.processedAt >= start && r.processedAt < end)
      .sort(
        (a, b) =>
          a.processedAt - b.processedAt || String(a.event.eventId).localeCompare(String(b.event.eventId)),
      );
    const items = matching.slice(from, from + pageSize).map((r) => r.event);
    queries.push({ compartmentId, startTime, endTime, start, end, page, returned: items.length });
    const headers: Record<string, string> = {};
    if (from + pageSize < matching.length)
      headers['opc-next-page'] = opaqueToken({ q: queryId, i: from + pageSize });
    return { status: 200, headers, body: items };
  };

  const handler: ServiceHandler = {
    name: 'audit',
    basePath: '/20190901',
    routes: [{ name: 'listEvents', method: 'GET', pattern: '/auditEvents', handle: listEvents }],
  };
  return {
    handler,
    add(more) {
      records.push(...more);
    },
    queries,
  };
}

// --- Audit records for tests, cloned from the samples in test/events/oci-audit ------------------

type Json = Record<string, unknown>;

function sample(name: string): Json {
  return JSON.parse(readFileSync(new URL(`../events/oci-audit/${name}`, import.meta.url), 'utf8')) as Json;
}

export type MembershipChange = {
  kind: 'add' | 'remove';
  eventId: string;
  /** Event time (ms). */
  time: number;
  userId: string;
  groupId: string;
  membershipId: string;
  compartmentId: string;
};

/** One audit event in both envelopes: the ListEvents item and the CloudEvents 1.0 record. */
export type AuditEventPair = { listEvent: Json; cloudEvent: Json };

/** An AddUserToGroup / RemoveUserFromGroup event, from the samples with ids, time and subject replaced. */
export function membershipChangeEvent(c: MembershipChange): AuditEventPair {
  const base = sample(c.kind === 'add' ? 'add-user-to-group.listevents.json' : 'remove-user-from-group.json');
  const data = structuredClone(base.data) as Json & { stateChange: Json; request: Json; response: Json };
  const iso = new Date(c.time).toISOString();
  const membership = {
    compartmentId: c.compartmentId,
    groupId: c.groupId,
    id: c.membershipId,
    inactiveStatus: null,
    lifecycleState: 'ACTIVE',
    timeCreated: iso,
    userId: c.userId,
  };
  data.compartmentId = c.compartmentId;
  data.resourceId = c.membershipId;
  data.stateChange =
    c.kind === 'add' ? { previous: null, current: membership } : { previous: membership, current: null };
  if (c.kind === 'remove') data.request.path = `/20160918/userGroupMemberships/${c.membershipId}`;
  data.response.responseTime = iso;
  return envelopes(base, data, c.eventId, c.time, c.compartmentId);
}

/** A non-IAM event (ComputeApi GetInstance): noise every real audit log is full of. */
export function unrelatedEvent(eventId: string, time: number, compartmentId: string): AuditEventPair {
  const base = sample('unknown-type.json');
  const data = structuredClone(base.data) as Json;
  data.compartmentId = compartmentId;
  return envelopes(base, data, eventId, time, compartmentId);
}

/** A MySQL HeatWave control-plane event: DB system `dbSystemId` stopped through the API. */
export function dbSystemStoppedEvent(
  eventId: string,
  time: number,
  compartmentId: string,
  dbSystemId: string,
): AuditEventPair {
  const base = {
    ...sample('unknown-type.json'),
    eventType: 'com.oraclecloud.mysqlaas.StopDbSystem',
    source: 'mysqlaas',
  };
  const data = structuredClone(sample('mysqlaas.update-db-system.json').data) as Json & { request: Json };
  Object.assign(data, {
    eventName: 'StopDbSystem',
    compartmentId,
    resourceId: dbSystemId,
    stateChange: null,
  });
  Object.assign(data.request, { path: `/20190415/dbSystems/${dbSystemId}/actions/stop`, action: 'POST' });
  return envelopes(base, data, eventId, time, compartmentId);
}

function envelopes(
  base: Json,
  data: Json,
  eventId: string,
  time: number,
  compartmentId: string,
): AuditEventPair {
  const iso = new Date(time).toISOString();
  const listEvent = { ...structuredClone(base), eventId, eventTime: iso, data };
  const cloudEvent = {
    datacontenttype: 'application/json',
    dataschema: '2.0',
    id: eventId,
    oracle: {
      compartmentid: compartmentId,
      ingestedtime: new Date(time + 20_000).toISOString(),
      loggroupid: '_Audit',
      tenantid: 'ocid1.tenancy.oc1..example',
    },
    source: '',
    specversion: '1.0',
    time: iso,
    type: base.eventType,
    data: structuredClone(data),
  };
  return { listEvent, cloudEvent };
}

export type DomainMembershipChange = {
  kind: 'add' | 'remove';
  eventId: string;
  time: number;
  domain: { id: string; name: string };
  /** The group and member as the identity domain names them: its own ids, and names. */
  group: { id: string; name: string };
  user: { id: string; name: string };
};

/** An identity-domain `admin.group.add.member.success` / `remove.member` event, from the samples. */
export function domainMembershipEvent(c: DomainMembershipChange): AuditEventPair {
  const base = sample(c.kind === 'add' ? 'domain.add-member.json' : 'domain.remove-member.json');
  const data = structuredClone(base.data) as Json & { additionalDetails: Json; request: Json };
  Object.assign(data.additionalDetails, {
    domainOcid: c.domain.id,
    domainName: c.domain.name,
    adminResourceId: c.group.id,
    adminResourceName: c.group.name,
    adminRefResourceId: c.user.id,
    adminRefResourceName: c.user.name,
  });
  data.request.path = `/admin/v1/Groups/${c.group.id}`;
  return envelopes(base, data, c.eventId, c.time, 'ocid1.tenancy.oc1..example');
}
