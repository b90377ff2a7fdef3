// Logging Search (20190909) SearchLogs, in memory, for the audit log: the query forms
//   search "<compartment OCID>/_Audit"
//   search "<compartment OCID>/_Audit_Include_Subcompartment"
// optionally followed by `| sort by datetime [asc|desc]`; anything else answers 400 (the
// emulator does not pretend to run other queries). timeStart <= datetime < timeEnd, at most 14
// days per query, limit <= 1000, `opc-next-page` paging. Rows are `{data:{datetime (ms),
// logContent}}` where logContent is the CloudEvents 1.0 audit record.
import { opaqueToken, readOpaqueToken } from './audit.js';
import { type EndpointRequest, ociError, type ServiceHandler } from './server.js';

export const LOG_SEARCH_MAX_SPAN_MS = 14 * 24 * 60 * 60_000;
export const LOG_SEARCH_MAX_LIMIT = 1000;
export const LOG_SEARCH_DEFAULT_LIMIT = 100;

export interface LogEntry {
  compartmentId: string;
  /** Log entry time (ms): what the search filters on. */
  datetime: number;
  logContent: Record<string, unknown>;
}

export interface LogSearchQuery {
  searchQuery: string;
  timeStart: number;
  timeEnd: number;
  limit: number;
  page: string | undefined;
  returned: number;
}

export interface LoggingSearchService {
  handler: ServiceHandler;
  add(entries: LogEntry[]): void;
  queries: LogSearchQuery[];
}

const QUERY =
  /^\s*search\s+"([^"/]+)\/(_Audit|_Audit_Include_Subcompartment)"\s*(?:\|\s*sort\s+by\s+datetime(?:\s+(asc|desc))?\s*)?$/i;

export function loggingSearchService(
  opts: {
    entries?: LogEntry[];
    /** child compartment -> parent, for `_Audit_Include_Subcompartment` */
    compartmentParents?: Record<string, string>;
  } = {},
): LoggingSearchService {
  const entries: LogEntry[] = [...(opts.entries ?? [])];
  const parents = opts.compartmentParents ?? {};
  const queries: LogSearchQuery[] = [];

  const within = (compartment: string, root: string): boolean => {
    let c: string | undefined = compartment;
    for (let depth = 0; c !== undefined && depth < 10; depth++) {
      if (c === root) return true;
      c = parents[c];
    }
    return false;
  };

  const search = (req: EndpointRequest) => {
    const body = req.body as { timeStart?: unknown; timeEnd?: unknown; searchQuery?: unknown } | undefined;
    if (!body || typeof body.searchQuery !== 'string')
      return ociError(400, 'InvalidParameter', 'searchQuery is required.');
    const timeStart = typeof body.timeStart === 'string' ? Date.parse(body.timeStart) : Number.NaN;
    const timeEnd = typeof body.timeEnd === 'string' ? Date.parse(body.timeEnd) : Number.NaN;
    if (Number.isNaN(timeStart) || Number.isNaN(timeEnd)) {
      return ociError(400, 'InvalidParameter', 'timeStart and timeEnd must be RFC 3339 timestamps.');
    }
    if (timeEnd <= timeStart) return ociError(400, 'InvalidParameter', 'timeEnd must be after timeStart.');
    if (timeEnd - timeStart > LOG_SEARCH_MAX_SPAN_MS) {
      return ociError(400, 'InvalidParameter', 'The time range of a search cannot exceed 14 days.');
    }
    const limit = req.query.limit === undefined ? LOG_SEARCH_DEFAULT_LIMIT : Number(req.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > LOG_SEARCH_MAX_LIMIT) {
      return ociError(400, 'InvalidParameter', `limit must be between 1 and ${LOG_SEARCH_MAX_LIMIT}.`);
    }
    const m = QUERY.exec(body.searchQuery);
    if (!m)
      return ociError(400, 'InvalidParameter', 'Unsupported search query (emulator: _Audit searches only).');
    const [, compartment, logName, order] = m;
    const subtree = logName!.toLowerCase() === '_audit_include_subcompartment';
    const queryId = `${body.searchQuery}|${timeStart}|${timeEnd}`;
    let from = 0;
    const page = req.query.page;
    if (page !== undefined) {
      const token = readOpaqueToken(page) as { q?: unknown; i?: unknown } | undefined;
      if (!token || token.q !== queryId || typeof token.i !== 'number') {
        return ociError(400, 'InvalidParameter', 'The page token is not valid for this query.');
      }
      from = token.i;
    }
    const matching = entries.filter(
      (e) =>
        e.datetime >= timeStart &&
        e.datetime < timeEnd &&
        (subtree ? within(e.compartmentId, compartment!) : e.compartmentId === compartment),
    );
    if (order !== undefined || /sort/i.test(body.searchQuery)) {
      const sign = order?.toLowerCase() === 'desc' ? -1 : 1;
      matching.sort((a, b) => sign * (a.datetime - b.datetime));
    }
    const results = matching
      .slice(from, from + limit)
      .map((e) => ({ data: { datetime: e.datetime, logContent: e.logContent } }));
    queries.push({
      searchQuery: body.searchQuery,
      timeStart,
      timeEnd,
      limit,
      page,
      returned: results.length,
    });
    const headers: Record<string, string> = {};
    if (from + limit < matching.length)
      headers['opc-next-page'] = opaqueToken({ q: queryId, i: from + limit });
    return {
      status: 200,
      headers,
      body: { results, summary: { resultCount: results.length, fieldCount: 0 } },
    };
  };

  const handler: ServiceHandler = {
    name: 'loggingsearch',
    basePath: '/20190909',
    routes: [{ name: 'searchLogs', method: 'POST', pattern: '/search', handle: search }],
  };
  return {
    handler,
    add(more) {
      entries.push(...more);
    },
    queries,
  };
}
