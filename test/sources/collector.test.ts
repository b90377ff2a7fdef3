// The collector against a MySQL-protocol server with HeatWave's audit_log_read() semantics
// (test/mysql-server): real TCP and TLS, the real mysql2 driver, the real pipeline on SQLite.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Alert } from '../../schemas/alert.js';
import type { ConfigInput } from '../../schemas/config.js';
import type { Session } from '../../schemas/session.js';
import { validateConfig } from '../../shared/config/load-config.js';
import { baseConfig } from '../../shared/detect/timeline.js';
import { Pipeline } from '../../shared/pipeline.js';
import { AuditLogReader, type InstancePosition } from '../../shared/sources/audit-log-reader.js';
import {
  type CollectResult,
  collect,
  positionKey,
  skippedKey,
  startKey,
} from '../../shared/sources/collector.js';
import { connectInstance, instanceTargets, secretReader } from '../../shared/sources/mysql-connection.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { collect as all } from '../helpers/collect.js';
import { AuditLog } from '../mysql-server/audit-log.js';
import { minutes, RawLog } from '../mysql-server/raw-events.js';
import { HeatWaveTestServer, type TestServerOptions } from '../mysql-server/server.js';
import { type TlsMaterial, tlsMaterial } from '../mysql-server/tls.js';

const PASSWORD = "c0llect'or-pw\\!";
const ENV = { HW_TEST_COLLECTOR_PW: PASSWORD };
const COLLECTOR_ACCOUNT = { user: 'hwaudit', password: PASSWORD, grants: ['AUDIT_ADMIN'] };
const DB2 = { id: 'ocid1.mysqldbsystem.oc1..prod2', name: 'prod-billing' };

let tls: TlsMaterial;
let dir: string;
const servers: HeatWaveTestServer[] = [];

