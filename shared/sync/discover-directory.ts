// The IAM directory as `sync` reads it: classic users, groups and memberships (oci-identity,
// tenancy-wide), and the users and groups with their members of each identity domain, in any
// compartment (oci-identitydomains, SCIM). Everything is keyed by OCID (what authentication_oci mappings and
// classic events name); the domain's own ids, user names and e-mail addresses become aliases, so
// that events naming either resolve to the same user or group.
import type { models } from 'oci-identitydomains';
import type {
  SnapshotGroup,
  SnapshotMembership,
  SnapshotPart,
  SnapshotUser,
} from '../../schemas/snapshot.js';
import { PART } from '../../schemas/snapshot.js';
import { inGroups } from '../in-groups.js';
import type { OciClientTypes } from '../oci/clients.js';
import type { OciCalls } from './oci-calls.js';

export type DirectoryClients = {
  identity: OciClientTypes['identity'];
  /** A SCIM client for one domain, at the domain's URL. */
  domain(url: string): Promise<OciClientTypes['identitydomains']>;
};

export type DiscoveredDirectory = {
  users: SnapshotUser[];
  groups: SnapshotGroup[];
  memberships: SnapshotMembership[];
  parts: Record<string, SnapshotPart>;
};

const PAGE = 1000;
/** A group's members are read this many a request (the service refuses more than 10,000). */
const MEMBER_PAGE = 1000;
/** Membership and domain lists run this many at a time (one call per group or compartment). */
const CONCURRENCY = 4;
const USER_STATE = 'urnIetfParamsScimSchemasOracleIdcsExtensionUserStateUser';
const USER_ATTRIBUTES = `ocid,userName,displayName,emails,active,urn:ietf:params:scim:schemas:oracle:idcs:extension:userState:User:locked`;

/**
 * Reads the classic directory and every active identity domain of the `compartments` (the
 * tenancy's tree); a failing part is reported, not thrown.
 */
export async function discoverDirectory(
  tenancy: string,
  compartments: () => Promise<string[]>,
  clients: DirectoryClients,
  calls: OciCalls,
  time: string,
): Promise<DiscoveredDirectory> {
  const out = new DirectoryBuilder();
  const parts: Record<string, SnapshotPart> = {};
  const attempt = async (part: string, read: () => Promise<void>) => {
    try {
      await read();
      parts[part] = { status: 'ok', readAt: time };
    } catch (error) {
      if ((error as { code?: unknown }).code === 'DEADLINE') throw error;
      parts[part] = { status: 'failed', readAt: time, error: reason(error) };
    }
  };
  await attempt(PART.iam, () => readClassic(tenancy, clients.identity, calls, out.part(PART.iam)));
  let domains: { id: string; url: string }[] = [];
  await attempt(PART.domains, async () => {
    // ListDomains lists the domains of one compartment, none of those below it.
    const lists = await inGroups(await compartments(), CONCURRENCY, (compartmentId) =>
      calls.list('identity.listDomains', (page) =>
        clients.identity.listDomains({ compartmentId, limit: PAGE, ...(page ? { page } : {}) }),
      ),
    );
    domains = lists.flat().filter((d) => d.lifecycleState === 'ACTIVE');
  });
  for (const d of domains)
    await attempt(PART.domain(d.id), async () =>
      readDomain(d.id, await clients.domain(d.url), calls, out.part(PART.domain(d.id))),
    );
  return { ...out.result(), parts };
}

async function readClassic(
  tenancy: string,
  client: OciClientTypes['identity'],
  calls: OciCalls,
  out: PartBuilder,
): Promise<void> {
  const base = { compartmentId: tenancy, limit: PAGE };
  const users = await calls.list('identity.listUsers', (page) =>
    client.listUsers({ ...base, ...(page ? { page } : {}) }),
  );
  const groups = await calls.list('identity.listGroups', (page) =>
    client.listGroups({ ...base, ...(page ? { page } : {}) }),
  );
  const memberships = await inGroups(groups, CONCURRENCY, (g) =>
    calls.list('identity.listUserGroupMemberships', (page) =>
      client.listUserGroupMemberships({ ...base, groupId: g.id, ...(page ? { page } : {}) }),
    ),
  );
  for (const u of users) {
    if (u.lifecycleState === 'DELETED') continue;
    out.user({ id: u.id, name: u.name, aliases: u.email ? [u.email] : [], state: classicState(u) });
  }
  for (const g of groups)
    if (g.lifecycleState !== 'DELETED') out.group({ id: g.id, name: g.name, aliases: [] });
  for (const m of memberships.flat()) {
    if (m.lifecycleState === 'DELETED' || m.lifecycleState === 'DELETING') continue;
    out.membership({ user: m.userId, group: m.groupId, id: m.id, since: isoOf(m.timeCreated) });
  }
}

/** A classic user's state: INACTIVE (blocked, for instance) and DELETING are not active. */
function classicState(u: { lifecycleState: string; inactiveStatus?: number }): SnapshotUser['state'] {
  if (u.lifecycleState === 'DELETING') return 'deleted';
  if (u.lifecycleState === 'INACTIVE' || (u.inactiveStatus ?? 0) !== 0) return 'inactive';
  return 'active';
}

