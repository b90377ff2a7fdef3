// IAM sign-ons per user, kept for as long as they can corroborate a connection: a connection is
// applied up to `retention` late (an instance whose audit log was read late), so its sign-ons are
// kept that long (plus the token lifetime). They are stored a row per user and UTC day, so that a
// new sign-on rewrites its day's row rather than a month of them; in memory, each user's and each
// address's are in time order and looked up by binary search.
import type { EntityCache } from '../state/entity-cache.js';

export type SignOn = { ts: number; key: string; success: boolean; ip?: string; mfaFactor?: string };

const SIGNON = 'signon';
const DAY = 86_400_000;
const PRUNE_EVERY = 3_600_000;

/** The row of a user's sign-ons of one UTC day. */
const rowKey = (userId: string, ts: number) => `${userId}\u0000${Math.floor(ts / DAY)}`;

export class SignOns {
  /** Every user's sign-ons, in time order (the rows' objects). */
  private readonly byUser = new Map<string, SignOn[]>();
  /** Successful sign-ons by client IP (user and time), in time order: who may be behind a connection from it. */
  private readonly byIp = new Map<string, { userId: string; ts: number }[]>();
  /** Where the last prune cut. */
  private prunedTo = Number.NEGATIVE_INFINITY;

  constructor(private readonly cache: EntityCache) {
    for (const [key, list] of [...cache.entries<SignOn[]>(SIGNON)]) {
      const sep = key.indexOf('\u0000');
      const userId = sep < 0 ? key : key.slice(0, sep);
      // A state written before sign-ons were kept by day holds one row per user: split it.
      if (sep < 0) cache.delete(SIGNON, key);
      for (const s of list) {
        if (sep < 0) insert(this.row(userId, s.ts), s, bySignOn);
        this.remember(userId, s);
      }
    }
  }

  add(userId: string, signOn: SignOn): void {
    const row = this.row(userId, signOn.ts);
    if (row.some((s) => s.key === signOn.key)) return;
    insert(row, signOn, bySignOn);
    this.cache.touch(SIGNON, rowKey(userId, signOn.ts));
    this.remember(userId, signOn);
  }

  /** The row of `userId`'s sign-ons on the day of `ts`, created (and marked for the commit) when new. */
  private row(userId: string, ts: number): SignOn[] {
    const key = rowKey(userId, ts);
    return this.cache.get<SignOn[]>(SIGNON, key) ?? this.cache.set<SignOn[]>(SIGNON, key, []);
  }

  private remember(userId: string, s: SignOn): void {
    insert(listOf(this.byUser, userId), s, bySignOn);
    if (s.success && s.ip) insert(listOf(this.byIp, s.ip), { userId, ts: s.ts }, byAddress);
  }

  /**
   * Users with a successful sign-on from `ip` in (ts - window, ts], each once: those whose
   * latestBefore from that IP may be from it (a connection's candidates, without scanning every
   * member of its groups, nor every sign-on from a shared address).
   */
  usersFrom(ip: string, ts: number, window: number): Set<string> {
    const users = new Set<string>();
    const entries = this.byIp.get(ip) ?? [];
    for (let i = firstAfter(entries, ts - window); i < entries.length && entries[i]!.ts <= ts; i++)
      users.add(entries[i]!.userId);
    return users;
  }

  /**
   * The latest successful sign-on of `userId` in (ts - window, ts], from `ip` when both sides
   * know the address.
   */
  latestBefore(userId: string, ts: number, window: number, ip: string | undefined): SignOn | undefined {
    const list = this.byUser.get(userId) ?? [];
    for (let i = firstAfter(list, ts) - 1; i >= 0; i--) {
      const s = list[i]!;
      if (s.ts <= ts - window) break;
      if (s.success && (!ip || !s.ip || s.ip === ip)) return s;
    }
    return undefined;
  }

  /**
   * Drops sign-ons older than `before`, an hour of event time at most after the last time: one kept
   * a little longer corroborates only connections older than the retention, which are not applied.
   */
  prune(before: number): void {
    if (before < this.prunedTo + PRUNE_EVERY) return;
    this.prunedTo = before;
    for (const [key, list] of this.cache.entries<SignOn[]>(SIGNON)) {
      const first = firstAfter(list, before - 1);
      if (first === list.length) this.cache.delete(SIGNON, key);
      else if (first > 0) {
        list.splice(0, first);
        this.cache.touch(SIGNON, key);
      }
    }
    for (const index of [this.byUser, this.byIp] as Map<string, { ts: number }[]>[])
      for (const [k, entries] of index) {
        const first = firstAfter(entries, before - 1);
        if (first === entries.length) index.delete(k);
        else if (first > 0) entries.splice(0, first);
      }
  }
}

// Lists in time order, then by event key (or user): the same whatever the order sign-ons came in.
const bySignOn = (a: SignOn, b: SignOn) => a.ts - b.ts || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
const byAddress = (a: { userId: string; ts: number }, b: { userId: string; ts: number }) =>
  a.ts - b.ts || (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0);

function listOf<T>(index: Map<string, T[]>, key: string): T[] {
  let list = index.get(key);
  if (list === undefined) {
    list = [];
    index.set(key, list);
  }
  return list;
}

/** Adds `item` in order (mostly an append: sign-ons mostly come in time order). */
function insert<T>(list: T[], item: T, order: (a: T, b: T) => number): void {
  if (list.length === 0 || order(list.at(-1)!, item) <= 0) {
    list.push(item);
    return;
  }
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (order(list[mid]!, item) <= 0) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, item);
}

/** The index of the first entry later than `ts` in a list in time order (its length if none). */
function firstAfter(entries: readonly { ts: number }[], ts: number): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (entries[mid]!.ts <= ts) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
