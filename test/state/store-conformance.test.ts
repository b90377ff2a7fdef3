// One contract, two adapters: every expectation here holds for SqliteStore and MySqlStore alike
// (the MySQL half runs against TEST_MYSQL_URL; .ci/run starts a MariaDB for it).
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SNAPSHOT_VERSION, type Snapshot } from '../../schemas/snapshot.js';
import { at, USERS } from '../../shared/detect/timeline.js';
import { AuditError } from '../../shared/errors.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import type { StateStore } from '../../shared/state/state-store.js';
import { toIso } from '../../shared/time.js';
import { collect } from '../helpers/collect.js';
import { describeMySql } from '../helpers/mysql-server.js';
import { incidentTimeline, LONG_SESSION_CONFIG, longSession } from '../scenarios/scenario-fleet.js';
import {
  type Adapter,
  alert,
  type Backing,
  batch,
  event,
  mysqlAdapter,
  outcome,
  runPipeline,
  seenAt,
  session,
  sqliteAdapter,
  sqliteCheckpointAdapter,
  sqliteThreadAdapter,
} from './store-fixtures.js';

/** Keys a byte-exact store keeps apart: case, trailing space, non-ASCII, over 255 bytes, NUL, quotes. */
const TRICKY_KEYS = [
  'alice',
  'Alice',
  'alice ',
  'ключ-🔑',
  'x'.repeat(400),
  'é'.repeat(200),
  '\u0000nul',
  `o'brien\\"; DROP TABLE seen; --\n`,
  '',
];

const byKindKey = (a: { kind: string; key: string }, b: { kind: string; key: string }) =>
  a.kind === b.kind ? (a.key < b.key ? -1 : a.key > b.key ? 1 : 0) : a.kind < b.kind ? -1 : 1;

const EVENTS = incidentTimeline();

function emptySnapshot(time: string): Snapshot {
  return {
    version: SNAPSHOT_VERSION,
    id: time,
    time,
    parts: { iam: { status: 'ok', readAt: time } },
    directory: { users: [], groups: [], memberships: [] },
    dbSystems: [],
    requests: { oci: {}, sql: 0 },
  };
}

