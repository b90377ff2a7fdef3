// IAM (20160918), the read operations `sync` uses, in memory and shaped like the SDK's response
// models (oci-identity User, Group, UserGroupMembership, DomainSummary, Compartment):
// ListUsers, ListGroups, ListUserGroupMemberships (a userId or groupId is required, as the API
// reference says), ListDomains (the domains of one compartment, as the API lists them; each
// domain's `url` points at identity-domains.ts on this endpoint) and ListCompartments (`compartmentIdInSubtree` only with the tenancy). Paged with
// opaque tokens; throttling comes from the endpoint's faults (`identity.listUsers` ...).
import { ociPage } from './paging.js';
import { type EndpointRequest, ociError, type ServiceHandler } from './server.js';

export type ClassicUser = {
  id: string;
  name: string;
  email?: string;
  /** ACTIVE, INACTIVE (blocked), DELETED ... */
  lifecycleState?: string;
  /** Bit flags of why a user is inactive (4 = blocked). */
  inactiveStatus?: number;
  timeCreated?: string;
};
export type ClassicGroup = { id: string; name: string; timeCreated?: string };
export type ClassicMembership = { id: string; userId: string; groupId: string; timeCreated?: string };
export type TestCompartment = { id: string; parentId: string; name: string; lifecycleState?: string };

/** A SCIM user of an identity domain: its own `id` (a GUID) and the `ocid`. */
export type ScimUser = {
  id: string;
  ocid: string;
  userName: string;
  displayName?: string;
  emails?: string[];
  active?: boolean;
  locked?: boolean;
};
export type ScimGroup = {
  id: string;
  ocid: string;
  displayName: string;
  /** Member SCIM user ids, with when each was added. */
  members: { value: string; dateAdded?: string }[];
};
export type TestDomain = {
  id: string;
  displayName: string;
  /** The path key of its SCIM API on this endpoint (`/identitydomains/<key>`). */
  key: string;
  lifecycleState?: string;
  /** The compartment it lives in (default: the tenancy). */
  compartmentId?: string;
  users: ScimUser[];
  groups: ScimGroup[];
};

/** What the identity handlers serve; tests change it between two syncs. */
export type TestDirectory = {
  tenancy: string;
  compartments: TestCompartment[];
  users: ClassicUser[];
  groups: ClassicGroup[];
  memberships: ClassicMembership[];
  domains: TestDomain[];
};

/** Page sizes the service uses at most (small values exercise paging). */
export type PageSizes = { oci?: number; scim?: number };

const CREATED = '2026-01-05T08:00:00.000Z';

export function identityService(dir: TestDirectory, pages: PageSizes = {}): { handler: ServiceHandler } {
  const max = pages.oci ?? 1000;
  const inTenancy = (req: EndpointRequest) =>
    req.query.compartmentId === dir.tenancy
      ? undefined
      : ociError(400, 'InvalidParameter', 'compartmentId must be the tenancy OCID.');
  const handler: ServiceHandler = {
    name: 'identity',
    basePath: '/20160918',
    routes: [
      {
        name: 'listUsers',
        method: 'GET',
        pattern: '/users',
        handle: (req) =>
          inTenancy(req) ??
          ociPage(
            req,
            dir.users.map((u) => ({
              id: u.id,
              compartmentId: dir.tenancy,
              name: u.name,
              description: '',
              email: u.email,
              timeCreated: u.timeCreated ?? CREATED,
              lifecycleState: u.lifecycleState ?? 'ACTIVE',
              inactiveStatus: u.inactiveStatus,
              isMfaActivated: false,
            })),
            max,
            ['compartmentId'],
          ),
      },
      {
        name: 'listGroups',
        method: 'GET',
        pattern: '/groups',
        handle: (req) =>
          inTenancy(req) ??
          ociPage(
            req,
            dir.groups.map((g) => ({
              id: g.id,
              compartmentId: dir.tenancy,
              name: g.name,
              description: '',
              timeCreated: g.timeCreated ?? CREATED,
              lifecycleState: 'ACTIVE',
            })),
            max,
            ['compartmentId'],
          ),
      },
      {
        name: 'listUserGroupMemberships',
        method: 'GET',
        pattern: '/userGroupMemberships',
        handle: (req) => {
          const refused = inTenancy(req);
          if (refused) return refused;
          const { userId, groupId } = req.query;
          if (userId === undefined && groupId === undefined)
            return ociError(400, 'InvalidParameter', 'userId or groupId must be set.');
          const items = dir.memberships
            .filter(
              (m) =>
                (userId === undefined || m.userId === userId) &&
                (groupId === undefined || m.groupId === groupId),
            )
            .map((m) => ({
              id: m.id,
              compartmentId: dir.tenancy,
              groupId: m.groupId,
              userId: m.userId,
              timeCreated: m.timeCreated ?? CREATED,
              lifecycleState: 'ACTIVE',
            }));
          return ociPage(req, items, max, ['compartmentId', 'userId', 'groupId']);
        },
      },
      {
        name: 'listDomains',
        method: 'GET',
        pattern: '/domains',
        handle: (req, ctx) =>
          ociPage(
            req,
            dir.domains
              .filter((d) => (d.compartmentId ?? dir.tenancy) === req.query.compartmentId)
              .map((d) => ({
                id: d.id,
                compartmentId: d.compartmentId ?? dir.tenancy,
                displayName: d.displayName,
                description: '',
                url: `${ctx.url}/identitydomains/${d.key}`,
                homeRegionUrl: `${ctx.url}/identitydomains/${d.key}`,
                homeRegion: 'eu-frankfurt-1',
                replicaRegions: [],
                type: 'DEFAULT',
                licenseType: 'free',
                isHiddenOnLogin: false,
                timeCreated: CREATED,
                lifecycleState: d.lifecycleState ?? 'ACTIVE',
              })),
            max,
            ['compartmentId'],
          ),
      },
      {
        name: 'listCompartments',
        method: 'GET',
        pattern: '/compartments',
        handle: (req) => {
          const root = req.query.compartmentId ?? '';
          const subtree = req.query.compartmentIdInSubtree === 'true';
          if (subtree && root !== dir.tenancy)
            return ociError(
              400,
              'InvalidParameter',
              'compartmentIdInSubtree is only valid with the tenancy.',
            );
          const below = (id: string): TestCompartment[] =>
            dir.compartments
              .filter((c) => c.parentId === id)
              .flatMap((c) => [c, ...(subtree ? below(c.id) : [])]);
          const items = below(root).map((c) => ({
            id: c.id,
            compartmentId: c.parentId,
            name: c.name,
            description: '',
            timeCreated: CREATED,
            lifecycleState: c.lifecycleState ?? 'ACTIVE',
            isAccessible: true,
          }));
          return ociPage(req, items, max, ['compartmentId', 'compartmentIdInSubtree']);
        },
      },
    ],
  };
  return { handler };
}
