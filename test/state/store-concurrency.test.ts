// Several pipeline instances sharing one store: one per DB system (each with its own scope), all
// receiving every IAM event, give the same alerts and ledger as one instance and deliver each alert
// once. On MySQL, lock contention (deadlocks, lock wait timeouts) is retried, not surfaced.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../schemas/config.js';
import { type CanonicalEvent, compareEvents } from '../../schemas/events.js';
import { at, baseConfig, db } from '../../shared/detect/timeline.js';
import { AuditError } from '../../shared/errors.js';
import { MySqlStore } from '../../shared/state/mysql-store.js';
import { chunks } from '../../shared/state/state-store.js';
import { collect } from '../helpers/collect.js';
import { describeMySql, type MySqlTestServer } from '../helpers/mysql-server.js';
import { incidentTimeline } from '../scenarios/scenario-fleet.js';
import {
  type Adapter,
  alert,
  type Backing,
  batch,
  mysqlAdapter,
  outcome,
  RecordingSink,
  runPipeline,
  seenAt,
  session,
  sqliteAdapter,
  sqliteThreadAdapter,
} from './store-fixtures.js';

const PROD2 = 'ocid1.mysqldbsystem.oc1..prod2';

function twoSystemConfig(): Partial<ConfigInput> {
  const [prod1] = baseConfig().dbSystems!;
  return { dbSystems: [prod1!, { ...prod1!, id: PROD2, name: 'prod-billing' }] };
}

/** The incident timeline on prod1 plus a second DB system with incidents of its own. */
function twoSystemTimeline(): CanonicalEvent[] {
  const prod2 = [
    db.connect({
      at: at(7),
      conn: 1,
      account: 'dba_proxy',
      user: 'alice',
      ip: '10.0.0.5',
      proxy: true,
      db: PROD2,
    }),
    db.query({
      at: at(8),
      conn: 1,
      account: 'dba_proxy',
      sqlCommand: 'grant',
      sql: "GRANT ALL ON billing.* TO 'app'@'%'",
      db: PROD2,
    }),
    db.disconnect({ at: at(9), conn: 1, account: 'dba_proxy', db: PROD2 }),
    db.connect({ at: at(35), conn: 2, account: 'dba_proxy', user: 'alice', proxy: true, db: PROD2 }),
    // Failures of a login user of its own: admin's, right after those on prod1, would make a
    // fleet-wide burst that an instance reading one DB system cannot see (README, Limits).
    ...[46, 47, 48, 49, 50].map((m, i) =>
      db.connect({ at: at(m), conn: 40 + i, account: 'root', ip: '198.51.100.7', status: 1045, db: PROD2 }),
    ),
    db.connect({ at: at(55), conn: 30, account: 'app', ip: '10.1.1.2', db: PROD2 }),
    db.connect({ at: at(100), conn: 31, account: 'emergency_admin', user: 'bob', proxy: true, db: PROD2 }),
    db.disconnect({ at: at(130), conn: 31, account: 'emergency_admin', db: PROD2 }),
  ];
  return [...incidentTimeline(), ...prod2].sort(compareEvents);
}

const EVENTS = twoSystemTimeline();
const CONFIG = twoSystemConfig();

