// IAM users and groups: seeded from the config and the `sync` snapshots, kept current by IAM
// events. User state is a timeline so that "was this user deleted or deactivated at connect time"
// has an answer. Users and groups are found by OCID, by the identity domain's own id (an alias),
// and by name, since identity-domain events name them by the domain's ids.
import type { EntityCache } from '../state/entity-cache.js';
import { BEGINNING_OF_TIME, inForceAt } from '../time.js';

export type UserState = 'active' | 'inactive' | 'deleted';
export type DirectoryUserRow = {
  id: string;
  name: string;
  aliases: string[];
  /** State changes in event time; before the first one the user is active. */
  states: { ts: number; state: UserState; key: string }[];
};
export type DirectoryGroupRow = {
  id: string;
  name: string;
  /** Other ids (an identity domain's own id). */
  aliases?: string[];
  /** The identity domain (OCID) the group belongs to: names are unique only within a domain. */
  domain?: string;
  breakGlassMs?: number;
  deletedTs?: number;
  /** Known only from IAM events naming it: no seed (configuration, snapshot) listed it. */
  unknown?: true;
};

/** Users and groups a seed (the configuration, a snapshot) brings, as known at its time. */
export type DirectorySeed = {
  key: string;
  /** When the facts were known; states hold from then. */
  time?: number | undefined;
  users: { id: string; name: string; aliases: string[]; state: UserState }[];
  groups: {
    id: string;
    name: string;
    aliases: string[];
    domain?: string | undefined;
    breakGlassMs?: number;
  }[];
};

const USER = 'user';
const GROUP = 'group';

export class Directory {
  /** Lower-cased OCID, name or alias -> user ids (a name is reused once its user is deleted). */
  private readonly byName = new Map<string, string[]>();
  /** Lower-cased group OCID or alias -> group id. */
  private readonly groupById = new Map<string, string>();
  /** Lower-cased group name -> group ids (names repeat across identity domains). */
  private readonly groupsByName = new Map<string, Set<string>>();

  constructor(private readonly cache: EntityCache) {
    for (const u of cache.values<DirectoryUserRow>(USER)) this.index(u);
    for (const g of cache.values<DirectoryGroupRow>(GROUP)) this.indexGroup(g);
  }

  /**
   * Adds what the directory does not know yet; known users and groups gain the seed's aliases
   * (and a new name as one more alias). A group's break-glass setting is the seed's when it has
   * one: the configuration says which groups are break-glass.
   */
  seed(seed: DirectorySeed): void {
    const at = seed.time ?? BEGINNING_OF_TIME;
    for (const u of seed.users) {
      const existing = this.user(u.id);
      if (existing) {
        this.addAliases(existing, [u.name, ...u.aliases]);
        continue;
      }
      const states = u.state === 'active' ? [] : [{ ts: at, state: u.state, key: seed.key }];
      this.putUser({ id: u.id, name: u.name, aliases: u.aliases, states });
    }
    for (const g of seed.groups) {
      const row = this.group(g.id) ?? { id: g.id, name: g.name };
      // A group the configuration named only by id takes the name discovered for it.
      if (row.name === row.id) row.name = g.name;
      delete row.unknown;
      const aliases = [...new Set([...(row.aliases ?? []), ...g.aliases])];
      if (aliases.length > 0) row.aliases = aliases.filter((a) => a !== row.id && a !== row.name);
      if (g.domain) row.domain = g.domain;
      if (g.breakGlassMs !== undefined) row.breakGlassMs = g.breakGlassMs;
      this.cache.set(GROUP, g.id, row);
      this.indexGroup(row);
    }
  }

  user(id: string): DirectoryUserRow | undefined {
    return this.cache.get<DirectoryUserRow>(USER, id);
  }

  group(id: string): DirectoryGroupRow | undefined {
    return this.cache.get<DirectoryGroupRow>(GROUP, id);
  }

  /**
   * A known group by OCID or alias, else by name: the one group of that name (in `domain` when
   * the event says which identity domain it is about). An OCID nothing knows is never matched by
   * name: a group deleted and created again under its old name is another group, which no
   * mapping of the old one reaches.
   */
  findGroup(id: string | undefined, name?: string, domain?: string): DirectoryGroupRow | undefined {
    const byId = id === undefined ? undefined : this.groupById.get(id.toLowerCase());
    if (byId !== undefined) return this.group(byId);
    if (id?.startsWith('ocid1.')) return undefined;
    const named = [...(name === undefined ? [] : (this.groupsByName.get(name.toLowerCase()) ?? []))]
      .map((g) => this.group(g)!)
      .filter((g) => domain === undefined || g.domain === undefined || g.domain === domain);
    return named.length === 1 ? named[0] : undefined;
  }