function conformance(adapter: Adapter) {
  let backing: Backing;
  let baseline: Awaited<ReturnType<typeof outcome>>;

  beforeAll(async () => {
    const reference = SqliteStore.open(':memory:');
    await runPipeline(reference, [EVENTS]);
    baseline = await outcome(reference);
    await reference.close();
  });
  beforeEach(async () => {
    backing = await adapter.create();
  });
  afterEach(async () => {
    await backing.dispose();
  });

  it('round-trips entities: upsert, update, delete, byte-exact keys', async () => {
    const store = await backing.open();
    const rows = [
      ...TRICKY_KEYS.map((key, i) => ({ kind: 'user', key, body: { i, name: key } })),
      { kind: 'group', key: 'alice', body: ['a', { nested: true }] },
      { kind: 'meta', key: 'clock', body: { maxTs: at(5), releasedTs: -1 } },
    ];
    await store.commit(batch({ entities: rows }));
    expect((await store.loadEntities()).sort(byKindKey)).toEqual([...rows].sort(byKindKey));

    await store.commit(
      batch({
        entities: [
          { kind: 'user', key: 'Alice', body: { updated: true } },
          { kind: 'user', key: 'x'.repeat(400), body: null },
          { kind: 'group', key: 'alice', body: null },
          { kind: 'user', key: 'missing', body: null },
        ],
      }),
    );
    const expected = rows
      .filter((r) => !(r.kind === 'user' && r.key === 'x'.repeat(400)) && r.kind !== 'group')
      .map((r) => (r.kind === 'user' && r.key === 'Alice' ? { ...r, body: { updated: true } } : r));
    expect((await store.loadEntities()).sort(byKindKey)).toEqual(expected.sort(byKindKey));
  });

  it('round-trips pending events: put, replace, remove', async () => {
    const store = await backing.open();
    const [e1, e2, e3] = [event('e1', at(1)), event('e2', at(2)), event(TRICKY_KEYS[4]!, at(3))];
    await store.commit(batch({ pending: { put: [e1!, e2!, e3!], remove: [] } }));
    const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : 1);
    expect((await store.loadPending()).sort(byKey)).toEqual([e1, e2, e3].sort(byKey));
    const moved = event('e1', at(9));
    await store.commit(batch({ pending: { put: [moved], remove: ['e2', TRICKY_KEYS[4]!, 'never-stored'] } }));
    expect(await store.loadPending()).toEqual([moved]);
  });

  it('stores sessions, loads the open ones and those since a time, ordered, and updates them', async () => {
    const store = await backing.open();
    const s = {
      oldOpen: session('s-old-open', at(-100)),
      oldClosed: session('s-old-closed', at(-99), { disconnectTime: new Date(at(-98)).toISOString() }),
      b: session('s-b', at(0)),
      a: session('s-a', at(0)),
      closed: session('s-closed', at(10), { disconnectTime: new Date(at(11)).toISOString() }),
      failed: session('s-failed', at(20), { outcome: 'failed', status: 1045 }),
    };
    await store.commit(batch({ sessions: Object.values(s) }));
    expect((await store.loadSessions(at(5))).map((x) => x.id)).toEqual([
      's-old-open',
      's-a',
      's-b',
      's-closed',
      's-failed',
    ]);
    expect((await store.loadSessions(at(0))).map((x) => x.id)).toEqual([
      's-old-open',
      's-a',
      's-b',
      's-closed',
      's-failed',
    ]);
    expect((await store.loadSessions(at(100))).map((x) => x.id)).toEqual(['s-old-open', 's-a', 's-b']);

    const closedA = {
      ...s.a,
      disconnectTime: new Date(at(30)).toISOString(),
      counts: { ...s.a.counts, queries: 7 },
    };
    await store.commit(batch({ sessions: [closedA] }));
    expect((await store.loadSessions(at(100))).map((x) => x.id)).toEqual(['s-old-open', 's-b']);
    expect(await collect(store.sessions())).toEqual([
      s.oldOpen,
      s.oldClosed,
      closedA,
      s.b,
      s.closed,
      s.failed,
    ]);
  });

  it('pages through a large session ledger and alert list in order', async () => {
    const store = await backing.open();
    const sessions = Array.from({ length: 1203 }, (_, i) =>
      session(`s${String((i * 7919) % 1203).padStart(5, '0')}`, at(i % 7)),
    );
    const alerts = Array.from({ length: 1100 }, (_, i) =>
      alert(`a${String((i * 7919) % 1100).padStart(5, '0')}`, new Date(at(i % 5)).toISOString()),
    );
    await store.commit(batch({ sessions, alerts }));
    const sessionOrder = [...sessions].sort((x, y) => x.connectTs - y.connectTs || (x.id < y.id ? -1 : 1));
    expect((await collect(store.sessions())).map((x) => x.id)).toEqual(sessionOrder.map((x) => x.id));
    const alertOrder = [...alerts].sort((x, y) =>
      x.time < y.time ? -1 : x.time > y.time ? 1 : x.id < y.id ? -1 : 1,
    );
    expect((await collect(store.alerts())).map((x) => x.id)).toEqual(alertOrder.map((x) => x.id));
  });

  it('filters seen keys exactly, by event-time bucket (over many chunks), and prunes them at the horizon', async () => {
    const store = await backing.open();
    const keys = [...TRICKY_KEYS, ...Array.from({ length: 1400 }, (_, i) => `k-${i}`)];
    // 700 one-minute buckets, keys spread over each minute, written by two commits.
    const events = keys.map((key, i) => ({ key, ts: at(i % 700) + ((i * 997) % 60_000) }));
    await store.commit(batch({ seen: events.slice(0, 800) }));
    await store.commit(batch({ seen: events.slice(800) }));
    const unknown = ['ALICE', 'alice  ', 'x'.repeat(401), 'k-1400', 'k-99999'].map((key, i) => ({
      key,
      ts: at(i),
    }));
    const asked = [...events, ...events.slice(0, 50), ...unknown];
    expect([...(await store.filterSeen(asked))].sort()).toEqual([...new Set(keys)].sort());
    expect(await store.filterSeen([])).toEqual(new Set());
    // A key is looked up in the bucket of its event time only.
    expect(events[0]).toEqual({ key: 'alice', ts: at(0) });
    expect(await store.filterSeen([{ key: 'alice', ts: at(1) }])).toEqual(new Set());

    await store.commit(batch({ seen: [{ key: 'late', ts: at(900) }], pruneSeenBefore: at(350) }));
    const kept = events.filter((e) => e.ts >= at(350)).map((e) => e.key);
    expect(kept.length).toBeGreaterThan(500);
    expect([...(await store.filterSeen([...events, { key: 'late', ts: at(900) }]))].sort()).toEqual(
      [...kept, 'late'].sort(),
    );
  });

  it('knows stored alerts; a second commit of an alert is not new, in the same store or another one', async () => {
    const one = await backing.open('one');
    const two = await backing.open('two');
    const long = `a-${'y'.repeat(300)}`;
    const t = new Date(at(1)).toISOString();
    const first = await one.commit(batch({ alerts: [alert('a1', t), alert('a2', t), alert(long, t)] }));
    expect(first.newAlerts).toEqual(new Set(['a1', 'a2', long]));
    expect(await one.knownAlerts(['a1', 'a3', long, 'A1'])).toEqual(new Set(['a1', long]));
    expect(await two.knownAlerts(['a1', 'a3'])).toEqual(new Set(['a1']));

    const second = await two.commit(
      batch({ alerts: [alert('a2', t, { title: 'other' }), alert('a3', t), alert(long, t)] }),
    );
    expect(second.newAlerts).toEqual(new Set(['a3']));
    expect((await one.commit(batch({ alerts: [alert('a1', t)] }))).newAlerts).toEqual(new Set());
    // The first writer's body wins.
    expect((await collect(one.alerts())).find((a) => a.id === 'a2')?.title).toBe('alert a2');
  });

  it('merges occurrence updates into alerts on read', async () => {
    const store = await backing.open();
    const t = new Date(at(1)).toISOString();
    await store.commit(batch({ alerts: [alert('a1', t, { details: { burst: 5 } }), alert('a2', t)] }));
    const last = new Date(at(9)).toISOString();
    await store.commit(batch({ alertUpdates: [{ id: 'a1', occurrences: 3, lastTime: last }] }));
    const [a1, a2] = await collect(store.alerts());
    expect(a1?.details).toEqual({ burst: 5, occurrences: 3, lastTime: last });
    expect(a2).toEqual(alert('a2', t));
    expect((await store.undelivered('sink'))[0]?.details).toEqual({
      burst: 5,
      occurrences: 3,
      lastTime: last,
    });
  });

  it('keeps a resolution beside its alert: own key, own time, loaded and delivered on its own', async () => {
    const store = await backing.open();
    const t = new Date(at(1)).toISOString();
    const resolvedAt = new Date(at(5)).toISOString();
    const open = alert('a1', t);
    const resolution = {
      ...open,
      status: 'resolved' as const,
      resolution: { time: resolvedAt, reason: 'reverted' as const, note: 'undone', evidence: ['e2'] },
    };
    const first = await store.commit(batch({ alerts: [open, alert('b1', new Date(at(3)).toISOString())] }));
    expect(first.newAlerts).toEqual(new Set(['a1', 'b1']));
    const second = await store.commit(batch({ alerts: [resolution] }));
    expect(second.newAlerts).toEqual(new Set(['a1:resolved']));
    expect((await store.commit(batch({ alerts: [resolution] }))).newAlerts).toEqual(new Set());
    expect(await store.knownAlerts(['a1', 'a1:resolved', 'b1:resolved'])).toEqual(
      new Set(['a1', 'a1:resolved']),
    );
    expect(await store.loadAlerts(['a1', 'zz', 'a1'])).toEqual([open]);
    expect(await store.loadAlerts(['a1:resolved'])).toEqual([resolution]);
    // Every record, in time order: the alert, another alert, then the resolution at its own time.
    expect((await collect(store.alerts())).map((a) => `${a.id}/${a.status}`)).toEqual([
      'a1/open',
      'b1/open',
      'a1/resolved',
    ]);
    await store.markDelivered('s', ['a1', 'b1']);
    expect(await store.undelivered('s')).toEqual([resolution]);
    await store.markDelivered('s', ['a1:resolved']);
    expect(await store.undelivered('s')).toEqual([]);
  });

  it('reads alerts stored before records had a status as open', async () => {
    const store = await backing.open();
    const { status: _, ...legacy } = alert('old', new Date(at(1)).toISOString());
    await store.commit(batch({ alerts: [legacy as ReturnType<typeof alert>] }));
    expect((await collect(store.alerts()))[0]?.status).toBe('open');
  });

  it('records deliveries per sink and lists what a sink has not received, in time order', async () => {
    const store = await backing.open();
    const alerts = [
      alert('c', new Date(at(3)).toISOString()),
      alert('a', new Date(at(1)).toISOString()),
      alert('b', new Date(at(2)).toISOString()),
    ];
    await store.commit(batch({ alerts }));
    expect((await store.undelivered('s1')).map((a) => a.id)).toEqual(['a', 'b', 'c']);
    await store.markDelivered('s1', ['a', 'c']);
    await store.markDelivered('s1', ['a']);
    await store.markDelivered('s1', []);
    expect((await store.undelivered('s1')).map((a) => a.id)).toEqual(['b']);
    expect((await store.undelivered('s2')).map((a) => a.id)).toEqual(['a', 'b', 'c']);
    expect(await store.delivered('s1', ['a', 'b', 'c', 'x'])).toEqual(new Set(['a', 'c']));
    expect(await store.delivered('s2', ['a'])).toEqual(new Set());
    // A key that names no stored record (a sink's own marker) is kept too.
    await store.markDelivered('s2', ['\u0000marker']);
    expect(await store.delivered('s2', ['\u0000marker', 'a'])).toEqual(new Set(['\u0000marker']));
    expect((await store.undelivered('s2')).map((a) => a.id)).toEqual(['a', 'b', 'c']);
    // Deliveries are shared; another instance sends 'b' once this one gives up its claim.
    const other = await backing.open('other-scope');
    expect(await other.undelivered('s1')).toEqual([]);
    await store.releaseClaims(['b']);
    expect((await other.undelivered('s1')).map((a) => a.id)).toEqual(['b']);
    expect(await store.undelivered('s1')).toEqual([]);
  });

  it('keeps seen keys, entities and pending events per scope; shares sessions, alerts and dead letters', async () => {
    const a = await backing.open('fn-a');
    const b = await backing.open('fn-b');
    const t = new Date(at(1)).toISOString();
    await a.commit(
      batch({
        entities: [{ kind: 'user', key: 'u1', body: { from: 'a' } }],
        pending: { put: [event('p1', at(1))], remove: [] },
        seen: [{ key: 'k1', ts: at(1) }],
        sessions: [session('s1', at(1))],
        alerts: [alert('x1', t)],
        deadLetters: [{ code: 'JSON_INVALID', source: 'a', message: 'not JSON' }],
      }),
    );
    await b.commit(
      batch({
        entities: [{ kind: 'user', key: 'u1', body: { from: 'b' } }],
        seen: [{ key: 'k2', ts: at(1) }],
      }),
    );
    expect(await a.loadEntities()).toEqual([{ kind: 'user', key: 'u1', body: { from: 'a' } }]);
    expect(await b.loadEntities()).toEqual([{ kind: 'user', key: 'u1', body: { from: 'b' } }]);
    expect(await b.loadPending()).toEqual([]);
    expect(await a.filterSeen(seenAt(['k1', 'k2'], at(1)))).toEqual(new Set(['k1']));
    expect(await b.filterSeen(seenAt(['k1', 'k2'], at(1)))).toEqual(new Set(['k2']));
    // Pruning one scope leaves the other alone.
    await b.commit(batch({ pruneSeenBefore: at(100) }));
    expect(await a.filterSeen(seenAt(['k1'], at(1)))).toEqual(new Set(['k1']));
    expect(await b.filterSeen(seenAt(['k2'], at(1)))).toEqual(new Set());
    expect((await b.loadSessions(at(0))).map((s) => s.id)).toEqual(['s1']);
    expect(await b.knownAlerts(['x1'])).toEqual(new Set(['x1']));
    expect((await collect(b.deadLetters())).length).toBe(1);
    const fresh = await backing.open('fn-a');
    expect(await fresh.loadPending()).toEqual([event('p1', at(1))]);
  });

  it('stores snapshots shared by every scope: the latest, those since a time, pruned but the last kept', async () => {
    const a = await backing.open('a');
    const b = await backing.open('b');
    const snap = (hour: number, users: string[] = []) => {
      const time = new Date(at(hour * 60)).toISOString();
      return {
        ...emptySnapshot(time),
        id: `${time}-${users.join('.')}`,
        directory: {
          users: users.map((id) => ({
            id,
            name: id,
            aliases: [TRICKY_KEYS[3]!],
            state: 'active' as const,
            part: 'iam',
          })),
          groups: [],
          memberships: [],
        },
      };
    };
    expect(await a.snapshots()).toEqual([]);
    await a.putSnapshot(snap(1, ['u1']));
    await a.putSnapshot(snap(3, ['u3']));
    await a.putSnapshot(snap(2, ['u2']));
    expect((await b.snapshots()).map((x) => x.id)).toEqual([snap(3, ['u3']).id]);
    expect(await b.snapshots(at(120))).toEqual([snap(2, ['u2']), snap(3, ['u3'])]);
    // A later snapshot prunes what is older than the horizon, never itself.
    await b.putSnapshot(snap(4, ['u4']), at(24 * 60));
    expect((await a.snapshots(at(0))).map((x) => x.id)).toEqual([snap(4, ['u4']).id]);
  });

  it('keeps dead letters from every commit and every instance, in order, with when each was stored', async () => {
    const a = await backing.open('a');
    const b = await backing.open('b');
    expect((await collect(a.deadLetters())).length).toBe(0);
    const dead = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        code: 'SCHEMA_INVALID' as const,
        source: 'batch',
        index: i,
        path: ['data', i],
        message: 'bad',
      }));
    const tick = () => new Promise((resolve) => setTimeout(resolve, 5));
    const before = Date.now();
    await a.commit(batch({ deadLetters: dead(2) }));
    await b.commit(batch({ deadLetters: dead(3) }));
    await tick();
    const between = Date.now();
    await tick();
    await a.commit(batch({ deadLetters: dead(1200) }));
    const after = Date.now();
    const stored = await collect(b.deadLetters());
    expect(stored.map((d) => d.index)).toEqual([0, 1, 0, 1, 2, ...dead(1200).map((d) => d.index)]);
    expect(stored.map((d) => d.seq)).toEqual([...stored.map((d) => d.seq)].sort((x, y) => x - y));
    expect(new Set(stored.map((d) => d.seq)).size).toBe(1205);
    expect(stored[4]).toEqual({ seq: stored[4]!.seq, storedTime: expect.any(String), ...dead(3)[2] });
    for (const d of stored) {
      expect(Date.parse(d.storedTime!)).toBeGreaterThanOrEqual(before);
      expect(Date.parse(d.storedTime!)).toBeLessThanOrEqual(after);
    }
    expect((await collect(a.deadLetters({ to: between }))).length).toBe(5);
    expect((await collect(a.deadLetters({ from: between }))).length).toBe(1200);
    expect(await collect(a.deadLetters({ from: after + 1 }))).toEqual([]);
    // The ledger's retention prune takes the dead letters stored before its horizon.
    await b.commit(batch({ pruneLedgerBefore: between }));
    expect((await collect(a.deadLetters())).map((d) => d.index)).toEqual(dead(1200).map((d) => d.index));
    await a.commit(batch({ pruneLedgerBefore: after + 1 }));
    expect(await collect(b.deadLetters())).toEqual([]);
  });

  it('rolls a failing commit back entirely, with a log-safe STORE_FAILED', async () => {
    const store = await backing.open();
    const t = new Date(at(1)).toISOString();
    const failing = batch({
      entities: [{ kind: 'user', key: 'u1', body: {} }],
      seen: [{ key: 'k1', ts: at(1) }],
      sessions: [session('s1', at(1))],
      alerts: [alert('a1', t)],
      // NaN cannot be stored as a count: the statement fails after the others ran.
      alertUpdates: [{ id: 'a1', occurrences: Number.NaN, lastTime: t }],
    });
    const error = await store.commit(failing).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AuditError);
    expect((error as AuditError).code).toBe('STORE_FAILED');
    expect((error as AuditError).message).not.toMatch(/UPDATE|INSERT|alerts|a1/);
    expect(JSON.stringify((error as AuditError).details)).not.toMatch(/UPDATE|a1|NaN/);
    expect(((error as AuditError).cause as { sql?: unknown }).sql).toBeUndefined();
    expect(await store.filterSeen(seenAt(['k1'], at(1)))).toEqual(new Set());
    expect(await store.knownAlerts(['a1'])).toEqual(new Set());
    expect(await store.loadEntities()).toEqual([]);
    expect(await store.loadSessions(0)).toEqual([]);
    // The store is still usable.
    expect((await store.commit(batch({ alerts: [alert('a1', t)] }))).newAlerts).toEqual(new Set(['a1']));
  });

  it('fails a commit whose body cannot be serialized with STORE_FAILED, storing nothing', async () => {
    const store = await backing.open();
    const error = await store
      .commit(
        batch({ seen: [{ key: 'k1', ts: at(1) }], entities: [{ kind: 'user', key: 'u1', body: { n: 1n } }] }),
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toMatchObject({ code: 'STORE_FAILED' });
    expect(await store.filterSeen(seenAt(['k1'], at(1)))).toEqual(new Set());
  });

  it('applies migrations once: reopening keeps the data and the version; concurrent first opens agree', async () => {
    const stores = await Promise.all([backing.open('a'), backing.open('b'), backing.open('c')]);
    const versions = await backing.schemaVersions();
    expect(versions.length).toBeGreaterThan(0);
    expect(versions).toEqual(Array.from({ length: versions.length }, (_, i) => i + 1));
    await stores[0]!.commit(batch({ seen: [{ key: 'k1', ts: at(1) }] }));
    for (const s of stores) await s.close();
    const again = await backing.open('a');
    await backing.open('a');
    expect(await backing.schemaVersions()).toEqual(versions);
    expect(await again.filterSeen(seenAt(['k1'], at(1)))).toEqual(new Set(['k1']));
  });

  it('refuses a store written by a newer release', async () => {
    await (await backing.open()).close();
    await backing.markNewer();
    const error = await backing.open().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AuditError);
    expect((error as AuditError).code).toBe('STORE_FAILED');
    expect((error as AuditError).message).toMatch(/newer version/);
  });

  it('gives the fleet scenario the same alerts and session ledger as the reference run', async () => {
    const store = await backing.open();
    await runPipeline(store, [EVENTS]);
    const result = await outcome(store);
    expect(result.alerts.length).toBeGreaterThan(5);
    expect(result).toEqual(baseline);
  });

  // Connected on day 0, beyond retention and auditRetention by day 5; active every day. The process
  // stops after day 3's batch, whose commit pruned the ledger: with day 3's statement still waiting,
  // or applied (finish), when the store must give the session back with its last activity.
  for (const finish of [false, true])
    it(`keeps an open session that is still active across the ledger prune and a restart (finish: ${finish})`, async () => {
      const batches = longSession(5);
      const first = await backing.open();
      await runPipeline(first, batches.slice(0, 4), { config: LONG_SESSION_CONFIG, finish });
      await first.close();
      const store = await backing.open();
      await runPipeline(store, batches.slice(4), { config: LONG_SESSION_CONFIG });
      const alerts = await collect(store.alerts());
      expect(alerts.find((a) => a.rule === 'privilege.change')?.identity).toMatchObject({
        principalId: USERS.carol,
      });
      const sessions = await collect(store.sessions());
      expect(sessions.map((s) => [s.identity?.id, s.disconnectTime, s.counts.queries])).toEqual([
        [USERS.carol, toIso(at(5 * 24 * 60 + 120)), 6],
      ]);
    });

  it('gives the same result when the pipeline restarts on the store between small batches', async () => {
    const batches: (typeof EVENTS)[] = [];
    for (let i = 0; i < EVENTS.length; i += 4) batches.push(EVENTS.slice(i, i + 4));
    let store: StateStore | undefined;
    for (const [i, b] of batches.entries()) {
      store = await backing.open();
      const { config, rules } = (await import('../helpers/run-timeline.js')).testConfig();
      const { Pipeline } = await import('../../shared/pipeline.js');
      const p = await Pipeline.open({ config, rules, store });
      await p.ingest(b.map((e) => ({ type: 'event' as const, event: e })));
      if (i === batches.length - 1) await p.finish();
      await store.close();
    }
    expect(await outcome(await backing.open())).toEqual(baseline);
  });
}

describe('state store conformance: SqliteStore', () => conformance(sqliteAdapter));
describe('state store conformance: SqliteStore (commit thread)', () => conformance(sqliteThreadAdapter));
describe('state store conformance: SqliteStore (checkpoint thread)', () =>
  conformance(sqliteCheckpointAdapter));
describeMySql('state store conformance: MySqlStore', (server) => conformance(mysqlAdapter(server)));