function sharedStore(adapter: Adapter) {
  let backing: Backing;
  beforeEach(async () => {
    backing = await adapter.create();
  });
  afterEach(async () => {
    await backing.dispose();
  });

  it('two instances (one per DB system, all IAM events to both) match one instance, each alert delivered once', async () => {
    const single = await adapter.create();
    let expected: Awaited<ReturnType<typeof outcome>>;
    try {
      const store = await single.open('all');
      await runPipeline(store, chunks(EVENTS, 3), { config: CONFIG });
      expected = await outcome(store);
    } finally {
      await single.dispose();
    }
    const rules = expected.alerts.map((a) => (JSON.parse(a) as { rule: string }).rule);
    expect(rules).toContain('iam.privileged-group-change');
    expect(
      new Set(
        expected.alerts.map((a) => (JSON.parse(a) as { dbSystem: { id: string } | null }).dbSystem?.id),
      ),
    ).toEqual(new Set([undefined, 'ocid1.mysqldbsystem.oc1..prod1', PROD2]));

    const parts = ['ocid1.mysqldbsystem.oc1..prod1', PROD2].map((id) => ({
      scope: `fn-${id.slice(-5)}`,
      events: EVENTS.filter((e) => e.source === 'iam' || ('dbSystemId' in e && e.dbSystemId === id)),
      sink: new RecordingSink('alerts'),
    }));
    await Promise.all(
      parts.map(async (p) => {
        const store = await backing.open(p.scope);
        await runPipeline(store, chunks(p.events, 2), { config: CONFIG, sinks: [p.sink] });
      }),
    );
    const shared = await backing.open('reader');
    expect(await outcome(shared)).toEqual(expected);
    const delivered = parts.flatMap((p) => p.sink.sent.map((a) => a.id));
    expect(delivered.length).toBe(new Set(delivered).size);
    expect(new Set(delivered)).toEqual(new Set((await collect(shared.alerts())).map((a) => a.id)));
    // Both instances saw the IAM alerts; each went out through exactly one of them.
    expect(parts.every((p) => p.sink.sent.length > 0)).toBe(true);
    expect(await shared.undelivered('alerts')).toEqual([]);
  });

  it('many instances committing overlapping alerts at once: each alert is new to exactly one of them', async () => {
    const instances = 6;
    const rounds = 25;
    const stores = await Promise.all(Array.from({ length: instances }, (_, i) => backing.open(`scope-${i}`)));
    const claimed = stores.map(() => [] as string[]);
    await Promise.all(
      stores.map(async (store, i) => {
        for (let r = 0; r < rounds; r++) {
          // Alerts and sessions shared by all instances, in a different order for each.
          const ids = Array.from({ length: 8 }, (_, j) => `a-${r}-${(j * (i + 1)) % 8}`);
          const { newAlerts } = await store.commit(
            batch({
              seen: Array.from({ length: 20 }, (_, j) => ({ key: `k-${r}-${j}`, ts: at(r) })),
              entities: [{ kind: 'meta', key: 'clock', body: { r } }],
              sessions: ids.slice(0, 3).map((id) => session(`s-${id}`, at(r))),
              alerts: ids.map((id) => alert(id, new Date(at(r)).toISOString())),
              alertUpdates: [{ id: `a-${r}-0`, occurrences: 2, lastTime: new Date(at(r)).toISOString() }],
              deadLetters: [{ code: 'JSON_INVALID', source: `scope-${i}`, message: 'not JSON' }],
            }),
          );
          claimed[i]!.push(...newAlerts);
        }
      }),
    );
    const claims = claimed.flat();
    expect(claims.length).toBe(new Set(claims).size);
    expect(claims.length).toBe(rounds * 8);
    expect((await collect(stores[0]!.deadLetters())).length).toBe(instances * rounds);
    for (const store of stores) {
      expect(await store.filterSeen(seenAt([`k-${rounds - 1}-19`], at(rounds - 1)))).toEqual(
        new Set([`k-${rounds - 1}-19`]),
      );
      expect(await store.loadEntities()).toEqual([{ kind: 'meta', key: 'clock', body: { r: rounds - 1 } }]);
    }
  });
}

describe('a store shared by several instances: SqliteStore (one file)', () => sharedStore(sqliteAdapter));
describe('a store shared by several instances: SqliteStore (one file, commit threads)', () =>
  sharedStore(sqliteThreadAdapter));

describeMySql('a store shared by several instances: MySqlStore', (server: MySqlTestServer) => {
  sharedStore(mysqlAdapter(server));
  describe('lock contention and lost connections', () => lockContention(server));
});

