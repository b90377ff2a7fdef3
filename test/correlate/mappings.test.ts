// Whether an account can be logged in to without IAM, from its versions (shared/correlate/mappings.ts).
import { describe, expect, it } from 'vitest';
import { type AccountRow, Mappings } from '../../shared/correlate/mappings.js';
import { at, DB } from '../../shared/detect/timeline.js';
import { EntityCache } from '../../shared/state/entity-cache.js';

const DEV_PROXY = { user: 'dev_proxy', host: '%' };

describe('logins without IAM from account versions', () => {
  it('a row stored with audited openings and closings apart reads them as lock states, once', () => {
    const cache = new EntityCache();
    const key = `${DB.id}\u0000dev_proxy@%`;
    const legacy: AccountRow = {
      db: DB.id,
      ...DEV_PROXY,
      versions: [{ ts: at(1), key: 'create', plugin: 'caching_sha2_password' }],
      direct: [
        { ts: at(1), key: 'create', open: true },
        { ts: at(5), key: 'lock', open: false },
        { ts: at(9), key: 'unlock', open: true },
      ],
    };
    cache.load({ kind: 'account', key, body: legacy });
    const mappings = new Mappings(cache);
    const open = (minute: number) => mappings.directLoginAt(DB.id, DEV_PROXY, at(minute))?.key;
    expect([0, 1, 4, 5, 8, 9].map(open)).toEqual([
      undefined,
      'create',
      'create',
      undefined,
      undefined,
      'unlock',
    ]);
    const stored = cache.drainChanges();
    expect(stored.map((c) => c.key)).toEqual([key]);
    expect((stored[0]!.body as AccountRow).direct).toBeUndefined();
    expect(new Mappings(cache).directLoginAt(DB.id, DEV_PROXY, at(9))).toEqual({ ts: at(9), key: 'unlock' });
    expect(cache.drainChanges()).toEqual([]);
  });

  it('a password alone opens an account whose lock state is not known, not one known locked', () => {
    const mappings = new Mappings(new EntityCache());
    const password = { op: 'alter', account: DEV_PROXY, password: true } as const;
    mappings.apply(DB.id, password, at(1), 'password');
    expect(mappings.directLoginAt(DB.id, DEV_PROXY, at(1))?.key).toBe('password');
    mappings.apply(DB.id, { op: 'alter', account: DEV_PROXY, locked: true }, at(2), 'lock');
    mappings.apply(DB.id, password, at(3), 'password again');
    expect(mappings.directLoginAt(DB.id, DEV_PROXY, at(3))).toBeUndefined();
    // A change of access alone keeps the definition in force.
    expect(mappings.versionAt(DB.id, DEV_PROXY, at(3))).toBeUndefined();
  });
});
