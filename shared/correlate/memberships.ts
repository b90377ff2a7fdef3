// Group membership as a timeline per (user, group): membership at time t is decided by the latest
// add/remove event at or before t, so events may arrive in any order or more than once.
import type { EntityCache } from '../state/entity-cache.js';
import { BEGINNING_OF_TIME, inForceAt } from '../time.js';

export type MembershipChange = { ts: number; op: 'add' | 'remove'; key: string; membershipId?: string };
export type MembershipRow = { user: string; group: string; changes: MembershipChange[] };

const MEMBER = 'member';
const MEMBERSHIP_ID = 'membership-id';

export type MembershipSeed = {
  user: string;
  group: string;
  id?: string | undefined;
  since?: number | undefined;
};

function rowKey(user: string, group: string): string {
  return `${user}\u0000${group}`;
}

function order(a: MembershipChange, b: MembershipChange): number {
  // At the same instant a removal wins: it is the safer reading for an audit.
  return (
    a.ts - b.ts || (a.op === b.op ? (a.key < b.key ? -1 : a.key > b.key ? 1 : 0) : a.op === 'add' ? -1 : 1)
  );
}

export class Memberships {
  /** Rows by group, then user. */
  private readonly rowsByGroup = new Map<string, Map<string, MembershipRow>>();

  constructor(private readonly cache: EntityCache) {
    for (const row of cache.values<MembershipRow>(MEMBER)) this.index(row);
  }

  /**
   * Memberships a seed (the configuration, a snapshot) lists: each known from `since`, or from
   * the beginning of time, under the seed's key. Idempotent.
   */
  seed(key: string, memberships: readonly MembershipSeed[]): void {
    for (const m of memberships) {
      const row = this.row(m.user, m.group);
      if (row.changes.some((c) => c.key === key)) continue;
      const change: MembershipChange = { ts: m.since ?? BEGINNING_OF_TIME, op: 'add', key };
      if (m.id) change.membershipId = m.id;
      this.insert(row, change);
      if (m.id && !this.resolveId(m.id))
        this.cache.set(MEMBERSHIP_ID, m.id, { user: m.user, group: m.group });
    }
  }

  /** Applies an add or remove; returns false when the event was already applied. */
  apply(user: string, group: string, change: MembershipChange): boolean {
    const row = this.row(user, group);
    if (row.changes.some((c) => c.key === change.key)) return false;
    this.insert(row, change);
    if (change.membershipId && !this.resolveId(change.membershipId)) {
      this.cache.set(MEMBERSHIP_ID, change.membershipId, { user, group });
    }
    return true;
  }

  /** The (user, group) a membership OCID stands for, if it was seen or configured. */
  resolveId(membershipId: string): { user: string; group: string } | undefined {
    return this.cache.get(MEMBERSHIP_ID, membershipId);
  }

  /** The change in force at `ts` (the latest at or before it). */
  stateAt(user: string, group: string, ts: number): MembershipChange | undefined {
    return inForceAt(this.rowsByGroup.get(group)?.get(user)?.changes ?? [], ts);
  }

  isMember(user: string, group: string, ts: number): boolean {
    return this.stateAt(user, group, ts)?.op === 'add';
  }

  /** The users who are members of `group` at `ts`. */
  membersAt(group: string, ts: number): string[] {
    return [...(this.rowsByGroup.get(group)?.keys() ?? [])].filter((user) => this.isMember(user, group, ts));
  }

  /** Every (user, group) row with its changes, for reports. */
  rows(): MembershipRow[] {
    return [...this.cache.values<MembershipRow>(MEMBER)];
  }

  /** Every (user, group) row of a group, for grant and timeline views. */
  changes(user: string, group: string): readonly MembershipChange[] {
    return this.cache.get<MembershipRow>(MEMBER, rowKey(user, group))?.changes ?? [];
  }

  private row(user: string, group: string): MembershipRow {
    const key = rowKey(user, group);
    const existing = this.cache.get<MembershipRow>(MEMBER, key);
    if (existing) return existing;
    const row = this.cache.set<MembershipRow>(MEMBER, key, { user, group, changes: [] });
    this.index(row);
    return row;
  }

  private insert(row: MembershipRow, change: MembershipChange): void {
    row.changes.push(change);
    row.changes.sort(order);
    this.cache.touch(MEMBER, rowKey(row.user, row.group));
  }

  private index(row: MembershipRow): void {
    let rows = this.rowsByGroup.get(row.group);
    if (!rows) {
      rows = new Map();
      this.rowsByGroup.set(row.group, rows);
    }
    rows.set(row.user, row);
  }
}
