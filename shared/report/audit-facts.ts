// What the correlation state knows besides the ledger, read back for reports: the directory
// (people, groups, membership timelines), the MySQL accounts and their authentication_oci mappings
// per DB system, break-glass grants, and the DB system catalog. The same models the correlator
// keeps, loaded from the store's entity rows.
import { breakGlassGrants, type GrantRow } from '../correlate/correlator.js';
import { type DbCatalogEntry, dbCatalog } from '../correlate/db-catalog.js';
import { Directory } from '../correlate/directory.js';
import { accountKey, Mappings, OCI_PLUGIN, parseOciMapping } from '../correlate/mappings.js';
import { type MembershipChange, Memberships } from '../correlate/memberships.js';
import { EntityCache, type EntityRow } from '../state/entity-cache.js';

/** A stretch of time a person was a member of a group: [from, to), `to` undefined while it lasts. */
export type MembershipInterval = {
  user: string;
  group: string;
  from: number;
  to: number | undefined;
  /** The event that opened it, or the seed that listed it (`isSeedKey`: the configuration, a snapshot). */
  addKey: string;
};

/** An account a person or a group reaches on a DB system. */
export type Entitlement = { db: string; account: string };

export class AuditFacts {
  readonly directory: Directory;
  readonly memberships: Memberships;
  readonly mappings: Mappings;
  readonly catalog: Map<string, DbCatalogEntry>;
  readonly grants: GrantRow[];
  private readonly mapped = new Map<string, Entitlement[]>();

  constructor(rows: readonly EntityRow[]) {
    const cache = new EntityCache();
    for (const row of rows) cache.load(row);
    this.directory = new Directory(cache);
    this.memberships = new Memberships(cache);
    this.mappings = new Mappings(cache);
    this.catalog = dbCatalog(cache);
    this.grants = breakGlassGrants(cache);
  }

  /** A DB system the state knows, by OCID or name. */
  findDbSystem(wanted: string): { id: string; name: string } | undefined {
    for (const d of this.catalog.values())
      if (d.id === wanted || d.name === wanted) return { id: d.id, name: d.name };
    return undefined;
  }

  dbName(id: string): string {
    return this.catalog.get(id)?.name ?? id;
  }

  userName(id: string): string {
    return this.directory.user(id)?.name ?? id;
  }

  groupName(id: string): string {
    return this.directory.group(id)?.name ?? id;
  }

  /** Every membership stretch, from the add and remove events (a removal at the same instant wins). */
  intervals(): MembershipInterval[] {
    const out: MembershipInterval[] = [];
    for (const row of this.memberships.rows()) out.push(...stretches(row.user, row.group, row.changes));
    return out.sort(
      (a, b) => a.from - b.from || (a.user < b.user ? -1 : a.user > b.user ? 1 : a.group < b.group ? -1 : 1),
    );
  }

  /** The accounts a group maps to at `ts`, on every DB system (remembered: reports ask often). */
  groupAccounts(group: string, ts: number): Entitlement[] {
    const key = `${group}\u0000${ts}`;
    let accounts = this.mapped.get(key);
    if (accounts === undefined) {
      accounts = this.mappings.accountsMappedFrom(group, ts);
      this.mapped.set(key, accounts);
    }
    return accounts;
  }

  /** 1-to-1 authentication_oci accounts of IAM users at `ts`: user id -> accounts. */
  personalAccounts(ts: number): Map<string, Entitlement[]> {
    const out = new Map<string, Entitlement[]>();
    for (const row of this.mappings.rows()) {
      const v = this.mappings.versionAt(row.db, row, ts);
      if (v?.plugin !== OCI_PLUGIN || v.authenticationString === undefined) continue;
      const user = parseOciMapping(v.authenticationString)?.user;
      if (user === undefined) continue;
      const list = out.get(user) ?? [];
      list.push({ db: row.db, account: row.user });
      out.set(user, list);
    }
    return out;
  }

  /** The user's state at `ts`: active, inactive or deleted. */
  userState(user: string, ts: number): string {
    return this.directory.userStateAt(user, ts).state;
  }

  /** The privileges the configuration lists for an account (`user@host`; `user@%` as fallback). */
  grantsOf(db: string, user: string, host = '%'): string[] | undefined {
    const grants = this.catalog.get(db)?.grants;
    return grants?.[accountKey({ user, host })] ?? grants?.[accountKey({ user, host: '%' })];
  }

  privileged(db: string, user: string): boolean {
    return this.catalog.get(db)?.privilegedAccounts.includes(user) ?? false;
  }
}

function stretches(user: string, group: string, changes: readonly MembershipChange[]): MembershipInterval[] {
  const out: MembershipInterval[] = [];
  let open: MembershipInterval | undefined;
  for (const c of changes) {
    if (c.op === 'add' && open === undefined) {
      open = { user, group, from: c.ts, to: undefined, addKey: c.key };
      out.push(open);
    } else if (c.op === 'remove' && open !== undefined) {
      open.to = c.ts;
      open = undefined;
    }
  }
  return out;
}

/** Whether [from, to) overlaps the period. */
export function overlaps(
  from: number,
  to: number | undefined,
  period: { from: number; to: number },
): boolean {
  return from < period.to && (to === undefined || to > period.from);
}