  /**
   * Resolves an OCID, user name or alias (case-insensitive) to a known user. A name that several
   * users had (a user deleted and another created under its name) is the one not deleted at `ts`
   * (default: now), the one learnt last among those.
   */
  findUser(nameOrId: string | undefined, ts = Number.POSITIVE_INFINITY): DirectoryUserRow | undefined {
    if (!nameOrId) return undefined;
    const ids = this.byName.get(nameOrId.toLowerCase());
    if (ids === undefined) return undefined;
    if (ids.length === 1) return this.user(ids[0]!);
    const live = ids.filter((id) => this.userStateAt(id, ts).state !== 'deleted');
    return this.user(live.at(-1) ?? ids.at(-1)!);
  }

  /**
   * Learns a user (or a new name for one) from an IAM event. An id the directory does not know
   * but a name it does (identity-domain events carry the domain's own user GUID) resolves to the
   * known user, and the id becomes one of its aliases. An OCID nothing knows is never matched by
   * name: a user created under the name of a deleted one is another person.
   */
  noteUser(id: string | undefined, name: string | undefined, ts?: number): DirectoryUserRow | undefined {
    if (!id) return this.findUser(name, ts);
    const existing =
      this.user(id) ?? this.findUser(id) ?? (id.startsWith('ocid1.') ? undefined : this.findUser(name, ts));
    if (existing) {
      this.addAliases(existing, [name, id]);
      return existing;
    }
    return this.putUser({ id, name: name ?? id, aliases: [], states: [] });
  }

  /**
   * The group an IAM event names (see `findGroup`); an id found by name becomes an alias. A group
   * no seed listed is recorded under the id the event gives, and stays `known: false`.
   */
  noteGroup(
    id: string | undefined,
    name: string | undefined,
    domain?: string,
  ): { row: DirectoryGroupRow; known: boolean } | undefined {
    const found = this.findGroup(id, name, domain);
    if (found) {
      if (id && id !== found.id && !found.aliases?.includes(id)) {
        found.aliases = [...(found.aliases ?? []), id];
        this.indexGroup(found);
        this.cache.touch(GROUP, found.id);
      }
      return { row: found, known: !found.unknown };
    }
    if (!id) return undefined;
    const row: DirectoryGroupRow = { id, name: name ?? id, ...(domain ? { domain } : {}), unknown: true };
    this.cache.set(GROUP, id, row);
    this.indexGroup(row);
    return { row, known: false };
  }

  /** Records a state change; idempotent by event key, order-independent. */
  setUserState(id: string, state: UserState, ts: number, key: string): void {
    const user = this.user(id);
    if (!user || user.states.some((s) => s.key === key)) return;
    user.states.push({ ts, state, key });
    user.states.sort((a, b) => a.ts - b.ts || (a.key < b.key ? -1 : 1));
    this.cache.touch(USER, id);
  }

  /** The user's state at `ts`, with the event that set it. */
  userStateAt(id: string, ts: number): { state: UserState; key?: string; ts?: number } {
    const s = inForceAt(this.user(id)?.states ?? [], ts);
    return s ? { state: s.state, key: s.key, ts: s.ts } : { state: 'active' };
  }

  markGroupDeleted(id: string, ts: number): void {
    const g = this.group(id);
    if (g && (g.deletedTs === undefined || ts < g.deletedTs)) {
      g.deletedTs = ts;
      this.cache.touch(GROUP, id);
    }
  }

  private addAliases(user: DirectoryUserRow, names: (string | undefined)[]): void {
    const fresh = names.filter(
      (a): a is string => !!a && a !== user.id && a !== user.name && !user.aliases.includes(a),
    );
    if (fresh.length === 0) return;
    user.aliases.push(...new Set(fresh));
    this.index(user);
    this.cache.touch(USER, user.id);
  }

  private putUser(row: DirectoryUserRow): DirectoryUserRow {
    this.cache.set(USER, row.id, row);
    this.index(row);
    return row;
  }

  private index(u: DirectoryUserRow): void {
    for (const n of [u.id, u.name, ...u.aliases]) {
      const key = n.toLowerCase();
      const ids = this.byName.get(key);
      if (ids === undefined) this.byName.set(key, [u.id]);
      else if (!ids.includes(u.id)) ids.push(u.id);
    }
  }

  private indexGroup(g: DirectoryGroupRow): void {
    for (const id of [g.id, ...(g.aliases ?? [])]) this.groupById.set(id.toLowerCase(), g.id);
    const key = g.name.toLowerCase();
    const ids = this.groupsByName.get(key) ?? new Set<string>();
    ids.add(g.id);
    this.groupsByName.set(key, ids);
  }
}
