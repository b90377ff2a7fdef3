import { describe, expect, it } from 'vitest';
import { Memberships } from '../../shared/correlate/memberships.js';
import { EntityCache } from '../../shared/state/entity-cache.js';

const U = 'u1';
const G = 'g1';

describe('membership timeline', () => {
  it('answers by the latest change at or before t, whatever the arrival order', () => {
    const changes = [
      { ts: 100, op: 'add' as const, key: 'a' },
      { ts: 200, op: 'remove' as const, key: 'b' },
      { ts: 300, op: 'add' as const, key: 'c' },
    ];
    for (const order of [
      [0, 1, 2],
      [2, 1, 0],
      [1, 0, 2],
      [1, 2, 0],
    ]) {
      const m = new Memberships(new EntityCache());
      for (const i of order) m.apply(U, G, changes[i]!);
      expect([50, 100, 150, 200, 250, 300, 400].map((t) => m.isMember(U, G, t))).toEqual([
        false,
        true,
        true,
        false,
        false,
        true,
        true,
      ]);
    }
  });

  it('ignores duplicates and reports them', () => {
    const m = new Memberships(new EntityCache());
    expect(m.apply(U, G, { ts: 1, op: 'add', key: 'a' })).toBe(true);
    expect(m.apply(U, G, { ts: 1, op: 'add', key: 'a' })).toBe(false);
    expect(m.changes(U, G)).toHaveLength(1);
  });

  it('a removal at the same instant as an add wins', () => {
    const m = new Memberships(new EntityCache());
    m.apply(U, G, { ts: 5, op: 'remove', key: 'z' });
    m.apply(U, G, { ts: 5, op: 'add', key: 'a' });
    expect(m.isMember(U, G, 5)).toBe(false);
  });

  it('resolves membership OCIDs learned from add events and knows members at t', () => {
    const cache = new EntityCache();
    const m = new Memberships(cache);
    m.apply(U, G, { ts: 1, op: 'add', key: 'a', membershipId: 'ocid1.groupmembership.x' });
    m.apply('u2', G, { ts: 3, op: 'add', key: 'b' });
    expect(m.resolveId('ocid1.groupmembership.x')).toEqual({ user: U, group: G });
    expect([m.isMember(U, G, 2), m.isMember('u2', G, 2)]).toEqual([true, false]);
    expect([m.isMember(U, G, 3), m.isMember('u2', G, 3)]).toEqual([true, true]);
    // State survives a reload from the cache rows.
    const reloaded = new Memberships(cache);
    expect([reloaded.isMember(U, G, 3), reloaded.isMember('u2', G, 3)]).toEqual([true, true]);
  });
});
