// IAM sign-ons per user, kept for as long as they can corroborate a connection (token lifetime
// plus the late-data lookback).
import type { EntityCache } from '../state/entity-cache.js';

export type SignOn = { ts: number; key: string; success: boolean; ip?: string; mfaFactor?: string };

const SIGNON = 'signon';

export class SignOns {
  /** Successful sign-ons by client IP (user and time): who may be behind a connection from it. */
  private readonly byIp = new Map<string, { userId: string; ts: number }[]>();

  constructor(private readonly cache: EntityCache) {
    for (const [userId, list] of cache.entries<SignOn[]>(SIGNON)) for (const s of list) this.index(userId, s);
  }

  add(userId: string, signOn: SignOn): void {
    const list = this.cache.get<SignOn[]>(SIGNON, userId) ?? this.cache.set<SignOn[]>(SIGNON, userId, []);
    if (list.some((s) => s.key === signOn.key)) return;
    list.push(signOn);
    list.sort((a, b) => a.ts - b.ts || (a.key < b.key ? -1 : 1));
    this.cache.touch(SIGNON, userId);
    this.index(userId, signOn);
  }

  private index(userId: string, s: SignOn): void {
    if (!s.success || !s.ip) return;
    let entries = this.byIp.get(s.ip);
    if (entries === undefined) {
      entries = [];
      this.byIp.set(s.ip, entries);
    }
    entries.push({ userId, ts: s.ts });
  }

  /**
   * Users with a successful sign-on from `ip` in (ts - window, ts], each once: those whose
   * latestBefore from that IP may be from it (a connection's candidates, without scanning every
   * member of its groups).
   */
  usersFrom(ip: string, ts: number, window: number): Set<string> {
    const users = new Set<string>();
    for (const e of this.byIp.get(ip) ?? []) if (e.ts <= ts && e.ts > ts - window) users.add(e.userId);
    return users;
  }

  /**
   * The latest successful sign-on of `userId` in (ts - window, ts], from `ip` when both sides
   * know the address.
   */
  latestBefore(userId: string, ts: number, window: number, ip: string | undefined): SignOn | undefined {
    const list = this.cache.get<SignOn[]>(SIGNON, userId) ?? [];
    for (let i = list.length - 1; i >= 0; i--) {
      const s = list[i]!;
      if (s.ts > ts) continue;
      if (s.ts <= ts - window) break;
      if (s.success && (!ip || !s.ip || s.ip === ip)) return s;
    }
    return undefined;
  }

  /** Drops sign-ons older than `before`. */
  prune(before: number): void {
    for (const [userId, list] of [...this.cache.entries<SignOn[]>(SIGNON)]) {
      if (list.length === 0 || list[0]!.ts >= before) continue;
      const kept = list.filter((s) => s.ts >= before);
      if (kept.length === 0) this.cache.delete(SIGNON, userId);
      else this.cache.set(SIGNON, userId, kept);
    }
    for (const [ip, entries] of this.byIp) {
      if (entries.every((e) => e.ts >= before)) continue;
      const kept = entries.filter((e) => e.ts >= before);
      if (kept.length === 0) this.byIp.delete(ip);
      else this.byIp.set(ip, kept);
    }
  }
}
