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
