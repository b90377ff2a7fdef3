// First-seen baselines: bounded, expiring, kept in the state store, and the same whatever the
// batching of the events that built them.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../schemas/config.js';
import type { CanonicalEvent } from '../../schemas/events.js';
import { Baselines } from '../../shared/detect/baselines.js';
import { baseConfig, DB, db, T0 } from '../../shared/detect/timeline.js';
import { EntityCache } from '../../shared/state/entity-cache.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { runs } from '../helpers/property.js';
import { runBatches } from '../helpers/run-timeline.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const opts = { learningPeriod: DAY, expireAfter: 5 * DAY, maxValues: 8 };

describe('baselines', () => {
  it('pruning forgets expired values and subjects without changing any later verdict', () => {
    const cache = new EntityCache();
    const baselines = new Baselines(cache);
    const a = baselines.open('r', 'person:a', opts);
    const b = baselines.open('r', 'person:b', opts);
    a.learn(['old'], T0);
    a.learn(['kept'], T0 + 3 * DAY);
    b.learn(['gone'], T0);
    const probe = T0 + 5 * DAY;
    const before = [a.knows('old', probe), a.knows('kept', probe), a.learning(probe), b.learning(probe)];
    cache.drainChanges();

    baselines.prune(probe);

    expect([a.knows('old', probe), a.knows('kept', probe), a.learning(probe), b.learning(probe)]).toEqual(
      before,
    );
    expect(before).toEqual([false, true, false, true]);
    expect(cache.size('baseline')).toBe(1);
    const changed = cache.drainChanges().map((c) => [c.key, c.body === null]);
    expect(changed).toEqual(
      expect.arrayContaining([
        ['r\u0000person:a', false],
        ['r\u0000person:b', true],
      ]),
    );
  });

  it('a row restored from the state store forgets its expired values at the next prune, as a kept one does', () => {
    // A pipeline re-opened at every invocation (a shared mysql:// store) learns into rows it restored:
    // their older values must still expire, or a person seen every invocation keeps them forever.
    const kept = new EntityCache();
    const keptBaselines = new Baselines(kept);
    const noLimit = { learningPeriod: DAY, expireAfter: 5 * DAY };
    keptBaselines.open('r', 'person:a', noLimit).learn(['old'], T0);
    keptBaselines.open('r', 'person:a', noLimit).learn(['kept'], T0 + 3 * DAY);
    const restored = new EntityCache();
    for (const [key, body] of kept.entries('baseline'))
      restored.load({ kind: 'baseline', key, body: structuredClone(body) });
    const restoredBaselines = new Baselines(restored);
    keptBaselines.open('r', 'person:a', noLimit).learn(['new'], T0 + 4 * DAY);
    restoredBaselines.open('r', 'person:a', noLimit).learn(['new'], T0 + 4 * DAY);

    const before = T0 + 5 * DAY + HOUR;
    keptBaselines.prune(before);
    restoredBaselines.prune(before);

    const values = (cache: EntityCache) =>
      Object.keys(cache.get<{ values: Record<string, unknown> }>('baseline', 'r\u0000person:a')!.values)
        .length;
    expect(values(kept)).toBe(2);
    expect(values(restored)).toBe(2);
  });

  it('unlearns only what a sighting alone taught, and forgets a subject it alone made', () => {
    const cache = new EntityCache();
    const baselines = new Baselines(cache);
    const a = baselines.open('r', 'person:a', opts);
    a.learn(['home'], T0);
    a.learn(['office'], T0 + DAY);
    a.learn(['office', 'away'], T0 + 2 * DAY);
    a.unlearn(['office', 'away'], T0 + 2 * DAY);
    const probe = T0 + 3 * DAY;
    expect(['home', 'office', 'away'].map((v) => a.knows(v, probe))).toEqual([true, true, false]);
    // Its last sighting stays the time of a value it kept.
    expect(cache.get<{ last: number }>('baseline', 'r\u0000person:a')!.last).toBe(T0 + 2 * DAY);
    a.learn(['x'], T0 + 4 * DAY);
    a.unlearn(['x'], T0 + 4 * DAY);
    expect(cache.get<{ last: number }>('baseline', 'r\u0000person:a')!.last).toBe(T0 + 2 * DAY);
    const b = baselines.open('r', 'person:b', opts);
    b.learn(['x'], T0 + DAY);
    b.unlearn(['x'], T0 + DAY);
    expect(cache.get('baseline', 'r\u0000person:b')).toBeUndefined();
    expect(baselines.open('r', 'person:b', opts).learning(T0 + 3 * DAY)).toBe(true);
  });

  it('keeps a value two sessions showed at one instant when one of them is taken back', () => {
    const baselines = new Baselines(new EntityCache());
    const a = baselines.open('r', 'account:app', opts);
    a.learn(['home'], T0, 's0');
    a.learn(['net'], T0 + DAY, 's1');
    // The same session judged again adds no sighting.
    a.learn(['net'], T0 + DAY, 's1');
    a.learn(['net'], T0 + DAY, 's2');
    expect(a.sharedAt('net', T0 + DAY, 's1')).toBe(true);
    a.unlearn(['net'], T0 + DAY, 's1');
    expect(a.knows('net', T0 + 2 * DAY)).toBe(true);
    const b = baselines.open('r', 'account:other', opts);
    b.learn(['home'], T0, 's0');
    b.learn(['net'], T0 + DAY, 's1');
    b.learn(['net'], T0 + DAY, 's1');
    expect(b.sharedAt('net', T0 + DAY, 's1')).toBe(false);
    b.unlearn(['net'], T0 + DAY, 's1');
    expect(b.knows('net', T0 + 2 * DAY)).toBe(false);
  });

  it('keeps at most maxValues values per subject, forgetting the least recently seen', () => {
    const cache = new EntityCache();
    const baseline = new Baselines(cache).open('r', 'person:a', { ...opts, maxValues: 3 });
    for (const [i, v] of ['a', 'b', 'c'].entries()) baseline.learn([v], T0 + i * HOUR);
    baseline.learn(['a'], T0 + 4 * HOUR);
    baseline.learn(['d'], T0 + 5 * HOUR);
    const at = T0 + 6 * HOUR;
    expect(['a', 'b', 'c', 'd'].map((v) => baseline.knows(v, at))).toEqual([true, false, true, true]);
  });

  it('bounds the values learned in one call as if they came one by one', () => {
    const values = ['a', 'b', 'c', 'd', 'e', 'f'];
    const together = new Baselines(new EntityCache()).open('r', 'person:a', { ...opts, maxValues: 3 });
    const apart = new Baselines(new EntityCache()).open('r', 'person:a', { ...opts, maxValues: 3 });
    together.learn(['x'], T0);
    apart.learn(['x'], T0);
    together.learn(values, T0 + HOUR);
    for (const v of values) apart.learn([v], T0 + HOUR);
    const at = T0 + 2 * HOUR;
    const known = (b: typeof together) => ['x', ...values].filter((v) => b.knows(v, at));
    expect(known(together)).toEqual(known(apart));
    expect(known(together)).toHaveLength(3);
    expect(known(together)).not.toContain('x');
  });

  it('keeps maxValues when a value that expired comes back beside new ones', () => {
    const baseline = new Baselines(new EntityCache()).open('r', 'person:a', { ...opts, maxValues: 4 });
    baseline.learn(['a'], T0);
    baseline.learn(['b', 'c'], T0 + 4 * DAY);
    // 'a' expired (five days), the row did not: 'a' comes back between two new values, and the
    // second new value goes beyond four, so one of b and c is forgotten.
    baseline.learn(['x', 'a', 'y'], T0 + 6 * DAY);
    const at = T0 + 6 * DAY + HOUR;
    const known = ['a', 'b', 'c', 'x', 'y'].filter((v) => baseline.knows(v, at));
    expect(known).toHaveLength(4);
    expect(known).toEqual(expect.arrayContaining(['a', 'x', 'y']));
  });
});

