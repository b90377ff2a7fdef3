// Whether an account can be logged in to without IAM, from its versions (shared/correlate/mappings.ts).
import { describe, expect, it } from 'vitest';
import {
  type AccountRow,
  type AccountSeed,
  Mappings,
  type MappingTarget,
  reaches,
  SNAPSHOT_SEED,
} from '../../shared/correlate/mappings.js';
import { type AccountChange, statementFacts } from '../../shared/correlate/sql-facts.js';
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

describe('the indexes of the account models keep in step with every change', () => {
  const OCI = 'authentication_oci';
  const ANON = { user: '', host: '%' };
  const USERS = ['dev_proxy', 'dba_proxy', 'app'];
  const mapping = (groups: Record<string, string>) => JSON.stringify({ tenancy: 't', group_mapping: groups });
  const account = (user: string, host: string, plugin: string, more: Partial<AccountSeed> = {}) => ({
    db: DB.id,
    user,
    host,
    plugin,
    ...more,
  });

  /**
   * What the models answer at each minute, against what they answer without an index: the open
   * accounts a target names from a scan of every row, the group mappings from models opened afresh
   * on the same rows for each time. Read at the present first (which keeps the entries in force
   * from then on), then at earlier times.
   */
  function expectInStep(cache: EntityCache, mappings: Mappings): void {
    for (const ts of [90, 0, 5, 15, 22, 35, 42, 48, 55].map(at)) {
      const fresh = new Mappings(cache);
      expect(mappings.groupTargets(DB.id, ts)).toEqual(fresh.groupTargets(DB.id, ts));
      for (const user of USERS) {
        expect(mappings.proxiedTarget(DB.id, user, ts)).toEqual(fresh.proxiedTarget(DB.id, user, ts));
        const targets: MappingTarget[] = [{ user }, { user, host: '%' }, { user, host: '10.0.0.%' }];
        for (const target of targets) {
          const scan = mappings.rows().flatMap((row) => {
            const since = row.db === DB.id && reaches(target, row) && mappings.directLoginAt(DB.id, row, ts);
            return since ? [{ account: { user: row.user, host: row.host }, since }] : [];
          });
          expect(mappings.openAccountsOf(DB.id, target, ts)).toEqual(scan);
        }
      }
    }
  }

  it('through a snapshot, renames, a drop and re-create, before and after the times already read', () => {
    const cache = new EntityCache();
    const mappings = new Mappings(cache);
    const apply = (minute: number, key: string, change: AccountChange) =>
      mappings.apply(DB.id, change, at(minute), key);
    mappings.seed('config', [
      account('', '%', OCI, { authenticationString: mapping({ dev: 'dev_proxy', dba: 'dba_proxy@%' }) }),
      account('dev_proxy', '%', 'mysql_no_login'),
      account('dba_proxy', '%', 'mysql_no_login'),
      account('app', '%', 'caching_sha2_password'),
    ]);
    expectInStep(cache, mappings);
    // A snapshot remaps the group, lists an account no statement made, and reads app unlocked.
    mappings.seed(
      `${SNAPSHOT_SEED}1`,
      [
        account('', '%', OCI, { authenticationString: mapping({ dev: 'app', dba: 'dba_proxy' }) }),
        account('dev_proxy', '10.0.0.%', 'caching_sha2_password', { locked: false }),
        account('app', '%', 'caching_sha2_password', { locked: false }),
      ],
      at(10),
    );
    expect(mappings.groupTargets(DB.id, at(90)).map((t) => t.target.user)).toEqual(['app', 'dba_proxy']);
    expectInStep(cache, mappings);
    // Late, before the times read: app renamed onto a host of dba_proxy, the mapping onto another host.
    const renames = [
      { op: 'rename', account: { user: 'app', host: '%' }, to: { user: 'dba_proxy', host: '10.0.0.%' } },
      { op: 'rename', account: ANON, to: { user: '', host: '10.%' } },
    ] as const;
    for (const [i, change] of renames.entries()) mappings.apply(DB.id, change, at(20), 'rename', i);
    expect(mappings.openAccountsOf(DB.id, { user: 'dba_proxy' }, at(90))).toHaveLength(1);
    expectInStep(cache, mappings);
    // The mapping dropped and made again; dev_proxy@10.0.0.% dropped and made again with a password.
    apply(30, 'drop mapping', { op: 'drop', account: { user: '', host: '10.%' } });
    const remapped = mapping({ dev: 'dev_proxy@10.0.0.%' });
    apply(40, 'create mapping', { op: 'create', account: ANON, plugin: OCI, authenticationString: remapped });
    const devHost = { user: 'dev_proxy', host: '10.0.0.%' };
    apply(45, 'drop dev', { op: 'drop', account: devHost });
    expectInStep(cache, mappings);
    apply(50, 'create dev', {
      op: 'create',
      account: devHost,
      plugin: 'caching_sha2_password',
      password: true,
    });
    expect(mappings.openAccountsOf(DB.id, { user: 'dev_proxy' }, at(90))).toEqual([
      { account: devHost, since: { ts: at(50), key: 'create dev' } },
    ]);
    expectInStep(cache, mappings);
    // After the times read: the mapping changed at the present.
    const later = mapping({ dba: 'dba_proxy@10.0.0.%' });
    apply(60, 'remap', { op: 'alter', account: ANON, plugin: OCI, authenticationString: later });
    expect(mappings.groupTargets(DB.id, at(90))).toEqual([
      { groupId: 'dba', target: { user: 'dba_proxy', host: '10.0.0.%' } },
    ]);
    expectInStep(cache, mappings);
  });

  it('through the merge at open of rows stored under a host in another case, in the order the rows are kept', () => {
    const cache = new EntityCache();
    const row = (user: string, host: string, versions: AccountRow['versions']): void =>
      cache.load({
        kind: 'account',
        key: `${DB.id}\u0000${user}@${host}`,
        body: { db: DB.id, user, host, versions },
      });
    const created = (minute: number) => ({
      ts: at(minute),
      key: `create-${minute}`,
      plugin: 'caching_sha2_password',
    });
    row('', '%', [{ ts: at(0), key: 'config', plugin: OCI, authenticationString: mapping({ dev: 'app' }) }]);
    // Two rows of app@localhost, neither under its key: the merge makes its row, after the others.
    row('app', 'LocalHost', [{ ...created(1), locked: true }]);
    row('app', '10.0.0.1', [{ ...created(2), locked: false }]);
    row('app', 'LOCALHOST', [{ ts: at(3), key: 'unlock', locked: false, accessOnly: true }]);
    const mappings = new Mappings(cache);
    expect(mappings.openAccountsOf(DB.id, { user: 'app' }, at(5))).toEqual([
      { account: { user: 'app', host: '10.0.0.1' }, since: { ts: at(2), key: 'create-2' } },
      { account: { user: 'app', host: 'localhost' }, since: { ts: at(3), key: 'unlock' } },
    ]);
    expectInStep(cache, mappings);
    mappings.apply(
      DB.id,
      { op: 'alter', account: { user: 'app', host: 'LOCALHOST' }, locked: true },
      at(20),
      'lock',
    );
    mappings.apply(
      DB.id,
      { op: 'create', account: { user: 'app', host: 'DB1' }, password: true },
      at(25),
      'new',
    );
    expect(mappings.openAccountsOf(DB.id, { user: 'app' }, at(30)).map((a) => a.account.host)).toEqual([
      '10.0.0.1',
      'db1',
    ]);
    expectInStep(cache, mappings);
  });
});