async function readDomain(
  domainId: string,
  client: OciClientTypes['identitydomains'],
  calls: OciCalls,
  out: PartBuilder,
): Promise<void> {
  const users = await calls.scim(
    'identitydomains.listUsers',
    async (startIndex) =>
      (await client.listUsers({ attributes: USER_ATTRIBUTES, startIndex, count: PAGE })).users,
  );
  const groups = await calls.scim(
    'identitydomains.listGroups',
    async (startIndex) =>
      (await client.listGroups({ attributes: 'ocid,displayName', startIndex, count: PAGE })).groups,
  );
  const members = await inGroups(groups, CONCURRENCY, async (g) =>
    g.id ? groupMembers(g.id, client, calls) : [],
  );
  const ocidOf = new Map<string, string>();
  for (const u of users) {
    if (!u.id) continue;
    const id = u.ocid ?? u.id;
    ocidOf.set(u.id, id);
    const locked = (u as Record<string, unknown>)[USER_STATE] as { locked?: { on?: boolean } } | undefined;
    const emails = (u.emails ?? []).map((e) => e.value).filter((v): v is string => !!v);
    out.user({
      id,
      name: u.userName,
      aliases: [u.id, ...emails],
      state: u.active === false || locked?.locked?.on === true ? 'inactive' : 'active',
    });
  }
  for (const [i, g] of groups.entries()) {
    if (!g.id) continue;
    const id = g.ocid ?? g.id;
    out.group({ id, name: g.displayName, aliases: [g.id], domain: domainId });
    for (const m of members[i]!) {
      const user = m.ocid ?? ocidOf.get(m.value);
      if (user) out.membership({ user, group: id, since: isoOf(m.dateAdded) });
    }
  }
}

/**
 * A domain group's members, read with GetGroup a page at a time: the service refuses a response
 * carrying more than 10,000 members, and pages them by `members[startIndex=N&count=M]`
 * (oci-identitydomains Group.members; the `&` percent-encoded, as the SDK writes query values into
 * the URL as they are). It gives no member total: a page shorter than asked is the last.
 */
async function groupMembers(
  groupId: string,
  client: OciClientTypes['identitydomains'],
  calls: OciCalls,
): Promise<models.GroupMembers[]> {
  const out: models.GroupMembers[] = [];
  for (;;) {
    const attributes = `members[startIndex=${out.length + 1}%26count=${MEMBER_PAGE}]`;
    const { group } = await calls.call('identitydomains.getGroup', () =>
      client.getGroup({ groupId, attributes }),
    );
    const page = group.members ?? [];
    out.push(...page);
    if (page.length < MEMBER_PAGE) return out;
  }
}

type PartBuilder = {
  user(u: Omit<SnapshotUser, 'part'>): void;
  group(g: Omit<SnapshotGroup, 'part'>): void;
  membership(
    m: Omit<SnapshotMembership, 'part' | 'id' | 'since'> & { id?: string; since?: string | undefined },
  ): void;
};

/**
 * Merges what the parts list: the same OCID from the classic directory and a domain (the default
 * domain is listed by both) is one user or group, with the aliases of both and the domain's OCID.
 */
class DirectoryBuilder {
  private readonly users = new Map<string, SnapshotUser>();
  private readonly groups = new Map<string, SnapshotGroup>();
  private readonly memberships = new Map<string, SnapshotMembership>();

  part(part: string): PartBuilder {
    return {
      user: (u) => merge(this.users, { ...u, part }),
      group: (g) => merge(this.groups, { ...g, part }),
      membership: (m) => {
        const key = `${m.user}\u0000${m.group}`;
        const existing = this.memberships.get(key);
        if (existing) {
          existing.id ??= m.id;
          existing.since ??= m.since;
          return;
        }
        const row: SnapshotMembership = { user: m.user, group: m.group, part };
        if (m.id) row.id = m.id;
        if (m.since) row.since = m.since;
        this.memberships.set(key, row);
      },
    };
  }

  result(): Omit<DiscoveredDirectory, 'parts'> {
    const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    return {
      users: [...this.users.values()].sort(byId),
      groups: [...this.groups.values()].sort(byId),
      memberships: [...this.memberships.values()].sort(
        (a, b) => byId({ id: a.user }, { id: b.user }) || byId({ id: a.group }, { id: b.group }),
      ),
    };
  }
}

type Entry = { id: string; name: string; aliases: string[]; domain?: string | undefined };

function merge<T extends Entry>(into: Map<string, T>, row: T): void {
  const existing = into.get(row.id);
  if (!existing) {
    into.set(row.id, { ...row, aliases: unique(row.aliases.filter((a) => a !== row.name && a !== row.id)) });
    return;
  }
  absorb(existing, { ...row, aliases: [row.name, ...row.aliases] });
}

/** Adds to `row` what another part says of the same user or group: its aliases and domain. */
export function absorb(row: Entry, other: Pick<Entry, 'aliases' | 'domain'>): void {
  row.aliases = unique([...row.aliases, ...other.aliases]).filter((a) => a !== row.name && a !== row.id);
  if (other.domain) row.domain ??= other.domain;
}

function unique(values: string[]): string[] {
  return [...new Set(values.filter((v) => v.trim() !== ''))].sort();
}

function isoOf(value: Date | string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

/** A log-safe reason: the AuditError message (operation, status, service code), never a payload. */
export function reason(error: unknown): string {
  return error instanceof Error && error.name === 'AuditError' ? error.message : 'unexpected failure';
}
