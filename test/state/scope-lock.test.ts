// StateStore.lockScope, one contract for both adapters: exclusive per scope, waits in turn, times
// out with STORE_FAILED "scope is busy", never blocks another scope, idempotent release, freed on
// close. MySQL only: long scope names, separate databases, a lock whose connection died is
// detected before the commit, and a lock held longer than the server's wait_timeout is kept.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditError } from '../../shared/errors.js';
import { MySqlStore, scopeLockName } from '../../shared/state/mysql-store.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import type { ScopeLock } from '../../shared/state/state-store.js';
import { describeMySql, type MySqlTestServer } from '../helpers/mysql-server.js';
import {
  type Adapter,
  alert,
  type Backing,
  batch,
  mysqlAdapter,
  sqliteAdapter,
  sqliteThreadAdapter,
} from './store-fixtures.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function busyError(promise: Promise<unknown>): Promise<AuditError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(AuditError);
    return error as AuditError;
  }
  throw new Error('expected the lock to be refused');
}

/** Resolves with the lock, and records when it was granted. */
function pending(lock: Promise<ScopeLock>): { done: () => boolean; lock: Promise<ScopeLock> } {
  let granted = false;
  const tracked = lock.then((l) => {
    granted = true;
    return l;
  });
  tracked.catch(() => {});
  return { done: () => granted, lock: tracked };
}

function scopeLock(adapter: Adapter) {
  let backing: Backing;
  beforeEach(async () => {
    backing = await adapter.create();
  });
  afterEach(async () => {
    await backing.dispose();
  });

  it('a second lock on the scope waits until the first is released', async () => {
    const a = await backing.open('fn');
    const b = await backing.open('fn');
    const first = await a.lockScope({ timeoutMs: 1000 });
    const second = pending(b.lockScope({ timeoutMs: 10_000 }));
    await sleep(300);
    expect(second.done()).toBe(false);
    await first.release();
    const lock = await second.lock;
    expect(second.done()).toBe(true);
    // And the first instance now waits for the second.
    await expect(a.lockScope({ timeoutMs: 0 })).rejects.toThrow('scope is busy');
    await lock.release();
    await (await a.lockScope({ timeoutMs: 0 })).release();
  });

  it('waiters are served one at a time', async () => {
    const stores = await Promise.all([1, 2, 3].map(() => backing.open('fn')));
    const order: number[] = [];
    let inside = 0;
    await Promise.all(
      stores.map(async (store, i) => {
        const lock = await store.lockScope({ timeoutMs: 10_000 });
        inside++;
        expect(inside).toBe(1);
        order.push(i);
        await sleep(50);
        inside--;
        await lock.release();
      }),
    );
    expect(order.sort()).toEqual([0, 1, 2]);
  });

  it('gives up after timeoutMs with STORE_FAILED "scope is busy" naming the scope', async () => {
    const a = await backing.open('fn');
    const b = await backing.open('fn');
    const lock = await a.lockScope({ timeoutMs: 0 });
    const started = Date.now();
    const error = await busyError(b.lockScope({ timeoutMs: 400 }));
    const waited = Date.now() - started;
    expect(error.code).toBe('STORE_FAILED');
    expect(error.message).toBe('scope is busy');
    expect(error.details).toMatchObject({ scope: 'fn' });
    expect(waited).toBeGreaterThanOrEqual(350);
    expect(waited).toBeLessThan(3000);
    // timeoutMs 0 tries once.
    expect((await busyError(b.lockScope({ timeoutMs: 0 }))).code).toBe('STORE_FAILED');
    // The holder is unaffected: it can still commit.
    await a.commit(batch({ alerts: [alert('held', '2026-01-01T00:00:00.000Z')] }));
    await lock.release();
    await (await b.lockScope({ timeoutMs: 0 })).release();
  });

  it('different scopes do not block each other', async () => {
    const a = await backing.open('partition-0');
    const b = await backing.open('partition-1');
    const c = await backing.open();
    const locks = [
      await a.lockScope({ timeoutMs: 0 }),
      await b.lockScope({ timeoutMs: 0 }),
      await c.lockScope({ timeoutMs: 0 }),
    ];
    for (const lock of locks) await lock.release();
  });

  it('release is idempotent: a second release does not free the next holder', async () => {
    const a = await backing.open('fn');
    const b = await backing.open('fn');
    const first = await a.lockScope({ timeoutMs: 0 });
    await first.release();
    await first.release();
    const second = await b.lockScope({ timeoutMs: 0 });
    await first.release();
    await Promise.all([first.release(), first.release()]);
    await expect(a.lockScope({ timeoutMs: 0 })).rejects.toThrow('scope is busy');
    await second.release();
    await second.release();
    await (await a.lockScope({ timeoutMs: 0 })).release();
  });

  it('closing the store releases its lock; releasing after the close is harmless', async () => {
    const a = await backing.open('fn');
    const b = await backing.open('fn');
    const lock = await a.lockScope({ timeoutMs: 0 });
    const waiting = b.lockScope({ timeoutMs: 10_000 });
    await a.close();
    await (await waiting).release();
    await lock.release();
  });

  it('a commit under the lock works as without it', async () => {
    const a = await backing.open('fn');
    const lock = await a.lockScope({ timeoutMs: 0 });
    const { newAlerts } = await a.commit(batch({ alerts: [alert('a1', '2026-01-01T00:00:00.000Z')] }));
    expect([...newAlerts]).toEqual(['a1']);
    await lock.release();
    const again = await a.commit(batch({ alerts: [alert('a2', '2026-01-01T00:00:01.000Z')] }));
    expect([...again.newAlerts]).toEqual(['a2']);
  });
}

