// Whether an account can be logged in to without IAM, from its versions (shared/correlate/mappings.ts).
import { describe, expect, it } from 'vitest';
import { type AccountRow, Mappings } from '../../shared/correlate/mappings.js';
import { statementFacts } from '../../shared/correlate/sql-facts.js';
import { at, DB, db } from '../../shared/detect/timeline.js';
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

describe('account rows under routine changes of access', () => {
  const APP = { user: 'app', host: '%' };
  type Step = [op: 'password' | 'lock' | 'unlock' | 'drop', minute: number];
  /** `'password 3, drop 12'`: each change and its minute. */
  const stepsOf = (text: string): Step[] =>
    text.split(',').map((s) => {
      const [op, minute] = s.trim().split(' ');
      return [op as Step[0], Number(minute)];
    });
  const apply = (mappings: Mappings, [op, minute]: Step) =>
    mappings.apply(
      DB.id,
      op === 'drop'
        ? { op: 'drop', account: APP }
        : op === 'password'
          ? { op: 'alter', account: APP, password: true }
          : { op: 'alter', account: APP, locked: op === 'lock' },
      at(minute),
      `${op}-${minute}`,
    );
  const replay = (steps: readonly Step[], compactAt?: number) => {
    const mappings = new Mappings(new EntityCache());
    mappings.seed('config', [{ db: DB.id, ...APP, plugin: 'caching_sha2_password' }]);
    for (const step of steps) apply(mappings, step);
    if (compactAt !== undefined) mappings.compact(at(compactAt));
    const open = Array.from({ length: 40 }, (_, m) => mappings.directLoginAt(DB.id, APP, at(m))?.key ?? null);
    return { open, versions: mappings.rows()[0]!.versions.map((v) => v.key) };
  };

  it('keep one password alone per account until it is dropped, the earliest, in any arrival order', () => {
    const steps = stepsOf('password 3, password 6, password 9, drop 12, password 15, password 18');
    const inOrder = replay(steps);
    expect(inOrder.versions).toEqual(['config', 'password-3', 'drop-12', 'password-15']);
    // Open since the first password (the evidence), closed by the drop.
    expect(inOrder.open.slice(2, 13)).toEqual([null, ...Array(9).fill('password-3'), null]);
    for (const order of [
      [...steps].reverse(),
      [steps[2]!, steps[5]!, steps[0]!, steps[3]!, steps[4]!, steps[1]!],
    ])
      expect(replay(order)).toEqual(inOrder);
  });

  it('forget repeated lock states once compacted, and only those: every time reads as before', () => {
    const steps = stepsOf('lock 2, lock 4, unlock 6, unlock 8, lock 10, lock 30');
    const full = replay(steps);
    const compacted = replay(steps, 20);
    expect(compacted.open).toEqual(full.open);
    expect(compacted.versions).toEqual(['config', 'lock-2', 'unlock-6', 'lock-10', 'lock-30']);
  });
});

describe('RENAME USER in several parts', () => {
  it('applies each part after the one before: a swap through a third name leaves both accounts, swapped', () => {
    const sql = "RENAME USER 'a'@'%' TO 'swap'@'%', 'b'@'%' TO 'a'@'%', 'swap'@'%' TO 'b'@'%'";
    const parts = statementFacts(
      db.query({ at: at(1), conn: 9, account: 'admin', sqlCommand: 'rename_user', sql }),
    ).accounts!;
    expect(parts.map((c) => c.op === 'rename' && [c.account.user, c.to.user])).toEqual([
      ['a', 'swap'],
      ['b', 'a'],
      ['swap', 'b'],
    ]);
    const mappings = new Mappings(new EntityCache());
    mappings.seed('config', [
      { db: DB.id, user: 'a', host: '%', plugin: 'caching_sha2_password' },
      { db: DB.id, user: 'b', host: '%', plugin: 'mysql_no_login' },
    ]);
    // Applied twice: a redelivered statement changes nothing.
    for (let n = 0; n < 2; n++)
      for (const [i, change] of parts.entries()) mappings.apply(DB.id, change, at(1), 'rename', i);
    const pluginOf = (user: string) => mappings.versionAt(DB.id, { user, host: '%' }, at(2))?.plugin;
    expect(['a', 'b', 'swap'].map(pluginOf)).toEqual(['mysql_no_login', 'caching_sha2_password', undefined]);
    expect(mappings.rows().map((r) => [r.user, r.versions.length])).toEqual([
      ['a', 3],
      ['b', 3],
      ['swap', 2],
    ]);
  });
});
