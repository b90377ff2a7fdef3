// Paging shared by the list operations of the identity and MySQL handlers: OCI's `limit` + opaque
// `opc-next-page` token bound to the query (a token from another query is refused), and SCIM's
// `startIndex` (1-based) + `count` with `totalResults` (Identity Domains).
import { opaqueToken, readOpaqueToken } from './audit.js';
import { type EndpointRequest, type EndpointResponse, ociError } from './server.js';

/** One page of `items` for an OCI list call; `maxPage` caps `limit` (the service's page size). */
export function ociPage(
  req: EndpointRequest,
  items: readonly unknown[],
  maxPage: number,
  queryKeys: readonly string[],
): EndpointResponse {
  const limit = req.query.limit === undefined ? maxPage : Number(req.query.limit);
  if (!Number.isInteger(limit) || limit < 1)
    return ociError(400, 'InvalidParameter', 'limit must be a positive integer.');
  const size = Math.min(limit, maxPage);
  const queryId = `${req.route}|${queryKeys.map((k) => req.query[k] ?? '').join('|')}`;
  let from = 0;
  if (req.query.page !== undefined) {
    const token = readOpaqueToken(req.query.page) as { q?: unknown; i?: unknown } | undefined;
    if (!token || token.q !== queryId || typeof token.i !== 'number')
      return ociError(400, 'InvalidParameter', 'The page token is not valid for this query.');
    from = token.i;
  }
  const headers: Record<string, string> = {};
  if (from + size < items.length) headers['opc-next-page'] = opaqueToken({ q: queryId, i: from + size });
  return { status: 200, headers, body: items.slice(from, from + size) };
}

/** One SCIM ListResponse page; `maxCount` caps `count` (Identity Domains allows up to 1000). */
export function scimPage(
  req: EndpointRequest,
  resources: readonly unknown[],
  maxCount: number,
): EndpointResponse {
  const startIndex = req.query.startIndex === undefined ? 1 : Number(req.query.startIndex);
  const count = req.query.count === undefined ? 50 : Number(req.query.count);
  if (!Number.isInteger(startIndex) || startIndex < 1 || !Number.isInteger(count) || count < 0)
    return scimError(400, 'startIndex and count must be positive integers.');
  if (count > 1000) return scimError(400, 'count must not exceed 1000.');
  const page = resources.slice(startIndex - 1, startIndex - 1 + Math.min(count, maxCount));
  return {
    status: 200,
    body: {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'],
      totalResults: resources.length,
      Resources: page,
      startIndex,
      itemsPerPage: page.length,
    },
  };
}

export function scimError(status: number, detail: string): EndpointResponse {
  return {
    status,
    body: { schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], detail, status: String(status) },
  };
}
