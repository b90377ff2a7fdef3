import { describe, expect, it } from 'vitest';
import { SignOns } from '../../shared/correlate/signons.js';
import { EntityCache } from '../../shared/state/entity-cache.js';

const MIN = 60_000;
const WINDOW = 60 * MIN;

describe('SignOns.usersFrom', () => {
  it('gives each user with a successful sign-on from the IP in (ts - window, ts] once', () => {
    const s = new SignOns(new EntityCache());
    s.add('u1', { ts: 10 * MIN, key: 'a', success: true, ip: '10.0.0.1' });
    s.add('u1', { ts: 20 * MIN, key: 'b', success: true, ip: '10.0.0.1' });
    s.add('u2', { ts: 30 * MIN, key: 'c', success: false, ip: '10.0.0.1' });
    s.add('u3', { ts: 30 * MIN, key: 'd', success: true });
    s.add('u4', { ts: 30 * MIN, key: 'e', success: true, ip: '10.0.0.2' });
    s.add('u5', { ts: 70 * MIN, key: 'f', success: true, ip: '10.0.0.1' });
    expect([...s.usersFrom('10.0.0.1', 69 * MIN, WINDOW)]).toEqual(['u1']);
    // The window is open at its start: a sign-on exactly one window old no longer counts.
    expect([...s.usersFrom('10.0.0.1', 70 * MIN, WINDOW)]).toEqual(['u1', 'u5']);
    expect([...s.usersFrom('10.0.0.1', 80 * MIN, WINDOW)]).toEqual(['u5']);
    expect([...s.usersFrom('10.0.0.9', 30 * MIN, WINDOW)]).toEqual([]);
  });

  it('forgets what prune drops, and is rebuilt from the cache', () => {
    const cache = new EntityCache();
    const s = new SignOns(cache);
    s.add('u1', { ts: 10 * MIN, key: 'a', success: true, ip: '10.0.0.1' });
    s.add('u2', { ts: 40 * MIN, key: 'b', success: true, ip: '10.0.0.1' });
    const reloaded = new SignOns(cache);
    expect([...reloaded.usersFrom('10.0.0.1', 45 * MIN, WINDOW)]).toEqual(['u1', 'u2']);
    s.prune(20 * MIN);
    expect([...s.usersFrom('10.0.0.1', 45 * MIN, WINDOW)]).toEqual(['u2']);
    expect(s.latestBefore('u1', 45 * MIN, WINDOW, '10.0.0.1')).toBeUndefined();
  });
});

describe('SignOns rows', () => {
  const DAY = 24 * 60 * MIN;

  it('keeps a row per user and day, so that a sign-on rewrites its day alone; a month reads back whole', () => {
    const cache = new EntityCache();
    const s = new SignOns(cache);
    for (let d = 0; d < 30; d++)
      s.add('u1', { ts: d * DAY + 9 * 60 * MIN, key: `k${d}`, success: true, ip: '10.0.0.1' });
    cache.drainChanges();
    s.add('u1', { ts: 29 * DAY + 10 * 60 * MIN, key: 'late', success: true, ip: '10.0.0.1' });
    expect(cache.drainChanges()).toEqual([
      {
        kind: 'signon',
        key: 'u1\u000029',
        body: [expect.objectContaining({ key: 'k29' }), expect.objectContaining({ key: 'late' })],
      },
    ]);
    const reloaded = new SignOns(cache);
    expect(reloaded.latestBefore('u1', 3 * DAY + 9 * 60 * MIN + MIN, WINDOW, '10.0.0.1')?.key).toBe('k3');
    expect([...reloaded.usersFrom('10.0.0.1', 3 * DAY + 9 * 60 * MIN + MIN, WINDOW)]).toEqual(['u1']);
  });

  it('splits a row a user kept whole (a state written before) into days, and drops it', () => {
    const cache = new EntityCache();
    const list = [
      { ts: 1 * DAY + MIN, key: 'a', success: true, ip: '10.0.0.1' },
      { ts: 2 * DAY + MIN, key: 'b', success: true, ip: '10.0.0.1' },
    ];
    cache.load({ kind: 'signon', key: 'u1', body: list });
    const s = new SignOns(cache);
    expect(cache.drainChanges().sort((x, y) => (x.key < y.key ? -1 : 1))).toEqual([
      { kind: 'signon', key: 'u1', body: null },
      { kind: 'signon', key: 'u1\u00001', body: [list[0]] },
      { kind: 'signon', key: 'u1\u00002', body: [list[1]] },
    ]);
    expect(s.latestBefore('u1', 2 * DAY + 2 * MIN, WINDOW, undefined)?.key).toBe('b');
  });

  it('in whatever order sign-ons of one instant come, the same one is the latest', () => {
    const a = { ts: 5 * MIN, key: 'a', success: true, ip: '10.0.0.1' };
    const b = { ts: 5 * MIN, key: 'b', success: true, ip: '10.0.0.1' };
    const first = new SignOns(new EntityCache());
    first.add('u1', a);
    first.add('u1', b);
    const second = new SignOns(new EntityCache());
    second.add('u1', b);
    second.add('u1', a);
    expect(first.latestBefore('u1', 6 * MIN, WINDOW, undefined)?.key).toBe('b');
    expect(second.latestBefore('u1', 6 * MIN, WINDOW, undefined)?.key).toBe('b');
  });
});