describe('scope lock: SqliteStore (commit thread)', () => scopeLock(sqliteThreadAdapter));
describe('scope lock: SqliteStore', () => {
  scopeLock(sqliteAdapter);

  it('in-memory stores are private, and so are their locks', async () => {
    const a = SqliteStore.open(':memory:', { scope: 'fn' });
    const b = SqliteStore.open(':memory:', { scope: 'fn' });
    const locks = [await a.lockScope({ timeoutMs: 0 }), await b.lockScope({ timeoutMs: 0 })];
    for (const lock of locks) await lock.release();
    await a.close();
    await b.close();
  });
});

describeMySql('scope lock: MySqlStore', (server: MySqlTestServer) => {
  scopeLock(mysqlAdapter(server));

  it('names locks by database and scope, hashing names over 64 characters', () => {
    expect(scopeLockName('audit', 'function')).toBe('audit:hwaudit:function');
    const long = scopeLockName('audit', `stream:${'x'.repeat(100)}:0`);
    expect(long).toMatch(/^hwaudit:[0-9a-f]{56}$/);
    expect(scopeLockName('audit', `stream:${'x'.repeat(100)}:1`)).not.toBe(long);
    // Characters over one byte count by bytes.
    expect(Buffer.byteLength(scopeLockName('audit', 'é'.repeat(30)))).toBeLessThanOrEqual(64);
  });

  it('long and non-ASCII scopes lock, and stay apart', async () => {
    const adapter = mysqlAdapter(server);
    const backing = await adapter.createDatabase();
    try {
      const scopes = [`stream:${'p'.repeat(300)}:0`, `stream:${'p'.repeat(300)}:1`, "ключ-🔑 o'brien\\"];
      const stores = await Promise.all(scopes.map((s) => backing.open(s)));
      const locks = await Promise.all(stores.map((s) => s.lockScope({ timeoutMs: 0 })));
      const other = await backing.open(scopes[0]);
      await expect(other.lockScope({ timeoutMs: 0 })).rejects.toThrow('scope is busy');
      for (const lock of locks) await lock.release();
      await (await other.lockScope({ timeoutMs: 0 })).release();
    } finally {
      await backing.dispose();
    }
  });

  it('the same scope in two databases is two locks', async () => {
    const one = await mysqlAdapter(server).createDatabase();
    const two = await mysqlAdapter(server).createDatabase();
    try {
      const a = await (await one.open('fn')).lockScope({ timeoutMs: 0 });
      const b = await (await two.open('fn')).lockScope({ timeoutMs: 0 });
      await a.release();
      await b.release();
    } finally {
      await one.dispose();
      await two.dispose();
    }
  });

  it('a lock whose connection died fails the next commit; the scope is free for others', async () => {
    const backing = await mysqlAdapter(server).createDatabase();
    const raw = await backing.raw();
    try {
      const a = (await backing.open('fn')) as MySqlStore;
      const lock = await a.lockScope({ timeoutMs: 0 });
      const name = scopeLockName(backing.name, 'fn');
      const [rows] = await raw.query('SELECT IS_USED_LOCK(?) AS owner', [name]);
      const owner = Number((rows as { owner: number }[])[0]?.owner);
      expect(owner).toBeGreaterThan(0);
      await raw.query(`KILL ${owner}`);
      await sleep(100);
      const error = await busyError(a.commit(batch({ alerts: [alert('lost', '2026-01-01T00:00:00.000Z')] })));
      expect(error.code).toBe('STORE_FAILED');
      expect(error.message).toMatch(/scope lock was lost/);
      // Nothing of the refused commit was stored.
      const [alerts] = await raw.query('SELECT COUNT(*) AS n FROM alerts');
      expect(Number((alerts as { n: number }[])[0]?.n)).toBe(0);
      const b = await backing.open('fn');
      const taken = await b.lockScope({ timeoutMs: 0 });
      await lock.release();
      // A's release after the loss did not free B's lock.
      await expect(a.lockScope({ timeoutMs: 0 })).rejects.toThrow('scope is busy');
      await taken.release();
      // Once released, a commit without a lock goes through again.
      await a.commit(batch({ alerts: [alert('later', '2026-01-01T00:00:01.000Z')] }));
    } finally {
      await raw.end();
      await backing.dispose();
    }
  });

  it('a lock held longer than the idle timeout (wait_timeout) is kept: the next commit succeeds', async () => {
    const backing = await mysqlAdapter(server).createDatabase();
    const user = await backing.user('ALL PRIVILEGES');
    const raw = await backing.raw();
    const [saved] = (await raw.query('SELECT @@GLOBAL.init_connect AS v'))[0] as { v: string }[];
    try {
      // The server ends this user's connections after one idle second; other users keep theirs.
      await raw.query('SET GLOBAL init_connect = ?', [
        `SET SESSION wait_timeout = IF(SUBSTRING_INDEX(USER(), '@', 1) = '${user.name}', 1, @@SESSION.wait_timeout)`,
      ]);
      const a = await MySqlStore.open(
        { ...backing.connection, user: user.name, password: user.password },
        { scope: 'fn' },
      );
      try {
        const lock = await a.lockScope({ timeoutMs: 0 });
        await a.commit(batch({ seen: [{ key: 'k1', ts: 1 }] }));
        await sleep(2500);
        await a.commit(batch({ seen: [{ key: 'k2', ts: 2 }] }));
        await expect((await backing.open('fn')).lockScope({ timeoutMs: 0 })).rejects.toThrow('scope is busy');
        await lock.release();
      } finally {
        await a.close();
      }
    } finally {
      await raw.query('SET GLOBAL init_connect = ?', [saved?.v ?? '']);
      await raw.end();
      await backing.dispose();
    }
  });

  it('detects a lock taken over by another connection (IS_USED_LOCK) before the commit', async () => {
    const backing = await mysqlAdapter(server).createDatabase();
    const raw = await backing.raw();
    try {
      const a = await backing.open('fn');
      const lock = await a.lockScope({ timeoutMs: 0 });
      const name = scopeLockName(backing.name, 'fn');
      const [rows] = await raw.query('SELECT IS_USED_LOCK(?) AS owner', [name]);
      const owner = Number((rows as { owner: number }[])[0]?.owner);
      // The server ends the holder's session without the client noticing yet, and another takes it.
      await raw.query(`KILL ${owner}`);
      await raw.query('SELECT GET_LOCK(?, 5)', [name]);
      await expect(a.commit(batch({ alerts: [alert('x', '2026-01-01T00:00:00.000Z')] }))).rejects.toThrow(
        /scope lock was lost/,
      );
      await raw.query('SELECT RELEASE_LOCK(?)', [name]);
      await lock.release();
    } finally {
      await raw.end();
      await backing.dispose();
    }
  });
});
