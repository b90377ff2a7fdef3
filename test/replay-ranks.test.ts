// The merge ranks the DB systems it meets in ties, so that it compares two numbers where
// compareEvents compares two OCIDs: the ranks must order them as compareDbSystems does, in
// whatever order they are met.
import { describe, expect, it } from 'vitest';
import { compareDbSystems } from '../schemas/events.js';
import { DbRanks } from '../shared/replay.js';

const prefix = 'ocid1.mysqldbsystem.oc1.eu-frankfurt-1.aaaaaaaa';
const ids = ['b', 'd', 'a', 'c'].map((n) => `${prefix}${n}`);

/** Every order of `items`. */
function orders<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) =>
    orders([...items.slice(0, i), ...items.slice(i + 1)]).map((o) => [item, ...o]),
  );
}

describe('DbRanks', () => {
  it('ranks DB systems as compareDbSystems orders them, in every order they are met', () => {
    for (const order of orders(ids)) {
      const ranks = new DbRanks();
      const met = order.map((id) => ranks.of(id));
      for (const a of met)
        for (const b of met) expect(Math.sign(a.rank - b.rank)).toBe(compareDbSystems(a.id, b.id));
    }
  });

  it('gives a DB system met again the same rank, kept up to date as others are met', () => {
    const ranks = new DbRanks();
    const b = ranks.of(ids[0]!);
    expect(ranks.of(`${prefix}b`)).toBe(b);
    expect(b.rank).toBe(0);
    ranks.of(`${prefix}a`);
    expect(b.rank).toBe(1);
  });
});
