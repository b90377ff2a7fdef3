// Identity Domains SCIM API (oci-identitydomains ListUsers, ListGroups, GetGroup) for the domains
// of a TestDirectory, at `/identitydomains/<domain key>/admin/v1/...` (the `url` ListDomains
// returns). Resources carry both the domain's own `id` and the `ocid`; a group's `members` are
// returned only when `attributes` asks for them (SCIM `returned: request`), all of them or a page,
// `members[startIndex=N&count=M]`; users carry `active` and the userState extension's `locked.on`.
// SCIM paging: `startIndex` / `count` (at most 1000), with `totalResults`. A response that would
// carry more than 10,000 group members is refused with 400, as the service documents
// (oci-identitydomains Group.members).
import type { ScimGroup, TestDirectory, TestDomain } from './identity.js';
import { scimError, scimPage } from './paging.js';
import type { EndpointRequest, EndpointResponse, ServiceHandler } from './server.js';

const MAX_MEMBERS = 10_000;
const USER_STATE = 'urn:ietf:params:scim:schemas:oracle:idcs:extension:userState:User';
const MEMBERS = /^members(?:\[startIndex=(\d+)&count=(\d+)\])?$/i;

/** Which of a group's members `attributes` asks for: none (undefined), all of them or one page. */
function membersAsked<T>(req: EndpointRequest, members: readonly T[]): T[] | undefined {
  for (const attribute of (req.query.attributes ?? '').split(',')) {
    const asked = MEMBERS.exec(attribute.trim());
    if (!asked) continue;
    const from = asked[1] === undefined ? 1 : Math.max(Number(asked[1]), 1);
    const count = asked[2] === undefined ? members.length : Number(asked[2]);
    return members.slice(from - 1, from - 1 + count);
  }
  return undefined;
}

function memberCount(resources: readonly { members?: unknown[] }[]): number {
  return resources.reduce((n, r) => n + (r.members?.length ?? 0), 0);
}

export function identityDomainsService(
  dir: TestDirectory,
  pages: { scim?: number } = {},
): { handler: ServiceHandler } {
  const max = pages.scim ?? 1000;
  const withDomain =
    (list: (d: TestDomain, req: EndpointRequest) => unknown[]) =>
    (req: EndpointRequest): EndpointResponse => {
      const domain = dir.domains.find((d) => d.key === req.params.domain);
      if (!domain) return scimError(404, 'No such identity domain.');
      const page = scimPage(req, list(domain, req), max);
      const resources = (page.body as { Resources?: { members?: unknown[] }[] }).Resources ?? [];
      return memberCount(resources) > MAX_MEMBERS ? tooManyMembers() : page;
    };
  const group = (d: TestDomain, g: ScimGroup, req: EndpointRequest) => {
    const members = membersAsked(req, g.members);
    const users = new Map(d.users.map((u) => [u.id, u]));
    return {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
      id: g.id,
      ocid: g.ocid,
      domainOcid: d.id,
      displayName: g.displayName,
      ...(members
        ? {
            members: members.map((m) => {
              const user = users.get(m.value);
              return {
                value: m.value,
                ocid: user?.ocid,
                type: 'User',
                display: user?.displayName ?? user?.userName,
                name: user?.userName,
                ...(m.dateAdded ? { dateAdded: m.dateAdded } : {}),
              };
            }),
          }
        : {}),
    };
  };
  const handler: ServiceHandler = {
    name: 'identitydomains',
    basePath: '/identitydomains',
    routes: [
      {
        name: 'listUsers',
        method: 'GET',
        pattern: '/{domain}/admin/v1/Users',
        handle: withDomain((d) =>
          d.users.map((u) => ({
            schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
            id: u.id,
            ocid: u.ocid,
            domainOcid: d.id,
            userName: u.userName,
            ...(u.displayName ? { displayName: u.displayName } : {}),
            active: u.active ?? true,
            emails: (u.emails ?? []).map((value, i) => ({ value, type: 'work', primary: i === 0 })),
            [USER_STATE]: { locked: { on: u.locked ?? false } },
          })),
        ),
      },
      {
        name: 'listGroups',
        method: 'GET',
        pattern: '/{domain}/admin/v1/Groups',
        handle: withDomain((d, req) => d.groups.map((g) => group(d, g, req))),
      },
      {
        name: 'getGroup',
        method: 'GET',
        pattern: '/{domain}/admin/v1/Groups/{id}',
        handle: (req) => {
          const d = dir.domains.find((x) => x.key === req.params.domain);
          const g = d?.groups.find((x) => x.id === req.params.id);
          if (!d || !g) return scimError(404, 'No such group.');
          const body = group(d, g, req);
          return memberCount([body]) > MAX_MEMBERS ? tooManyMembers() : { status: 200, body };
        },
      },
    ],
  };
  return { handler };
}

function tooManyMembers(): EndpointResponse {
  return scimError(400, 'More than 10000 members in one response.');
}