/** Three DB systems, a short learning period and expiry, so the timeline learns, detects and prunes. */
function config(): Partial<ConfigInput> {
  const [first] = baseConfig().dbSystems ?? [];
  const baseline = { learningPeriod: 'P2D', expireAfter: 'P5D' };
  return {
    dbSystems: [1, 2, 3].map((n) => ({ ...first!, id: `${DB.id.slice(0, -1)}${n}`, name: `prod-${n}` })),
    rules: {
      'access.new-source': baseline,
      'access.new-database': baseline,
      'access.unusual-hour': baseline,
    },
  };
}

const PEOPLE = [
  { account: 'dba_proxy', user: 'alice', proxy: true },
  { account: 'dev_proxy', user: 'bob', proxy: true },
  { account: 'dev_proxy', user: 'dave', proxy: true },
  { account: 'carol', user: 'carol', proxy: false },
  { account: 'app', user: 'app', proxy: false },
];

const sessionArb = fc.record({
  minute: fc.integer({ min: 0, max: 20 * 24 * 60 }),
  /** Minutes late on arrival, within the lateness (PT20M). */
  delay: fc.integer({ min: 0, max: 19 }),
  person: fc.integer({ min: 0, max: PEOPLE.length - 1 }),
  net: fc.integer({ min: 0, max: 5 }),
  db: fc.integer({ min: 1, max: 3 }),
});

