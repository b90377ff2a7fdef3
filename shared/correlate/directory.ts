// IAM users and groups: seeded from the config snapshot, kept current by IAM events. User state is
// a timeline so that "was this user deleted or deactivated at connect time" has an answer.
import type { Config } from '../../schemas/config.js';
import type { EntityCache } from '../state/entity-cache.js';
import { BEGINNING_OF_TIME } from '../time.js';

export type UserState = 'active' | 'inactive' | 'deleted';
export type DirectoryUserRow = {
  id: string;
  name: string;
  aliases: string[];
  /** State changes in event time; before the first one the user is active. */
  states: { ts: number; state: UserState; key: string }[];
};
export type DirectoryGroupRow = { id: string; name: string; breakGlassMs?: number; deletedTs?: number };

const USER = 'user';
const GROUP = 'group';

export class Directory {
  /** Lower-cased OCID, name or alias -> user id. */
  private readonly byName = new Map<string, string>();

  constructor(private readonly cache: EntityCache) {
    for (const u of cache.values<DirectoryUserRow>(USER)) this.index(u);
  }

  seed(config: Config): void {
    const at = config.directory.snapshotTime ?? BEGINNING_OF_TIME;
    for (const u of config.directory.users) {
      if (this.user(u.id)) continue;
      const states = u.state === 'active' ? [] : [{ ts: at, state: u.state, key: 'config:directory' }];
      this.putUser({ id: u.id, name: u.name, aliases: u.aliases, states });
    }
    for (const g of config.directory.groups) {
      if (this.group(g.id)) continue;
      const row: DirectoryGroupRow = { id: g.id, name: g.name };
      if (g.breakGlass) row.breakGlassMs = g.breakGlass.maxDuration;
      this.cache.set(GROUP, g.id, row);
    }
  }

  user(id: string): DirectoryUserRow | undefined {
    return this.cache.get<DirectoryUserRow>(USER, id);
  }

  group(id: string): DirectoryGroupRow | undefined {
    return this.cache.get<DirectoryGroupRow>(GROUP, id);
  }

  users(): DirectoryUserRow[] {
    return [...this.cache.values<DirectoryUserRow>(USER)];
  }

  groups(): DirectoryGroupRow[] {
    return [...this.cache.values<DirectoryGroupRow>(GROUP)];
  }

  groupByName(name: string): DirectoryGroupRow | undefined {
    const lower = name.toLowerCase();
    for (const g of this.cache.values<DirectoryGroupRow>(GROUP)) if (g.name.toLowerCase() === lower) return g;
    return undefined;
  }

  /** Resolves an OCID, user name or alias (case-insensitive) to a known user. */
  findUser(nameOrId: string | undefined): DirectoryUserRow | undefined {
    if (!nameOrId) return undefined;
    const id = this.byName.get(nameOrId.toLowerCase());
    return id === undefined ? undefined : this.user(id);
  }

  /**
   * Learns a user (or a new name for one) from an IAM event. An id the directory does not know
   * but a name it does (identity-domain events carry the domain's own user GUID) resolves to the
   * known user, and the id becomes one of its aliases.
   */
  noteUser(id: string | undefined, name: string | undefined): DirectoryUserRow | undefined {
    if (!id) return this.findUser(name);
    const existing = this.user(id) ?? this.findUser(id) ?? this.findUser(name);
    if (existing) {
      for (const alias of [name, id]) {
        if (alias && existing.id !== alias && existing.name !== alias && !existing.aliases.includes(alias)) {
          existing.aliases.push(alias);
          this.index(existing);
          this.cache.touch(USER, existing.id);
        }
      }
      return existing;
    }
    return this.putUser({ id, name: name ?? id, aliases: [], states: [] });
  }

  noteGroup(id: string | undefined, name: string | undefined): DirectoryGroupRow | undefined {
    if (!id) return name ? this.groupByName(name) : undefined;
    return this.group(id) ?? this.cache.set<DirectoryGroupRow>(GROUP, id, { id, name: name ?? id });
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
  userStateAt(id: string, ts: number): { state: UserState; key?: string } {
    let current: { state: UserState; key?: string } = { state: 'active' };
    for (const s of this.user(id)?.states ?? []) {
      if (s.ts > ts) break;
      current = { state: s.state, key: s.key };
    }
    return current;
  }

  markGroupDeleted(id: string, ts: number): void {
    const g = this.group(id);
    if (g && (g.deletedTs === undefined || ts < g.deletedTs)) {
      g.deletedTs = ts;
      this.cache.touch(GROUP, id);
    }
  }

  private putUser(row: DirectoryUserRow): DirectoryUserRow {
    this.cache.set(USER, row.id, row);
    this.index(row);
    return row;
  }

  private index(u: DirectoryUserRow): void {
    for (const n of [u.id, u.name, ...u.aliases]) this.byName.set(n.toLowerCase(), u.id);
  }
}
