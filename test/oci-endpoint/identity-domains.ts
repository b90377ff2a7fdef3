// Identity Domains SCIM API (oci-identitydomains ListUsers, ListGroups) for the domains of a
// TestDirectory, at `/identitydomains/<domain key>/admin/v1/...` (the `url` ListDomains returns).
// Resources carry both the domain's own `id` and the `ocid`; a group's `members` are returned only
// when `attributes` asks for them (SCIM `returned: request`); users carry `active` and the
// userState extension's `locked.on`. SCIM paging: `startIndex` / `count` (at most 1000), with
// `totalResults`. A list response that would carry more than 10,000 group members is refused with
// 400, as the service documents (oci-identitydomains Group.members).
import type { TestDirectory, TestDomain } from './identity.js';
import { scimError, scimPage } from './paging.js';
import type { EndpointRequest, EndpointResponse, ServiceHandler } from './server.js';

const MAX_MEMBERS = 10_000;
const USER_STATE = 'urn:ietf:params:scim:schemas:oracle:idcs:extension:userState:User';

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
      const members = resources.reduce((n, r) => n + (r.members?.length ?? 0), 0);
      return members > MAX_MEMBERS ? scimError(400, 'More than 10000 members in one response.') : page;
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
        handle: withDomain((d, req) => {
          const asked = (req.query.attributes ?? '').toLowerCase().split(',');
          return d.groups.map((g) => ({
            schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
            id: g.id,
            ocid: g.ocid,
            domainOcid: d.id,
            displayName: g.displayName,
            ...(asked.includes('members')
              ? {
                  members: g.members.map((m) => {
                    const user = d.users.find((u) => u.id === m.value);
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
          }));
        }),
      },
    ],
  };
  return { handler };
}
