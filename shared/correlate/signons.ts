// IAM sign-ons per user, kept for as long as they can corroborate a connection (token lifetime
// plus the late-data lookback).
import type { EntityCache } from '../state/entity-cache.js';

export type SignOn = { ts: number; key: string; success: boolean; ip?: string; mfaFactor?: string };

const SIGNON = 'signon';

export class SignOns {
  constructor(private readonly cache: EntityCache) {}

  add(userId: string, signOn: SignOn): void {
    const list = this.cache.get<SignOn[]>(SIGNON, userId) ?? this.cache.set<SignOn[]>(SIGNON, userId, []);
    if (list.some((s) => s.key === signOn.key)) return;
    list.push(signOn);
    list.sort((a, b) => a.ts - b.ts || (a.key < b.key ? -1 : 1));
    this.cache.touch(SIGNON, userId);
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
  }
}