beforeAll(async () => {
  tls = await tlsMaterial();
  dir = mkdtempSync(join(tmpdir(), 'collector-'));
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function server(events: RawLog | Record<string, unknown>[], opts: TestServerOptions = {}) {
  const s = await HeatWaveTestServer.start({
    accounts: [COLLECTOR_ACCOUNT],
    tls: { key: tls.key, cert: tls.cert },
    audit: new AuditLog(events instanceof RawLog ? events.events : events),
    ...opts,
  });
  servers.push(s);
  return s;
}

type Fleet = { server: HeatWaveTestServer; role?: 'primary' | 'replica'; name?: string; db?: typeof DB2 }[];

function fleetConfig(fleet: Fleet, collector: Record<string, unknown> = {}) {
  const base = baseConfig();
  const [prod] = base.dbSystems!;
  const endpointsOf = (db?: typeof DB2) =>
    fleet
      .filter((f) => (f.db?.id ?? prod!.id) === (db?.id ?? prod!.id))
      .map((f) => ({
        host: 'localhost',
        port: f.server.address.port,
        ...(f.role ? { role: f.role } : {}),
        ...(f.name ? { name: f.name } : {}),
      }));
  const dbSystems: ConfigInput['dbSystems'] = [{ ...prod!, endpoints: endpointsOf() }];
  if (fleet.some((f) => f.db)) dbSystems.push({ id: DB2.id, name: DB2.name, endpoints: endpointsOf(DB2) });
  return validateConfig({
    ...base,
    dbSystems,
    collector: { user: 'hwaudit', password: { env: 'HW_TEST_COLLECTOR_PW' }, ...collector },
  });
}

type Run = { result: CollectResult; pipeline: Pipeline; store: SqliteStore };

async function pass(
  fleet: Fleet,
  opts: {
    collector?: Record<string, unknown>;
    store?: SqliteStore;
    from?: number;
    signal?: AbortSignal;
    env?: Record<string, string>;
    onBatch?: () => void;
    batchSize?: number;
    /** Receives the records forwarded (as to a stream). */
    forward?: Record<string, unknown>[];
    /** Wraps each connect (to watch them). */
    connecting?: <T>(connect: Promise<T>) => Promise<T>;
  } = {},
): Promise<Run> {
  const { config, rules } = fleetConfig(fleet, opts.collector);
  const store =
    opts.store ?? SqliteStore.open(join(dir, `state-${Math.random().toString(36).slice(2)}.sqlite`));
  const pipeline = await Pipeline.open({ config, rules, store });
  const read = secretReader(opts.env ?? ENV, () => Promise.reject(new Error('no vault in this test')));
  const result = await collect({
    pipeline,
    targets: instanceTargets(config),
    connect: (t) => (opts.connecting ?? ((c) => c))(connectInstance(t, read)),
    retryDelayMs: () => 10,
    ...(opts.from !== undefined ? { from: opts.from } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.onBatch ? { onBatch: opts.onBatch } : {}),
    ...(opts.batchSize ? { batchSize: opts.batchSize } : {}),
    ...(opts.forward ? { forward: async (records) => void opts.forward!.push(...records) } : {}),
  });
  return { result, pipeline, store };
}

async function finished(run: Run): Promise<{ sessions: Session[]; alerts: Alert[] }> {
  await run.pipeline.finish();
  return { sessions: await all(run.store.sessions()), alerts: await all(run.store.alerts()) };
}

/** The audit_log_read() calls the server received, with the driver's escaping of `"` undone. */
const auditCalls = (s: HeatWaveTestServer) =>
  s.statements.filter((q) => q.startsWith('SELECT audit_log_read(')).map((q) => q.replaceAll('\\"', '"'));

describe('collector: reading one instance', () => {
  it('reads every event once, in calls of batchSize, until the array ends with null', async () => {
    const log = new RawLog()
      .session({ at: minutes(0), conn: 5, user: 'admin', queries: 6 })
      .session({ at: minutes(1), conn: 6, user: 'app', queries: 3 });
    const s = await server(log);
    const run = await pass([{ server: s }], { collector: { batchSize: 4 } });
    const [report] = run.result.instances;
    expect(report).toMatchObject({ records: log.events.length, caughtUp: true, repeated: 0, gaps: 0 });
    expect(report!.server).toMatchObject({ flavor: 'plugin', readBufferSize: 4 * 1024 * 1024 });
    // ceil(14 / 4) = 4 calls; the last one's array ends with null.
    expect(auditCalls(s)).toHaveLength(4);
    expect(auditCalls(s)[0]).toContain('"start":{"timestamp":"1970-01-01 00:00:00"}');
    expect(
      auditCalls(s)
        .slice(1)
        .every((q) => q.includes(`audit_log_read('{"max_array_length":4}')`)),
    ).toBe(true);
    expect(s.statements).toContain('SET SESSION audit_log_read_buffer_size = 4194304');
    const { sessions } = await finished(run);
    expect(sessions.map((x) => [x.connectionId, x.counts.queries, x.disconnectTime !== undefined])).toEqual([
      [5, 6, true],
      [6, 3, true],
    ]);
    expect(
      run.pipeline.position<InstancePosition>(
        positionKey(instanceTargets(fleetConfig([{ server: s }]).config)[0]!),
      ),
    ).toMatchObject({
      timestamp: log.events.at(-1)!.timestamp,
      id: log.events.at(-1)!.id,
      serverUuid: s.catalogue.serverUuid,
    });
  });

  it('resumes after its bookmark: only new events, the bookmarked one is not read twice', async () => {
    const log = new RawLog().session({ at: minutes(0), conn: 5, user: 'admin', queries: 2 });
    const s = await server(log);
    const first = await pass([{ server: s }]);
    const more = new RawLog();
    (more as unknown as { id: number }).id = 100;
    more.session({ at: minutes(5), conn: 9, user: 'admin', queries: 1 });
    s.audit.append(more.events);
    const second = await pass([{ server: s }], { store: first.store });
    expect(second.result.instances[0]).toMatchObject({ records: more.events.length, repeated: 1, gaps: 0 });
    const resume = auditCalls(s).at(-1)!;
    expect(resume).toContain(`"timestamp":"${log.events.at(-1)!.timestamp}","id":${log.events.at(-1)!.id}`);
    const { sessions } = await finished(second);
    expect(sessions.map((x) => x.connectionId).sort()).toEqual([5, 9]);
  });

  it('starts a first read at --from', async () => {
    const log = new RawLog()
      .session({ at: minutes(0), conn: 5, user: 'admin', queries: 1 })
      .session({ at: minutes(10), conn: 6, user: 'admin', queries: 1 });
    const s = await server(log);
    const run = await pass([{ server: s }], { from: minutes(5) });
    expect(auditCalls(s)[0]).toContain('"start":{"timestamp":"2026-11-02 09:05:00"}');
    const { sessions } = await finished(run);
    expect(sessions.map((x) => x.connectionId)).toEqual([6]);
  });

  /** A server whose log holds two sessions (at 0 and 10 minutes), and a collector.start at the first. */
  async function twoSessionsFromStart() {
    const log = new RawLog()
      .session({ at: minutes(0), conn: 5, user: 'admin', queries: 1 })
      .session({ at: minutes(10), conn: 6, user: 'admin', queries: 1 });
    return { s: await server(log), collector: { start: new Date(minutes(0)).toISOString() } };
  }

  it('a first read at --from that finds nothing there keeps --from: the next pass starts there, not earlier', async () => {
    const { s, collector } = await twoSessionsFromStart();
    const first = await pass([{ server: s }], { collector, from: minutes(30) });
    expect(first.result.instances[0]).toMatchObject({
      records: 0,
      caughtUp: true,
      position: { start: '2026-11-02T09:30:00.000Z' },
    });
    const target = instanceTargets(fleetConfig([{ server: s }]).config)[0]!;
    const key = positionKey(target);
    expect(first.pipeline.position(startKey(target))).toEqual({ start: '2026-11-02T09:30:00.000Z' });
    expect(first.pipeline.position(key)).toBeUndefined();
    const later = new RawLog();
    (later as unknown as { id: number }).id = 100;
    later.session({ at: minutes(40), conn: 9, user: 'admin', queries: 1 });
    s.audit.append(later.events);
    // Without --from, over collector.start: from the start kept, and from the event read after it.
    const second = await pass([{ server: s }], { collector, store: first.store });
    expect(auditCalls(s).at(-1)).toContain('"start":{"timestamp":"2026-11-02 09:30:00"}');
    expect(second.result.instances[0]).toMatchObject({ records: later.events.length, caughtUp: true });
    expect(second.pipeline.position(key)).toMatchObject({ timestamp: later.events.at(-1)!.timestamp });
    // The bookmark replaces the start.
    expect(second.pipeline.position(startKey(target)) ?? undefined).toBeUndefined();
    expect((await finished(second)).sessions.map((x) => x.connectionId)).toEqual([9]);
  });

  it('a first read at --from that fails keeps --from: the next pass starts there, not earlier', async () => {
    const { s, collector } = await twoSessionsFromStart();
    await s.stop();
    const first = await pass([{ server: s }], { collector, from: minutes(5) });
    expect(first.result.instances[0]).toMatchObject({ records: 0, caughtUp: false, attempts: 3 });
    expect(first.result.instances[0]!.error).toContain('cannot reach');
    await s.restart();
    // Without --from, over collector.start: from the start the failed read was given.
    const second = await pass([{ server: s }], { collector, store: first.store });
    expect(auditCalls(s)[0]).toContain('"start":{"timestamp":"2026-11-02 09:05:00"}');
    expect(second.result.instances[0]).toMatchObject({ caughtUp: true });
    expect((await finished(second)).sessions.map((x) => x.connectionId)).toEqual([6]);
  });

  it('a first read at --from stopped by a signal (SIGINT, SIGTERM) before an event is committed keeps --from: the next pass starts there', async () => {
    const { s, collector } = await twoSessionsFromStart();
    const stop = new AbortController();
    const first = await pass([{ server: s }], {
      collector,
      from: minutes(5),
      signal: stop.signal,
      // Stopped while the instance is read: once connected.
      connecting: (c) =>
        c.then((session) => {
          stop.abort();
          return session;
        }),
    });
    expect(first.result.stopped).toBe(true);
    expect(first.result.records).toBe(0);
    expect(first.result.instances[0]).toMatchObject({
      caughtUp: false,
      position: { start: '2026-11-02T09:05:00.000Z' },
    });
    // Without --from, over collector.start: from the start the stopped read was given.
    const second = await pass([{ server: s }], { collector, store: first.store });
    expect(auditCalls(s).at(-1)).toContain('"start":{"timestamp":"2026-11-02 09:05:00"}');
    expect(second.result.instances[0]).toMatchObject({ caughtUp: true });
    expect((await finished(second)).sessions.map((x) => x.connectionId)).toEqual([6]);
  });

  it('the start kept for an instance with no event read yet is no bookmark to a release that reads one there', async () => {
    const log = new RawLog().session({ at: minutes(0), conn: 5, user: 'admin', queries: 1 });
    const s = await server(log);
    const first = await pass([{ server: s }], { from: minutes(30) });
    expect(first.result.instances[0]).toMatchObject({ records: 0, caughtUp: true });
    // What a release before the start was kept reads at the instance's key: a bookmark, or none.
    const [target] = instanceTargets(fleetConfig([{ server: s }]).config);
    const kept = first.pipeline.position<InstancePosition>(positionKey(target!));
    const session = await connectInstance(
      target!,
      secretReader(ENV, () => Promise.reject(new Error('no vault'))),
    );
    try {
      const reader = await AuditLogReader.open(session, target!);
      const read: Record<string, unknown>[] = [];
      for await (const batch of reader.read(kept ? { position: kept } : {}))
        read.push(...batch.records.map((r) => r.record));
      // Read from the start of the log as before, not told of a server that changed.
      expect(read.filter((r) => r.source === 'audit-gap')).toEqual([]);
      expect(read).toHaveLength(log.events.length);
    } finally {
      await session.close();
    }
    // This release still starts there.
    const second = await pass([{ server: s }], { store: first.store });
    expect(auditCalls(s).at(-1)).toContain('"start":{"timestamp":"2026-11-02 09:30:00"}');
    expect(second.result.instances[0]).toMatchObject({ records: 0, caughtUp: true });
  });

  it('starts a first read at collector.start, and at --from where both are given', async () => {
    const log = new RawLog()
      .session({ at: minutes(0), conn: 5, user: 'admin', queries: 1 })
      .session({ at: minutes(10), conn: 6, user: 'admin', queries: 1 })
      .session({ at: minutes(20), conn: 7, user: 'admin', queries: 1 });
    const s = await server(log);
    const configured = await pass([{ server: s }], {
      collector: { start: new Date(minutes(5)).toISOString() },
    });
    expect(auditCalls(s)[0]).toContain('"start":{"timestamp":"2026-11-02 09:05:00"}');
    expect((await finished(configured)).sessions.map((x) => x.connectionId)).toEqual([6, 7]);
    const given = await pass([{ server: s }], {
      collector: { start: new Date(minutes(5)).toISOString() },
      from: minutes(15),
    });
    expect(auditCalls(s).at(-1)).toContain('"start":{"timestamp":"2026-11-02 09:15:00"}');
    expect((await finished(given)).sessions.map((x) => x.connectionId)).toEqual([7]);
  });

  it('an event larger than the read buffer is skipped by the server: a counted audit.gap', async () => {
    const log = new RawLog()
      .connect({ at: minutes(0), conn: 5, user: 'admin' })
      .query({ at: minutes(1), conn: 5, user: 'admin', sql: 'SELECT 1' })
      .query({ at: minutes(2), conn: 5, user: 'admin', sql: 'SELECT big', pad: 40_000 })
      .query({ at: minutes(3), conn: 5, user: 'admin', sql: 'SELECT 3' })
      .disconnect({ at: minutes(4), conn: 5, user: 'admin' });
    const s = await server(log);
    const run = await pass([{ server: s }], { collector: { readBufferSize: 32_768 } });
    expect(run.result.instances[0]).toMatchObject({ records: 5, gaps: 1, caughtUp: true });
    const { alerts, sessions } = await finished(run);
    const gap = alerts.filter((a) => a.rule === 'audit.gap');
    expect(gap).toHaveLength(1);
    expect(gap[0]).toMatchObject({ severity: 'critical', details: { reason: 'oversized', skipped: 1 } });
    expect(sessions[0]!.counts.queries).toBe(2);
    // Fewer messages than the server keeps: SHOW WARNINGS has them all, nothing more is asked.
    expect(s.statements).not.toContain('SHOW COUNT(*) WARNINGS');
  });

  it.each([
    { name: 'collector.start', collector: { start: new Date(minutes(1)).toISOString() } },
    { name: 'collect --from', from: minutes(1) },
    { name: 'the oldest event kept' },
  ] as { name: string; collector?: Record<string, unknown>; from?: number }[])(
    'a first read from $name that finds only events skipped for size: one gap for them, not one per pass; what is written after them is read',
    async ({ collector, from }) => {
      // Before the start (when one is given) a session that fits, after it two events that do not.
      const log = new RawLog();
      if (from !== undefined || collector)
        log.session({ at: minutes(0), conn: 4, user: 'admin', queries: 1 });
      for (let i = 0; i < 2; i++)
        log.query({ at: minutes(2), conn: 5, user: 'admin', sql: `SELECT big${i}`, pad: 33_000 });
      const s = await server(log);
      const opts = {
        collector: { readBufferSize: 32_768, ...collector },
        ...(from !== undefined ? { from } : {}),
      };
      const first = await pass([{ server: s }], opts);
      expect(first.result.instances[0]).toMatchObject({ records: 1, gaps: 1, caughtUp: true });
      // The bookmark of an event skipped, not read, is kept apart: a release that reads a bookmark
      // at positionKey as that of an event read (and drops that event when it comes back) finds
      // none there, and the start of the first read is kept for it.
      const target = instanceTargets(fleetConfig([{ server: s }]).config)[0]!;
      expect(first.pipeline.position(positionKey(target))).toBeUndefined();
      expect(first.pipeline.position(startKey(target))).toEqual(
        from !== undefined || collector ? { start: new Date(minutes(1)).toISOString() } : undefined,
      );
      await first.pipeline.finish();
      // The same events, skipped again, are no new gap.
      const second = await pass([{ server: s }], { ...opts, store: first.store });
      expect(second.result.instances[0]).toMatchObject({ records: 0, gaps: 0, caughtUp: true });
      await second.pipeline.finish();
      // A session written after them is read, and one more event skipped is one more gap, of its own.
      const later = new RawLog();
      (later as unknown as { id: number }).id = 100;
      later
        .session({ at: minutes(5), conn: 9, user: 'admin', queries: 1 })
        .query({ at: minutes(7), conn: 9, user: 'admin', sql: 'SELECT big', pad: 33_000 });
      s.audit.append(later.events);
      const third = await pass([{ server: s }], { ...opts, store: first.store });
      expect(third.result.instances[0]).toMatchObject({ records: 4, gaps: 1, caughtUp: true });
      expect(third.pipeline.position(skippedKey(target))).toBeNull();
      const read = third.pipeline.position<InstancePosition>(positionKey(target));
      expect(read).toMatchObject({ serverUuid: s.catalogue.serverUuid });
      expect(read?.skipped).toBeUndefined();
      const { alerts, sessions } = await finished(third);
      expect(sessions.map((x) => x.connectionId)).toEqual([9]);
      const gaps = alerts.filter((a) => a.rule === 'audit.gap').map((a) => a.details);
      expect(gaps.map((d) => [d?.reason, d?.skipped])).toEqual([
        ['oversized', 2],
        ['oversized', 1],
      ]);
    },
  );

  /** A log with two events too large for a 32 KB buffer at 09:02, read once from 09:01: their bookmark is kept. */
  async function skippedAtFirstRead() {
    const log = new RawLog();
    for (let i = 0; i < 2; i++)
      log.query({ at: minutes(2), conn: 5, user: 'admin', sql: `SELECT big${i}`, pad: 33_000 });
    const s = await server(log);
    const first = await pass([{ server: s }], { collector: { readBufferSize: 32_768 }, from: minutes(1) });
    expect(first.result.instances[0]).toMatchObject({ records: 1, gaps: 1, caughtUp: true });
    await first.pipeline.finish();
    return { s, store: first.store, target: instanceTargets(fleetConfig([{ server: s }]).config)[0]! };
  }

  it('a later --from, other than that of the first read, wins over the bookmark of events skipped at a first read (no event read yet): with a larger buffer they are read', async () => {
    const { s, store, target } = await skippedAtFirstRead();
    const second = await pass([{ server: s }], { store, from: minutes(0) });
    expect(auditCalls(s).at(-1)).toContain('"start":{"timestamp":"2026-11-02 09:00:00"}');
    expect(second.result.instances[0]).toMatchObject({ records: 2, gaps: 0, caughtUp: true });
    expect(second.pipeline.position(skippedKey(target))).toBeNull();
    expect(second.pipeline.position(positionKey(target))).toMatchObject({ timestamp: '2026-11-02 09:02:00' });
  });

  it('a later --from past the events skipped at a first read, finding nothing, is the start kept: the bookmark of those events is not read from again', async () => {
    const { s, store, target } = await skippedAtFirstRead();
    const second = await pass([{ server: s }], { store, from: minutes(10) });
    expect(second.result.instances[0]).toMatchObject({
      records: 0,
      caughtUp: true,
      position: { start: '2026-11-02T09:10:00.000Z' },
    });
    expect(second.pipeline.position(skippedKey(target))).toBeNull();
    await second.pipeline.finish();
    const third = await pass([{ server: s }], { store });
    expect(auditCalls(s).at(-1)).toContain('"start":{"timestamp":"2026-11-02 09:10:00"}');
    expect(third.result.instances[0]).toMatchObject({ records: 0, caughtUp: true });
  });

  it('an event skipped for size at a first read, and reported, is read once the read buffer is large enough', async () => {
    const log = new RawLog().query({
      at: minutes(2),
      conn: 5,
      user: 'admin',
      sql: 'SELECT big',
      pad: 33_000,
    });
    const s = await server(log);
    const first = await pass([{ server: s }], { collector: { readBufferSize: 32_768 } });
    expect(first.result.instances[0]).toMatchObject({ records: 1, gaps: 1 });
    expect(first.result.instances[0]!.position).toMatchObject({ id: 0, skipped: true });
    await first.pipeline.finish();
    // The default buffer (4 MB) holds it: the event comes back at its bookmark and is read, no new gap.
    const second = await pass([{ server: s }], { store: first.store });
    expect(second.result.instances[0]).toMatchObject({ records: 1, gaps: 0, repeated: 0, caughtUp: true });
    expect(second.result.instances[0]!.position).not.toHaveProperty('skipped');
  });

  /** A session with `big` events larger than a 32 KB read buffer between its two queries. */
  function bigEventsLog(big: number): RawLog {
    const log = new RawLog()
      .connect({ at: minutes(0), conn: 5, user: 'admin' })
      .query({ at: minutes(1), conn: 5, user: 'admin', sql: 'SELECT 1' });
    for (let i = 0; i < big; i++)
      log.query({ at: minutes(2), conn: 5, user: 'admin', sql: `SELECT big${i}`, pad: 33_000 });
    return log
      .query({ at: minutes(3), conn: 5, user: 'admin', sql: 'SELECT 3' })
      .disconnect({ at: minutes(4), conn: 5, user: 'admin' });
  }

  /**
   * One read of a session with `big` events larger than the read buffer between its two queries:
   * the server skips them, one gap says so. Returns the server and the gap's details.
   */
  async function readBigEvents(
    big: number,
    opts: TestServerOptions,
    prepare?: (s: HeatWaveTestServer) => void,
  ) {
    const s = await server(bigEventsLog(big), opts);
    prepare?.(s);
    const run = await pass([{ server: s }], { collector: { readBufferSize: 32_768 } });
    expect(run.result.instances[0]).toMatchObject({ records: 5, gaps: 1, caughtUp: true });
    expect(run.result.instances[0]!.error).toBeUndefined();
    // One call read it all.
    expect(auditCalls(s)).toHaveLength(1);
    const { alerts, sessions } = await finished(run);
    expect(sessions[0]!.counts.queries).toBe(2);
    const gap = alerts.filter((a) => a.rule === 'audit.gap');
    expect(gap).toHaveLength(1);
    expect(gap[0]!.details).toMatchObject({ reason: 'oversized' });
    return { s, details: gap[0]!.details!, detail: String(gap[0]!.details?.detail) };
  }

  /** readBigEvents from a server that keeps 10 messages of a statement, asked once for their count. */
  async function readAskingCount(
    big: number,
    opts: TestServerOptions,
    prepare?: (s: HeatWaveTestServer) => void,
  ) {
    const read = await readBigEvents(big, { maxErrorCount: 10, ...opts }, prepare);
    expect(read.s.statements.filter((q) => q === 'SHOW COUNT(*) WARNINGS')).toHaveLength(1);
    return read;
  }

  /** readBigEvents, whose gap counts the `big` events skipped. */
  async function readPastBigEvents(big: number, opts: TestServerOptions) {
    const { s, details, detail } = await readBigEvents(big, opts);
    expect(details.skipped).toBe(big);
    expect(detail).toContain(`the server warned ${big} time(s) while reading (codes 3200)`);
    return { s, detail };
  }

  it.each([
    { name: 'beyond the 1,024 messages MySQL keeps', maxErrorCount: undefined, big: 1_100, kept: 1_024 },
    { name: 'beyond a max_error_count set lower', maxErrorCount: 10, big: 25, kept: 10 },
    { name: 'as many as the server keeps', maxErrorCount: 10, big: 10, kept: 10 },
  ])(
    'events skipped for size $name are counted exactly, from the server’s warning count',
    async ({ maxErrorCount, big, kept }) => {
      const { s, detail } = await readPastBigEvents(
        big,
        maxErrorCount === undefined ? {} : { maxErrorCount },
      );
      if (big > kept)
        expect(detail).toContain(`the server kept the messages of the first ${kept} only (max_error_count)`);
      else expect(detail).not.toContain('max_error_count');
      // The server kept as many messages as it may: their count was asked for, once.
      expect(s.statements.filter((q) => q === 'SHOW COUNT(*) WARNINGS')).toHaveLength(1);
    },
  );

  it.each([
    { answer: 'null', big: 25 },
    { answer: 'null', big: 5 },
    { answer: 'unknown', big: 25 },
    { answer: 'unknown', big: 5 },
  ] as const)(
    'a server whose @@max_error_count is $answer: $big events skipped for size are counted exactly, and the gap says how',
    async ({ answer, big }) => {
      // It keeps 10 messages of a statement, and does not say so.
      const { s, detail } = await readPastBigEvents(big, {
        maxErrorCount: 10,
        maxErrorCountVariable: answer,
      });
      expect(detail).toContain(
        "counted from the server's warning count: it does not report how many messages it keeps (max_error_count)",
      );
      if (big > 10) expect(detail).toContain('it kept the messages of the first 10 only');
      else expect(detail).not.toContain('kept the messages');
      // Not knowing how many messages the server keeps, the collector asks for their count.
      expect(s.statements.filter((q) => q === 'SHOW COUNT(*) WARNINGS')).toHaveLength(1);
    },
  );

  it.each([
    { answer: 'unknown', big: 25, kept: 10 },
    { answer: 'unknown', big: 5, kept: 5 },
    { answer: 'null', big: 25, kept: 10 },
    { answer: 'reported', big: 25, kept: 10 },
  ] as const)(
    'a server whose @@max_error_count is $answer and that refuses to count warnings: $big events skipped for size are a gap of unknown size, the events are read',
    async ({ answer, big, kept }) => {
      const { details, detail } = await readAskingCount(big, { maxErrorCountVariable: answer }, (server) =>
        server.failQuery(/^SHOW COUNT\(\*\) WARNINGS$/i, 1064, 'You have an error in your SQL syntax'),
      );
      // Unknown, not 0 nor the messages kept.
      expect(details).not.toHaveProperty('skipped');
      expect(detail).toContain(`the server warned at least ${kept} time(s) while reading (codes 3200)`);
      expect(detail).toContain(`how many is unknown: the server kept ${kept} message(s)`);
      expect(detail).toContain('refused to count them all');
    },
  );

  it.each([
    { countAnswer: 'null', shown: 'NULL', answer: 'unknown', big: 25, kept: 10 },
    { countAnswer: 'null', shown: 'NULL', answer: 'unknown', big: 5, kept: 5 },
    { countAnswer: 'null', shown: 'NULL', answer: 'reported', big: 25, kept: 10 },
    { countAnswer: 'text', shown: 'not a number', answer: 'null', big: 25, kept: 10 },
  ] as const)(
    'a server whose @@max_error_count is $answer and whose warning count is $shown: $big events skipped for size are a gap of unknown size, not 0 nor the messages kept',
    async ({ countAnswer, shown, answer, big, kept }) => {
      const { details, detail } = await readAskingCount(big, {
        maxErrorCountVariable: answer,
        warningCountAnswer: countAnswer,
      });
      expect(details).not.toHaveProperty('skipped');
      expect(detail).toContain(`the server warned at least ${kept} time(s) while reading (codes 3200)`);
      expect(detail).toContain(
        `how many is unknown: the server kept ${kept} message(s), ${answer === 'reported' ? 'as many as it keeps' : 'does not report how many it keeps'} (max_error_count), and did not count them all (its warning count was ${shown})`,
      );
    },
  );

  it.each([
    { answer: 'reported', big: 25, kept: 10 },
    { answer: 'unknown', big: 25, kept: 10 },
    { answer: 'unknown', big: 5, kept: 5 },
  ] as const)(
    'a server whose @@max_error_count is $answer and whose warning count is smaller than the $kept messages it kept: $kept events skipped, the messages win, and the gap says so',
    async ({ answer, big, kept }) => {
      const { details, detail } = await readAskingCount(big, {
        maxErrorCountVariable: answer,
        warningCountAnswer: 'one',
      });
      expect(details.skipped).toBe(kept);
      expect(detail).toContain(`the server warned ${kept} time(s) while reading (codes 3200)`);
      expect(detail).toContain(
        'counted from the messages the server kept: its warning count (1) is smaller, and each message is a warning',
      );
      expect(detail).not.toContain("counted from the server's warning count");
    },
  );

  it.each([
    { code: 1317, message: 'Query execution was interrupted' },
    { code: 1053, message: 'Server shutdown in progress' },
  ])(
    'a server that fails to count warnings with error $code, no refusal of the statement: the read fails, no gap of unknown size',
    async ({ code, message }) => {
      const s = await server(bigEventsLog(25), { maxErrorCount: 10 });
      s.failQuery(/^SHOW COUNT\(\*\) WARNINGS$/i, code, message);
      const run = await pass([{ server: s }], { collector: { readBufferSize: 32_768 } });
      // The call's events are not handed out: the next pass reads them again and counts.
      expect(run.result.instances[0]).toMatchObject({ records: 0, gaps: 0, caughtUp: false });
      expect(run.result.instances[0]!.error).toContain(`(error ${code})`);
      expect(run.result.instances[0]!.error).toContain('counting');
      const { alerts } = await finished(run);
      expect(alerts.filter((a) => a.rule === 'audit.gap')).toEqual([]);
    },
  );

  it('a log rotated and pruned past the bookmark is a gap with the range not seen', async () => {
    const log = new RawLog().session({ at: minutes(0), conn: 5, user: 'admin', queries: 1 });
    const s = await server(log);
    const first = await pass([{ server: s }]);
    const later = new RawLog();
    (later as unknown as { id: number }).id = 50;
    later
      .session({ at: minutes(30), conn: 7, user: 'admin', queries: 2 })
      .session({ at: minutes(40), conn: 8, user: 'admin', queries: 1 });
    s.audit.append(later.events);
    // Rotation deletes everything before the second session of the new events.
    s.audit.prune({ timestamp: String(later.events[4]!.timestamp), id: Number(later.events[4]!.id) });
    const second = await pass([{ server: s }], { store: first.store });
    expect(second.result.instances[0]).toMatchObject({ gaps: 1, caughtUp: true });
    const { alerts } = await finished(second);
    const gap = alerts.find((a) => a.rule === 'audit.gap')!;
    expect(gap.details).toMatchObject({
      reason: 'pruned',
      from: '2026-11-02T09:00:02.000Z',
      to: '2026-11-02T09:40:00.000Z',
    });
    expect(gap.title).toContain('prod-orders/localhost');
  });

  it('another server behind the address (failover, replacement) and a log that went back in time are gaps', async () => {
    const log = new RawLog().session({ at: minutes(10), conn: 5, user: 'admin', queries: 1 });
    const s = await server(log);
    const first = await pass([{ server: s }]);
    s.catalogue.serverUuid = '7f0e1a2b-0000-11e1-9e33-c80aa9429999';
    const after = new RawLog();
    after.session({ at: minutes(20), conn: 3, user: 'admin', queries: 1 });
    s.audit = new AuditLog([
      ...new RawLog()
        .session({ at: minutes(1), conn: 1, user: 'admin', queries: 0 })
        .events.map((e, i) => ({ ...e, id: 500 + i })),
      ...after.events.map((e, i) => ({ ...e, id: 600 + i })),
    ]);
    const second = await pass([{ server: s }], { store: first.store });
    expect(second.result.instances[0]).toMatchObject({ gaps: 1, records: 1 + after.events.length });
    // The same server whose log now ends before the bookmark: reset.
    s.audit = new AuditLog(
      new RawLog().session({ at: minutes(2), conn: 2, user: 'admin', queries: 0 }).events,
    );
    const third = await pass([{ server: s }], { store: first.store });
    expect(third.result.instances[0]).toMatchObject({ gaps: 1, records: 3 });
    const { alerts } = await finished(third);
    expect(
      alerts
        .filter((a) => a.rule === 'audit.gap')
        .map((a) => a.details?.reason)
        .sort(),
    ).toEqual(['log-reset', 'server-changed']);
  });

  /** A first pass up to 09:10:02, then the server's clock steps back 4 minutes and it writes on. */
  async function clockStepped(more: (after: RawLog) => RawLog) {
    const s = await server(new RawLog().session({ at: minutes(10), conn: 5, user: 'admin', queries: 1 }));
    const first = await pass([{ server: s }]);
    const after = new RawLog();
    (after as unknown as { id: number }).id = 100;
    s.audit.append(more(after.session({ at: minutes(6), conn: 7, user: 'admin', queries: 1 })).events);
    return { s, first, written: after.events.length };
  }

  it('events written after the clock stepped back are read, not taken for ones read before', async () => {
    const { s, first, written } = await clockStepped((after) =>
      after.session({ at: minutes(12), conn: 8, user: 'admin', queries: 0 }),
    );
    const second = await pass([{ server: s }], { store: first.store });
    expect(second.result.instances[0]).toMatchObject({ records: written, repeated: 1, gaps: 0 });
    const { sessions } = await finished(second);
    expect(sessions.map((x) => x.connectionId).sort()).toEqual([5, 7, 8]);
  });

  it('a log whose newest event is older than the bookmark after a clock step is read on, not reset', async () => {
    const { s, first, written } = await clockStepped((after) => after);
    const second = await pass([{ server: s }], { store: first.store });
    expect(second.result.instances[0]).toMatchObject({ records: written, repeated: 1, gaps: 0 });
    // The next pass stands on an event written after the step: nothing is new, nothing is a gap.
    const third = await pass([{ server: s }], { store: first.store });
    expect(third.result.instances[0]).toMatchObject({ records: 0, gaps: 0, caughtUp: true });
    const { sessions, alerts } = await finished(third);
    expect(sessions.map((x) => x.connectionId).sort()).toEqual([5, 7]);
    expect(alerts.filter((a) => a.rule === 'audit.gap')).toEqual([]);
  });

  it('a clock step back of the lateness or more is a clock-step gap before the events after it, which are applied', async () => {
    // 09:40, then the clock goes back 35 minutes; it jumps to 09:50, then goes back 10 minutes.
    const log = new RawLog()
      .session({ at: minutes(40), conn: 5, user: 'admin', queries: 1 })
      .session({ at: minutes(5), conn: 7, user: 'admin', queries: 1 })
      .session({ at: minutes(50), conn: 8, user: 'admin', queries: 0 })
      .session({ at: minutes(40), conn: 6, user: 'admin', queries: 0 });
    const s = await server(log);
    const first = await pass([{ server: s }]);
    expect(first.result.instances[0]).toMatchObject({ gaps: 1, records: log.events.length + 1 });
    // The next pass goes back 15 minutes from the last event read, 25 from the latest.
    const more = new RawLog();
    (more as unknown as { id: number }).id = 100;
    s.audit.append(more.session({ at: minutes(25), conn: 9, user: 'admin', queries: 0 }).events);
    const forwarded: Record<string, unknown>[] = [];
    const second = await pass([{ server: s }], { store: first.store, forward: forwarded });
    expect(second.result.instances[0]).toMatchObject({ gaps: 1, records: 3 });
    // The gap record comes right before the first event written after the step.
    expect(forwarded.map((r) => (r.event as { id?: number } | undefined)?.id ?? r.reason)).toEqual([
      'clock-step',
      100,
      101,
    ]);
    const { sessions, alerts } = await finished(second);
    expect(sessions.map((x) => x.connectionId).sort()).toEqual([5, 6, 7, 8, 9]);
    expect(
      alerts.filter((a) => a.rule === 'audit.gap').map((a) => [a.severity, a.details?.from, a.details?.to]),
    ).toEqual([
      ['high', '2026-11-02T09:40:02.000Z', '2026-11-02T09:05:00.000Z'],
      ['high', '2026-11-02T09:50:01.000Z', '2026-11-02T09:25:00.000Z'],
    ]);
  });
});

describe('collector: a fleet', () => {
  it("one pass reads the whole fleet: a login user's failures spread over two DB systems make one fleet-wide burst", async () => {
    // admin fails at minutes 0, 2, 4 on prod-orders and 1, 3 on prod-billing, each from its own address.
    const failures = (ms: number[]) => {
      const log = new RawLog();
      for (const m of ms)
        log.connect({ at: minutes(m), conn: 10 + m, user: 'admin', ip: `198.51.100.${m + 1}`, status: 1045 });
      return log;
    };
    const orders = await server(failures([0, 2, 4]));
    const billing = await server(failures([1, 3]));
    const { alerts } = await finished(await pass([{ server: orders }, { server: billing, db: DB2 }]));
    expect(
      alerts
        .filter((a) => a.rule === 'auth.failure-burst')
        .map((a) => [a.title, a.dbSystem, a.details?.dbSystems, a.details?.sourceIpCount]),
    ).toEqual([
      ['5 failed logins for login user admin on 2 DB systems', null, ['prod-billing', 'prod-orders'], 5],
    ]);
  });

  it('an instance that is down does not stop the others; it is retried, then reported', async () => {
    const up = await server(new RawLog().session({ at: minutes(0), conn: 5, user: 'admin', queries: 2 }));
    const down = await server(new RawLog().session({ at: minutes(0), conn: 6, user: 'admin', queries: 2 }));
    await down.stop();
    const run = await pass([{ server: up }, { server: down, db: DB2 }]);
    const [a, b] = run.result.instances;
    expect(a).toMatchObject({ caughtUp: true, records: 4 });
    expect(b).toMatchObject({ caughtUp: false, records: 0, attempts: 3 });
    expect(b!.error).toMatch(/prod-billing\/localhost:\d+: cannot reach localhost:\d+ \(ECONNREFUSED\)/);
  });

  it('connects to the instances at once: one slow to answer holds up the pass by its own wait only', async () => {
    const logs = [5, 6, 7].map((conn) =>
      new RawLog().session({ at: minutes(conn), conn, user: 'admin', queries: 2 }),
    );
    const servers = await Promise.all(logs.map((l) => server(l)));
    let inFlight = 0;
    let most = 0;
    const run = await pass(
      [
        { server: servers[0]! },
        { server: servers[1]!, name: 'replica-1', role: 'replica' },
        { server: servers[2]!, db: DB2 },
      ],
      {
        connecting: async (connect) => {
          most = Math.max(most, ++inFlight);
          try {
            return await connect;
          } finally {
            inFlight--;
          }
        },
      },
    );
    expect(most).toBe(3);
    expect(run.result.instances.map((i) => [i.caughtUp, i.records])).toEqual([
      [true, 4],
      [true, 4],
      [true, 4],
    ]);
  });

  it('a connection dropped in the middle of a read is resumed: nothing lost, nothing read twice', async () => {
    const log = new RawLog();
    for (let i = 0; i < 5; i++) log.session({ at: minutes(i), conn: 10 + i, user: 'admin', queries: 4 });
    const clean = await finished(
      await pass([{ server: await server(log) }], { collector: { batchSize: 3 } }),
    );
    const flaky = await server(log);
    flaky.dropOnRead(3);
    const run = await pass([{ server: flaky }], { collector: { batchSize: 3 } });
    expect(run.result.instances[0]).toMatchObject({
      attempts: 2,
      caughtUp: true,
      records: log.events.length,
      repeated: 1,
    });
    const got = await finished(run);
    expect(got.sessions).toEqual(clean.sessions);
    expect(run.pipeline.stats).toMatchObject({ duplicates: 0, processed: log.events.length });
  });

  it('a read replica is read too; its sessions and keys carry the instance', async () => {
    const primary = await server(
      new RawLog().session({ at: minutes(0), conn: 5, user: 'admin', queries: 1 }),
    );
    const replica = await server(
      new RawLog().session({ at: minutes(0), conn: 5, user: 'admin', queries: 1 }),
    );
    const run = await pass([{ server: primary }, { server: replica, role: 'replica', name: 'replica-1' }]);
    const { sessions } = await finished(run);
    expect(sessions.map((s) => [s.id, s.instance]).sort()).toEqual([
      ['ocid1.mysqldbsystem.oc1..prod1/replica-1:5:2026-11-02T09:00:00.000Z', 'replica-1'],
      ['ocid1.mysqldbsystem.oc1..prod1:5:2026-11-02T09:00:00.000Z', undefined],
    ]);
  });

  it("a gap record says whether its instance is the primary: a replica's failover is no primary's", async () => {
    const primary = await server(
      new RawLog().session({ at: minutes(0), conn: 5, user: 'admin', queries: 1 }),
    );
    const replica = await server(
      new RawLog().session({ at: minutes(0), conn: 6, user: 'admin', queries: 1 }),
    );
    const fleet: Fleet = [{ server: primary }, { server: replica, role: 'replica', name: 'replica-1' }];
    const first = await pass(fleet);
    for (const s of [primary, replica])
      s.catalogue.serverUuid = `7f0e1a2b-0000-11e1-9e33-c80aa94299${s === primary ? '01' : '02'}`;
    const forward: Record<string, unknown>[] = [];
    await pass(fleet, { store: first.store, forward });
    const gaps = forward.filter((r) => r.source === 'audit-gap');
    // The primary is named by its endpoint (host:port).
    expect(
      gaps.map((g) => [g.instance === 'replica-1' ? g.instance : 'primary', g.reason, g.primary]).sort(),
    ).toEqual([
      ['primary', 'server-changed', true],
      ['replica-1', 'server-changed', false],
    ]);
  });

  it('stopping early commits what was read and closes the read sequence', async () => {
    const log = new RawLog();
    for (let i = 0; i < 6; i++) log.session({ at: minutes(i), conn: 10 + i, user: 'admin', queries: 2 });
    const s = await server(log);
    const stop = new AbortController();
    const run = await pass([{ server: s }], {
      collector: { batchSize: 2 },
      batchSize: 2,
      signal: stop.signal,
      onBatch: () => stop.abort(),
    });
    expect(run.result.stopped).toBe(true);
    expect(run.result.instances[0]!.caughtUp).toBe(false);
    expect(s.statements).toContain("SELECT audit_log_read('null') AS events");
    const next = await pass([{ server: s }], { store: run.store });
    expect(next.result.instances[0]!.records + run.result.records).toBe(log.events.length);
  });
});

describe('collector: access', () => {
  it('a wrong password is a clear error that names its source, never the password; not retried', async () => {
    const s = await server(new RawLog());
    const run = await pass([{ server: s }], { env: { HW_TEST_COLLECTOR_PW: 'wrong password' } });
    const [r] = run.result.instances;
    expect(r!.attempts).toBe(1);
    expect(r!.error).toBe(
      `prod-orders/localhost:${s.address.port}: access denied for the collector user hwaudit (check the password source: environment variable HW_TEST_COLLECTOR_PW)`,
    );
    expect(JSON.stringify(run.result)).not.toContain('wrong password');
    expect(JSON.stringify(run.result)).not.toContain(PASSWORD);
  });

  it('a user without AUDIT_ADMIN is told which privilege to grant', async () => {
    const s = await server(new RawLog(), { accounts: [{ ...COLLECTOR_ACCOUNT, grants: [] }] });
    const [r] = (await pass([{ server: s }])).result.instances;
    expect(r!.error).toContain('lacks a privilege');
    expect(r!.error).toContain('AUDIT_ADMIN');
  });

  it('verify-identity accepts the server certificate signed by the configured CA and refuses another CA', async () => {
    const log = new RawLog().session({ at: minutes(0), conn: 5, user: 'admin', queries: 1 });
    const s = await server(log);
    const ok = await pass([{ server: s }], { collector: { tls: 'verify-identity', ca: tls.caFile } });
    expect(ok.result.instances[0]).toMatchObject({ caughtUp: true, records: 3 });
    const bad = await pass([{ server: s }], { collector: { tls: 'verify-identity', ca: tls.otherCaFile } });
    expect(bad.result.instances[0]).toMatchObject({ caughtUp: false, attempts: 1 });
    expect(bad.result.instances[0]!.error).toMatch(/TLS failed/);
  });

  it('tls: required refuses a server without TLS', async () => {
    const plain = await HeatWaveTestServer.start({ accounts: [COLLECTOR_ACCOUNT], audit: new AuditLog() });
    servers.push(plain);
    const [r] = (await pass([{ server: plain }])).result.instances;
    expect(r!.error).toMatch(/TLS failed \(HANDSHAKE_NO_SSL_SUPPORT\)/);
  });

  it('a server without the audit log, or with a non-JSON log, says what to fix', async () => {
    const none = await server(new RawLog(), { flavor: 'none' });
    expect((await pass([{ server: none }])).result.instances[0]!.error).toContain(
      'no audit log plugin or component is installed',
    );
    const xml = await server(new RawLog(), { auditVariables: { format: 'NEW' } });
    expect((await pass([{ server: xml }])).result.instances[0]!.error).toContain(
      'the audit log format is NEW; audit_log_read() reads JSON logs only (set audit_log_format=JSON)',
    );
  });

  it('reads the 9.x audit log component the same way', async () => {
    const s = await server(new RawLog().session({ at: minutes(0), conn: 5, user: 'admin', queries: 1 }), {
      flavor: 'component',
    });
    const run = await pass([{ server: s }]);
    expect(run.result.instances[0]).toMatchObject({
      caughtUp: true,
      records: 3,
      server: { flavor: 'component' },
    });
    expect(s.statements).toContain('SET SESSION audit_log.read_buffer_size = 4194304');
  });
});