function lockContention(server: MySqlTestServer) {
  const adapter = mysqlAdapter(server, { lockWaitTimeoutSec: 1 });
  let database: Awaited<ReturnType<typeof adapter.createDatabase>>;
  beforeEach(async () => {
    database = await adapter.createDatabase();
  });
  afterEach(async () => {
    await database.dispose();
  });

  /** Starts a transaction on a plain connection that holds the row lock of alert `id`. */
  async function holdAlertLock(id: string) {
    const raw = await database.raw();
    await raw.query('START TRANSACTION');
    await raw.query('INSERT INTO alerts (id, rule, alert_time, body) VALUES (?, ?, ?, ?)', [
      Buffer.from(id),
      'test.rule',
      Buffer.from(new Date(at(1)).toISOString()),
      JSON.stringify(alert(id, new Date(at(1)).toISOString(), { title: 'held' })),
    ]);
    return raw;
  }

  /** Waits until a transaction (on another connection than `except`) waits for a row lock; returns its connection id. */
  async function waitForLockWait(
    probe: Awaited<ReturnType<typeof database.raw>>,
    except?: number,
  ): Promise<number> {
    // InnoDB refreshes the INNODB_TRX snapshot only when it was last read over 100 ms ago.
    for (let i = 0; i < 50; i++) {
      const [rows] = await probe.query(
        "SELECT trx_mysql_thread_id AS id FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'",
      );
      const waiting = (rows as { id: number }[]).find((r) => Number(r.id) !== except);
      if (waiting) return Number(waiting.id);
      await new Promise((r) => setTimeout(r, 150));
    }
    throw new Error('the store never waited for the lock');
  }

  it('retries a commit after a lock wait timeout, and the first writer keeps the alert', async () => {
    const store = (await database.open('a')) as MySqlStore;
    const raw = await holdAlertLock('x1');
    try {
      const pending = store.commit(
        batch({ seen: [{ key: 'k1', ts: at(1) }], alerts: [alert('x1', new Date(at(1)).toISOString())] }),
      );
      pending.catch(() => {});
      // Long enough for at least one 1 s lock wait timeout and retry.
      await new Promise((r) => setTimeout(r, 1600));
      await raw.query('COMMIT');
      expect((await pending).newAlerts).toEqual(new Set());
    } finally {
      await raw.end();
    }
    expect(store.contentionStats.lockWaits).toBeGreaterThan(0);
    expect(await store.filterSeen(seenAt(['k1'], at(1)))).toEqual(new Set(['k1']));
    // The body of the plain transaction's row, not the store's.
    expect((await collect(store.alerts()))[0]?.title).toBe('held');
  });

  it('retries a commit chosen as a deadlock victim; it stores the alert when the other side rolls back', async () => {
    const store = (await database.open('a')) as MySqlStore;
    const raw = await database.raw();
    const probe = await database.raw();
    try {
      await raw.query('START TRANSACTION');
      // A heavier transaction: InnoDB rolls back the one with fewer changed rows (the store's).
      await raw.query('INSERT INTO dead_letters (body) VALUES ?', [
        Array.from({ length: 300 }, () => ['{}']),
      ]);
      await raw.query('INSERT INTO alerts (id, rule, alert_time, body) VALUES (?, ?, ?, ?)', [
        Buffer.from('x1'),
        'test.rule',
        Buffer.from('t'),
        '{}',
      ]);
      // The store upserts session s1 first, then waits for alert x1 ...
      const pending = store.commit(
        batch({ sessions: [session('s1', at(1))], alerts: [alert('x1', new Date(at(1)).toISOString())] }),
      );
      pending.catch(() => {});
      await waitForLockWait(probe);
      // ... while the plain transaction now wants s1: a cycle.
      const blocked = raw.query(
        'INSERT INTO sessions (id, db, connect_ts, is_open, body) VALUES (?, ?, ?, ?, ?)',
        [Buffer.from('s1'), 'db', 0, 0, '{}'],
      );
      await blocked;
      await raw.query('ROLLBACK');
      expect((await pending).newAlerts).toEqual(new Set(['x1']));
    } finally {
      await raw.end();
      await probe.end();
    }
    expect(store.contentionStats.deadlocks).toBeGreaterThan(0);
    expect((await collect(store.deadLetters())).length).toBe(0);
    expect((await store.loadSessions(0)).map((s) => s.id)).toEqual(['s1']);
  });

  it('gives up with STORE_FAILED once the retry budget is spent', async () => {
    const store = await MySqlStore.open(database.connection, {
      scope: 'a',
      lockWaitTimeoutSec: 1,
      retry: { attempts: 2 },
    });
    const raw = await holdAlertLock('x1');
    try {
      const error = await store.commit(batch({ alerts: [alert('x1', new Date(at(1)).toISOString())] })).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(AuditError);
      expect(error).toMatchObject({ code: 'STORE_FAILED', details: { errno: 1205, attempts: 2 } });
      expect(store.contentionStats.lockWaits).toBe(1);
    } finally {
      await raw.query('ROLLBACK');
      await raw.end();
      await store.close();
    }
  });

  it('redoes a transaction whose connection died before COMMIT on a fresh connection', async () => {
    const store = await MySqlStore.open(database.connection, { scope: 'a' });
    const raw = await holdAlertLock('x1');
    const probe = await database.raw();
    try {
      const pending = store.commit(
        batch({ seen: [{ key: 'k1', ts: at(1) }], alerts: [alert('x1', new Date(at(1)).toISOString())] }),
      );
      pending.catch(() => {});
      const victim = await waitForLockWait(probe);
      await probe.query(`KILL CONNECTION ${victim}`);
      // The redo waits for the same lock on its new connection.
      expect(await waitForLockWait(probe, victim)).not.toBe(victim);
      await raw.query('ROLLBACK');
      expect((await pending).newAlerts).toEqual(new Set(['x1']));
      expect(await store.filterSeen(seenAt(['k1'], at(1)))).toEqual(new Set(['k1']));
    } finally {
      await raw.end();
      await probe.end();
      await store.close();
    }
  });

  it('replaces pooled connections the server closed while idle', async () => {
    const store = await MySqlStore.open(database.connection, { scope: 'a' });
    const probe = await database.raw();
    try {
      await store.commit(batch({ seen: [{ key: 'k1', ts: at(1) }] }));
      const [rows] = await probe.query(
        'SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = ? AND DB = ? AND ID <> CONNECTION_ID()',
        [database.connection.user, database.name],
      );
      const ids = (rows as { id: number }[]).map((r) => Number(r.id));
      expect(ids.length).toBeGreaterThan(0);
      for (const id of ids) await probe.query(`KILL CONNECTION ${id}`);
      expect(await store.filterSeen(seenAt(['k1'], at(1)))).toEqual(new Set(['k1']));
      expect(
        (await store.commit(batch({ alerts: [alert('a1', new Date(at(1)).toISOString())] }))).newAlerts,
      ).toEqual(new Set(['a1']));
    } finally {
      await probe.end();
      await store.close();
    }
  });
}