async function baselinesAfter(batches: CanonicalEvent[][]) {
  const store = SqliteStore.open(':memory:');
  const { alerts } = await runBatches(batches, { config: config(), store });
  const rows = (await store.loadEntities())
    .filter((r) => r.kind === 'baseline')
    .sort((a, b) => (a.key < b.key ? -1 : 1))
    .map((r) => [r.key, r.body]);
  return { rows, alerts: alerts.map((a) => `${a.rule} ${a.id}`).sort() };
}

describe('baselines under any batching and arrival order', () => {
  it('hold the same values and raise the same alerts whatever the batches and the order within the lateness', async () => {
    let detecting = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(sessionArb, { minLength: 20, maxLength: 60 }),
        fc.array(fc.integer({ min: 1, max: 59 }), { maxLength: 8 }),
        async (sessions, cuts) => {
          const timed = sessions
            .sort((a, b) => a.minute - b.minute)
            .map((s, i) => {
              const p = PEOPLE[s.person]!;
              const event = db.connect({
                at: T0 + s.minute * 60_000,
                conn: i + 1,
                account: p.account,
                user: p.user,
                proxy: p.proxy,
                ip: `10.${s.net}.${s.net * 7}.${1 + (i % 200)}`,
                db: `${DB.id.slice(0, -1)}${s.db}`,
              });
              return { event, arrives: s.minute + s.delay };
            });
          const whole = await baselinesAfter([timed.map((t) => t.event)]);
          expect(whole.rows.length).toBeGreaterThan(0);
          if (whole.alerts.some((a) => /^access\.(new-|unusual)/.test(a))) detecting++;
          const bounds = [...new Set([0, ...cuts.filter((c) => c < timed.length), timed.length])].sort(
            (a, b) => a - b,
          );
          const arrivals = [...timed].sort((a, b) => a.arrives - b.arrives).map((t) => t.event);
          const batches = bounds.slice(1).map((end, i) => arrivals.slice(bounds[i], end));
          expect(await baselinesAfter(batches)).toEqual(whole);
        },
      ),
      runs(30),
    );
    // The timelines are long enough for the baselines to detect, not only learn.
    expect(detecting).toBeGreaterThan(10);
  });
});
