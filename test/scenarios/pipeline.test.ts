// The pipeline's own duties, on a real SQLite store: every record accounted for (processed,
// duplicate, ignored or dead letter), events held until the watermark passes them and applied in event-time
// order, late and too-late events, timers up to `asOf`, restart, and delivery to every sink once.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Alert, recordKey } from '../../schemas/alert.js';
import type { ConfigInput } from '../../schemas/config.js';
import type { CanonicalEvent, SyncDirectoryEvent } from '../../schemas/events.js';
import type { Snapshot } from '../../schemas/snapshot.js';
import { at, db, GROUPS, gap, iam, USERS } from '../../shared/detect/timeline.js';
import type { AlertSink, SendContext, SinkState } from '../../shared/emit/sink.js';
import { AuditError } from '../../shared/errors.js';
import { type DecodedItem, Pipeline } from '../../shared/pipeline.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { toIso } from '../../shared/time.js';
import { collect } from '../helpers/collect.js';
import { testConfig } from '../helpers/run-timeline.js';

const dir = mkdtempSync(join(tmpdir(), 'hwaudit-pipeline-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const storeFile = () => join(dir, `state-${++files}.sqlite`);

const items = (events: CanonicalEvent[]): DecodedItem[] => events.map((event) => ({ type: 'event', event }));
/** An OCI Audit event that concerns nothing, at `minute`: only its time comes (see DecodedItem). */
const ignored = (minute: number, count?: number): DecodedItem =>
  count === undefined ? { type: 'ignored', ts: at(minute) } : { type: 'ignored', ts: at(minute), count };
const dead: DecodedItem = {
  type: 'dead',
  dead: { code: 'JSON_INVALID', source: 'test', message: 'not JSON' },
};

function open(
  store: SqliteStore,
  opts: { config?: Partial<ConfigInput>; sinks?: AlertSink[]; durablePending?: boolean } = {},
) {
  const { config, rules } = testConfig(opts.config);
  return Pipeline.open({
    config,
    rules,
    store,
    ...(opts.sinks ? { sinks: opts.sinks } : {}),
    ...(opts.durablePending === undefined ? {} : { durablePending: opts.durablePending }),
  });
}

class RecordingSink implements AlertSink {
  readonly sends: Alert[][] = [];
  constructor(readonly name: string) {}
  async send(alerts: Alert[]): Promise<void> {
    this.sends.push(alerts);
  }
}

describe('pipeline accounting', () => {
  it('counts every record once: processed, duplicate (in a batch, buffered or already applied), ignored or dead letter', async () => {
    const store = SqliteStore.open(':memory:');
    const p = await open(store);
    const early = db.connect({ at: at(0), conn: 1, account: 'app' });
    const later = db.connect({ at: at(30), conn: 2, account: 'app' });
    await p.ingest([...items([early, early]), dead, ...items([later]), ignored(20)]);
    expect(p.watermark).toBe(at(10));
    expect(p.latestEventTime).toBe(at(30));
    expect(p.stats).toMatchObject({ received: 5, processed: 1, duplicates: 1, ignored: 1 });
    // Folded by a host: three records, the latest of them at 25.
    await p.ingest([...items([later, early]), dead, ignored(25, 3)]);
    await p.finish();
    expect(p.stats).toEqual({
      received: 11,
      processed: 2,
      duplicates: 3,
      ignored: 4,
      late: 0,
      deadLetters: { JSON_INVALID: 2 },
      alerts: 1,
      alertsByRule: { 'access.local-account': 1 },
      resolutions: 0,
    });
    expect((await collect(store.deadLetters())).length).toBe(2);
  });

  it('counts resolution records apart from alerts', async () => {
    const p = await open(SqliteStore.open(':memory:'));
    await p.ingest(
      items([
        iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg }),
        iam.removed({ at: at(300), user: USERS.bob, group: GROUPS.bg }),
      ]),
    );
    await p.finish();
    // The grant and its removal are privileged-group changes; the removal resolves the stale grant.
    expect(p.stats).toMatchObject({
      alerts: 3,
      alertsByRule: { 'iam.privileged-group-change': 2, 'break-glass.stale': 1 },
      resolutions: 1,
    });
  });

  it('an empty pipeline has no watermark and no latest event time', async () => {
    const p = await open(SqliteStore.open(':memory:'));
    await p.ingest([dead]);
    expect(p.watermark).toBeUndefined();
    expect(p.latestEventTime).toBeUndefined();
    expect(p.stats).toMatchObject({ received: 1, processed: 0, deadLetters: { JSON_INVALID: 1 } });
  });

  it('counts what correlation could not use: removals of unknown memberships, statements of unknown connections', async () => {
    const p = await open(SqliteStore.open(':memory:'));
    await p.ingest(
      items([
        iam.removed({ at: at(0), membershipId: 'ocid1.groupmembership.oc1..unknown' }),
        db.query({ at: at(1), conn: 77, account: 'admin', sqlCommand: 'select', sql: 'SELECT 1' }),
      ]),
    );
    await p.finish();
    expect(p.correlation).toMatchObject({ unresolvedMemberships: 1, orphanEvents: 1, unknownGroups: 0 });
  });
});

describe('watermark', () => {
  it('holds events until the watermark passes them; advancing never moves it back', async () => {
    const p = await open(SqliteStore.open(':memory:'));
    await p.ingest(
      items([
        db.connect({ at: at(30), conn: 2, account: 'app' }),
        db.connect({ at: at(0), conn: 1, account: 'app' }),
      ]),
    );
    expect(p.stats.processed).toBe(1);
    await p.advance(at(5));
    expect(p.watermark).toBe(at(10));
    expect(p.stats.processed).toBe(1);
    await p.advance(at(30));
    expect(p.watermark).toBe(at(30));
    expect(p.stats.processed).toBe(2);
  });

  it('an event at or before the released watermark is late: applied at once, in event-time order', async () => {
    const store = SqliteStore.open(':memory:');
    const p = await open(store);
    // Another source moves the watermark (a MySQL log's own late events are redeliveries: below).
    await p.ingest(items([iam.signOn({ at: at(60), user: USERS.dave, ip: '10.9.9.9' })]));
    expect(p.watermark).toBe(at(40));
    const connect = db.connect({ at: at(30), conn: 1, account: 'admin' });
    const disconnect = db.disconnect({ at: at(40), conn: 1, account: 'admin' });
    await p.ingest(items([disconnect, connect]));
    expect(p.stats).toMatchObject({ late: 2, processed: 2 });
    await p.finish();
    const session = (await collect(store.sessions())).find((s) => s.connectKey === connect.key);
    expect(session?.disconnectTime).toBe(disconnect.time);
  });

  it('drops an event older than the retention horizon as a TOO_LATE dead letter; one at the horizon is late', async () => {
    const store = SqliteStore.open(':memory:');
    const p = await open(store, { config: { retention: 'P1D' } });
    await p.ingest(items([iam.signOn({ at: at(3 * 24 * 60), user: USERS.dave, ip: '10.9.9.9' })]));
    const horizon = at(3 * 24 * 60 - 20) - 24 * 3_600_000;
    await p.ingest(
      items([
        db.connect({ at: horizon, conn: 1, account: 'admin' }),
        db.connect({ at: horizon - 1_000, conn: 2, account: 'admin' }),
      ]),
    );
    expect(p.stats).toMatchObject({ late: 1, processed: 1, deadLetters: { TOO_LATE: 1 } });
    expect((await collect(store.deadLetters())).length).toBe(1);
  });

  it('forgets seen keys behind the retention horizon', async () => {
    const store = SqliteStore.open(':memory:');
    const p = await open(store, { config: { retention: 'P1D' } });
    const old = db.connect({ at: at(0), conn: 1, account: 'admin' });
    await p.ingest(items([old]));
    await p.finish();
    expect(await store.filterSeen([old])).toEqual(new Set([old.key]));
    await p.ingest(items([db.connect({ at: at(3 * 24 * 60), conn: 9, account: 'admin' })]));
    expect(await store.filterSeen([old])).toEqual(new Set());
  });

  it("a snapshot's event waits for the watermark without moving it: its time is the clock's", async () => {
    const p = await open(SqliteStore.open(':memory:'));
    await p.ingest(items([db.connect({ at: at(0), conn: 1, account: 'app' })]));
    const observed: SyncDirectoryEvent = {
      source: 'sync',
      kind: 'membership_added',
      key: `sync:s2:membership_added:${USERS.bob}:${GROUPS.bg}`,
      time: toIso(at(120)),
      ts: at(120),
      observed: {
        snapshot: 's2',
        previousSnapshot: 's1',
        since: toIso(at(-60)),
        change: 'bob added to BreakGlass',
      },
      actor: {},
      user: { id: USERS.bob, name: 'bob@example.com' },
      group: { id: GROUPS.bg, name: 'BreakGlass' },
    };
    await p.ingest(items([observed]));
    expect(p.latestEventTime).toBe(at(0));
    expect(p.watermark).toBe(at(-20));
    await p.ingest(items([db.connect({ at: at(100), conn: 2, account: 'app' })]));
    expect(p.watermark).toBe(at(80));
    expect(p.stats.processed).toBe(1);
    await p.advance(at(120));
    expect(p.stats).toMatchObject({ processed: 3, late: 0 });
  });

  it('an IAM event redelivered while buffered, or at exactly the released watermark, is a duplicate', async () => {
    const store = SqliteStore.open(':memory:');
    const p = await open(store);
    const signOn = iam.signOn({ at: at(60), user: USERS.dave, ip: '10.9.9.9' });
    await p.ingest(items([signOn]));
    await p.ingest(items([signOn]));
    expect(p.stats).toMatchObject({ processed: 0, duplicates: 1 });
    await p.advance(at(60));
    expect(p.watermark).toBe(signOn.ts);
    await p.ingest(items([{ ...signOn }]));
    expect(p.stats).toMatchObject({ processed: 1, duplicates: 2, late: 0 });
    expect(await store.filterSeen([signOn])).toEqual(new Set([signOn.key]));
  });

  it('an ignored event moves the clock as an event there would, and is neither buffered nor remembered', async () => {
    // A quiet tenancy: after the grant, only events of other services arrive.
    const store = SqliteStore.open(':memory:');
    const p = await open(store);
    const grant = iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg });
    const raised = [...(await p.ingest(items([grant])))];
    expect(await store.loadPending()).toHaveLength(1);
    raised.push(...(await p.ingest([ignored(30), ignored(300)])));
    // Released by their times (minus the lateness), the grant's TTL (4 hours) passed.
    expect(p.latestEventTime).toBe(at(300));
    expect(p.watermark).toBe(at(280));
    expect(raised.map((a) => a.rule)).toEqual(['iam.privileged-group-change', 'break-glass.stale']);
    expect(await store.loadPending()).toEqual([]);
    expect(p.stats).toMatchObject({ received: 3, processed: 1, ignored: 2, duplicates: 0 });
    // The same again is ignored again: there is no key to remember.
    await p.ingest([ignored(30), ignored(300)]);
    expect(p.stats).toMatchObject({ received: 5, ignored: 4, duplicates: 0, late: 0 });
  });

  it('an ignored event dated before 2010 or past now plus clockSkew is counted and leaves the clock alone', async () => {
    const p = await open(SqliteStore.open(':memory:'));
    await p.ingest(items([db.connect({ at: at(0), conn: 1, account: 'app' })]));
    await p.ingest([
      { type: 'ignored', ts: Date.parse('2009-12-31T23:59:59Z') },
      { type: 'ignored', ts: Date.now() + 2 * 3_600_000, count: 2 },
      { type: 'ignored', ts: Number.NEGATIVE_INFINITY, count: 4 },
    ]);
    expect(p.latestEventTime).toBe(at(0));
    expect(p.stats).toMatchObject({ received: 8, ignored: 7, deadLetters: {} });
  });

  it('finish applies everything buffered, and fires timers only up to asOf', async () => {
    const p = await open(SqliteStore.open(':memory:'));
    const created: Alert[] = [];
    created.push(
      ...(await p.ingest(
        items([
          iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg }),
          db.connect({ at: at(100), conn: 1, account: 'admin' }),
        ]),
      )),
    );
    created.push(...(await p.finish(at(90))));
    expect(p.stats.processed).toBe(2);
    expect(p.watermark).toBe(at(100));
    expect(created.map((a) => a.rule)).toEqual(['iam.privileged-group-change']);
    expect((await p.finish(at(240))).map((a) => a.rule)).toEqual(['break-glass.stale']);
  });
});

describe('dedupe by position (MySQL logs)', () => {
  const connect = (minute: number, conn: number, instance?: string) => {
    const event = db.connect({ at: at(minute), conn, account: 'admin' });
    return instance === undefined ? event : { ...event, instance };
  };

  it('an event more than the lateness behind its log is a redelivery, without a stored key', async () => {
    const store = SqliteStore.open(':memory:');
    const p = await open(store);
    // Minute 60 is more than the lateness ahead: the log's mark moves there once a second event
    // near it confirms the jump (minute 61).
    const [c1, c2, c3, c4] = [connect(0, 1), connect(10, 2), connect(60, 3), connect(61, 6)];
    await p.ingest(items([c1, c2, c3, c4]));
    expect(p.stats).toMatchObject({ processed: 2, duplicates: 0 });
    // Behind the log's latest (minute 61) by more than the lateness (20): known by position.
    expect(await store.filterSeen([c1, c2])).toEqual(new Set());
    const never = connect(30, 4);
    await p.ingest(items([c1, c2, never]));
    expect(p.stats).toMatchObject({ processed: 2, duplicates: 3, late: 0 });
    // Another log's event that late is applied late, as any source's.
    await p.ingest(
      items([db.connect({ at: at(30), conn: 5, account: 'admin', db: 'ocid1.mysqldbsystem.oc1..other' })]),
    );
    expect(p.stats).toMatchObject({ processed: 3, late: 1 });
  });

  it('one record stamped a day ahead does not make the rest of its log look redelivered', async () => {
    const store = SqliteStore.open(':memory:');
    const p = await open(store);
    await p.ingest(items([connect(0, 1), connect(1, 2)]));
    // A clock that jumped a day ahead for one record, then came back.
    await p.ingest(items([connect(24 * 60, 3)]));
    await p.ingest(items([connect(2, 4), connect(3, 5)]));
    await p.ingest(items([connect(4, 6)]));
    await p.finish();
    expect(p.stats).toMatchObject({ processed: 6, duplicates: 0 });
  });

  it('a jump that a second record confirms moves the log on: what is a window behind it is a redelivery', async () => {
    const store = SqliteStore.open(':memory:');
    const p = await open(store);
    const first = connect(0, 1);
    await p.ingest(items([first, connect(1, 2)]));
    await p.ingest(items([connect(24 * 60, 3)]));
    await p.ingest(items([connect(24 * 60 + 1, 4)]));
    await p.ingest(items([first]));
    expect(p.stats).toMatchObject({ duplicates: 1 });
  });

  it('a MySQL event repeated in its batch, or redelivered while it waits in the buffer, is a duplicate', async () => {
    const p = await open(SqliteStore.open(':memory:'));
    const [c1, c2] = [connect(0, 1), connect(10, 2)];
    await p.ingest(items([c1, c2, c2]));
    expect(p.stats).toMatchObject({ duplicates: 1, processed: 0 });
    await p.ingest(items([c2, c1, connect(5, 3)]));
    expect(p.stats).toMatchObject({ duplicates: 3, processed: 0 });
    await p.finish();
    expect(p.stats).toMatchObject({ duplicates: 3, processed: 3 });
  });

  it('finds any redelivered event among many waiting in the buffer', async () => {
    const p = await open(SqliteStore.open(':memory:'));
    const waiting = [0, 1, 2, 3, 4, 5, 6].map((m) => connect(m, m + 1));
    await p.ingest(items(waiting));
    await p.ingest(items([...waiting].reverse()));
    expect(p.stats).toMatchObject({ duplicates: 7, processed: 0 });
    await p.finish();
    expect(p.stats).toMatchObject({ duplicates: 7, processed: 7 });
  });

  it('within the lateness of its log, exact keys decide, also after a restart', async () => {
    const path = storeFile();
    const p1 = await open(SqliteStore.open(path));
    const [c1, c2, c3] = [connect(0, 1), connect(45, 2), connect(60, 3)];
    await p1.ingest(items([c1, c3]));
    await p1.ingest(items([c2, c2]));
    expect(p1.stats).toMatchObject({ duplicates: 1 });
    // The watermark passes c2 while its log stands at minute 60: its key is kept.
    await p1.ingest(items([iam.signOn({ at: at(70), user: USERS.dave, ip: '10.9.9.9' })]));
    expect(p1.stats.processed).toBe(2);
    const store = SqliteStore.open(path);
    expect(await store.filterSeen([c2])).toEqual(new Set([c2.key]));
    const p2 = await open(store);
    await p2.ingest(items([c1, c2, c3]));
    expect(p2.stats).toMatchObject({ duplicates: 3, processed: 0 });
    await store.close();
  });

  it('after a log-reset gap the log keeps exact keys: an older new event is applied', async () => {
    const p = await open(SqliteStore.open(':memory:'));
    await p.ingest(items([connect(0, 1, 'primary'), connect(60, 2, 'primary')]));
    await p.ingest(
      items([gap.mysql({ from: at(60), to: at(61), reason: 'log-reset' }), connect(30, 3, 'primary')]),
    );
    expect(p.stats).toMatchObject({ duplicates: 0, late: 1 });
  });

  it("a replica's failover leaves the DB system's own log deduplicated by position", async () => {
    const p = await open(SqliteStore.open(':memory:'));
    const [c1, c2, c3] = [connect(0, 1), connect(60, 2), connect(61, 3)];
    await p.ingest(items([c1, c2, c3]));
    await p.ingest(items([gap.mysql({ from: at(61), reason: 'server-changed', instance: 'replica-1' })]));
    // The primary's log stands at minute 61: its event of minute 0, its key long forgotten, is a
    // redelivery by position, not applied again.
    await p.ingest(items([c1]));
    expect(p.stats).toMatchObject({ duplicates: 1 });
    // The primary's own failover makes its log keep exact keys: an event new to it, however old, is applied.
    await p.ingest(items([gap.mysql({ from: at(61), reason: 'server-changed' }), connect(30, 4)]));
    expect(p.stats).toMatchObject({ duplicates: 1, late: 1 });
  });

  describe('after a clock-step gap', () => {
    // The log stands at minute 60 when its clock steps back to minute 5.
    const step = () => gap.mysql({ from: at(60), to: at(5), reason: 'clock-step', instance: 'primary' });
    const before = [connect(50, 1, 'primary'), connect(60, 2, 'primary')];
    const after = [connect(5, 3, 'primary'), connect(30, 4, 'primary')];

    it('the events written after the step are applied, in later batches too, and redelivered are duplicates', async () => {
      const p = await open(SqliteStore.open(':memory:'));
      await p.ingest(items(before));
      await p.ingest(items([step(), after[0]!]));
      await p.ingest(items([after[1]!]));
      // The step and the events after it are late (the watermark is at minute 40).
      expect(p.stats).toMatchObject({ duplicates: 0, processed: 3, late: 3 });
      // Written before the step's time (less the lateness) is read before it.
      await p.ingest(items([...after, ...before, connect(-30, 5, 'primary')]));
      expect(p.stats).toMatchObject({ duplicates: 5, processed: 3 });
    });

    it('the step and the events after it in the batch of the events before it', async () => {
      const p = await open(SqliteStore.open(':memory:'));
      await p.ingest(items([...before, step(), ...after]));
      await p.ingest(items([connect(40, 6, 'primary')]));
      await p.finish();
      // Five connections and the step.
      expect(p.stats).toMatchObject({ duplicates: 0, processed: 6 });
    });

    it('once the clock has caught up, positions tell redeliveries again, and a redelivered step changes nothing', async () => {
      const store = SqliteStore.open(':memory:');
      const p = await open(store);
      const s = step();
      await p.ingest(items(before));
      await p.ingest(items([s, ...after]));
      const caughtUp = [connect(61, 7, 'primary'), connect(75, 8, 'primary'), connect(90, 10, 'primary')];
      await p.ingest(items(caughtUp));
      await p.ingest(items([connect(120, 9, 'primary')]));
      expect(p.stats).toMatchObject({ duplicates: 0, processed: 8 });
      // Applied a window behind the log's mark (minute 90) after the clock caught up: no stored key.
      expect(await store.filterSeen([caughtUp[0]!])).toEqual(new Set());
      await p.ingest(items([...before, s, ...after, ...caughtUp]));
      expect(p.stats).toMatchObject({ duplicates: 8, processed: 8 });
    });
  });
});

describe('restart', () => {
  it('reopens with its clock, its buffered events in event-time order, and recent sessions', async () => {
    const path = storeFile();
    const first = SqliteStore.open(path);
    const p1 = await open(first);
    const app = db.connect({ at: at(30), conn: 2, account: 'app' });
    const signOn = iam.signOn({ at: at(40), user: USERS.dave, ip: '10.9.9.9' });
    await p1.ingest(
      items([
        db.connect({ at: at(0), conn: 1, account: 'dba_proxy', user: 'alice', proxy: true }),
        app,
        signOn,
      ]),
    );
    expect(p1.stats.processed).toBe(1);
    await first.close();

    const store = SqliteStore.open(path);
    const p2 = await open(store);
    expect(p2.watermark).toBe(at(20));
    expect(p2.latestEventTime).toBe(at(40));
    // Stored keys sort the sign-on (iam-...) before the connect: released in event-time order all the same.
    await p2.advance(at(35));
    expect(p2.stats.processed).toBe(1);
    await p2.ingest(
      items([
        app,
        signOn,
        db.query({
          at: at(41),
          conn: 1,
          account: 'dba_proxy',
          sqlCommand: 'grant',
          sql: "GRANT ALL ON *.* TO 'x'",
        }),
      ]),
    );
    await p2.finish();
    expect(p2.stats).toMatchObject({ processed: 3, duplicates: 2 });
    const grant = (await collect(store.alerts())).find((a) => a.rule === 'privilege.change');
    expect(grant?.identity?.principalId).toBe(USERS.alice);
    await store.close();
  });

  /**
   * alice's session (09:00-09:05) is stored, with the watermark moved by an event at `lastMinute`;
   * after a reopen, her removal from DBAdmins dated 08:50 arrives late. The alerts it raises.
   */
  async function lateRemovalAfterReopen(lastMinute: number) {
    const path = storeFile();
    const first = SqliteStore.open(path);
    const p1 = await open(first);
    await p1.ingest(
      items([
        db.connect({ at: at(0), conn: 1, account: 'dba_proxy', user: 'alice', proxy: true }),
        db.disconnect({ at: at(5), conn: 1, account: 'dba_proxy' }),
        db.connect({ at: at(lastMinute), conn: 2, account: 'admin' }),
      ]),
    );
    await first.close();
    const p2 = await open(SqliteStore.open(path));
    const raised = await p2.ingest(
      items([iam.removed({ at: at(-10), user: USERS.alice, group: GROUPS.dba })]),
    );
    expect(p2.stats.late).toBe(1);
    return raised.filter((a) => a.rule === 'access.after-revocation');
  }

  it('a late removal re-evaluates a session that closed before the restart', async () => {
    expect((await lateRemovalAfterReopen(60)).map((a) => a.identity?.principalId)).toEqual([USERS.alice]);
  });

  it('after a reopen, late IAM data re-evaluates only the sessions within the lookback', async () => {
    expect(await lateRemovalAfterReopen(2 * 24 * 60)).toEqual([]);
  });

  it("commits a source's position with the batch it ends, and reopens with it", async () => {
    const path = storeFile();
    const first = SqliteStore.open(path);
    const p1 = await open(first);
    expect(p1.position('collector:prod/primary')).toBeUndefined();
    await p1.ingest(items([db.connect({ at: at(0), conn: 1, account: 'app' })]), {
      'collector:prod/primary': { bookmark: { id: 7, timestamp: '2026-11-02 09:00:00' } },
    });
    await p1.advance(at(30), { 'collector:prod/replica-1': { bookmark: { id: 3 } } });
    await first.close();
    const p2 = await open(SqliteStore.open(path));
    expect(p2.position('collector:prod/primary')).toEqual({
      bookmark: { id: 7, timestamp: '2026-11-02 09:00:00' },
    });
    expect(p2.position('collector:prod/replica-1')).toEqual({ bookmark: { id: 3 } });
  });

  it('follows a stored snapshot once: calling again, or reopening, finds nothing new', async () => {
    const path = storeFile();
    const store = SqliteStore.open(path);
    const p1 = await open(store);
    expect(await p1.followSnapshots()).toEqual([]);
    const snapshot: Snapshot = {
      version: 1,
      id: 'snapshot-1',
      time: toIso(at(-60)),
      parts: {},
      directory: { users: [], groups: [], memberships: [] },
      dbSystems: [],
      requests: { oci: {}, sql: 0 },
    };
    await store.putSnapshot(snapshot);
    expect(await p1.followSnapshots()).toEqual([]);
    expect(await p1.followSnapshots()).toEqual([]);
    await store.close();
    const p2 = await open(SqliteStore.open(path));
    expect(await p2.followSnapshots()).toEqual([]);
  });

  it('without durable pending, buffered events stay out of the store', async () => {
    for (const durablePending of [true, false]) {
      const store = SqliteStore.open(':memory:');
      const p = await open(store, { durablePending });
      await p.ingest(items([db.connect({ at: at(30), conn: 2, account: 'app' })]));
      expect((await store.loadPending()).length).toBe(durablePending ? 1 : 0);
    }
  });
});

describe('sinks', () => {
  it('each sink receives each alert once, after the commit; a sink added later receives what it missed', async () => {
    const store = SqliteStore.open(':memory:');
    const a = new RecordingSink('a');
    const p1 = await open(store, { sinks: [a] });
    await p1.ingest(items([db.connect({ at: at(0), conn: 1, account: 'app' })]));
    await p1.ingest(items([db.connect({ at: at(1), conn: 2, account: 'admin' })]));
    await p1.finish();
    expect(a.sends.map((s) => s.map((x) => x.rule))).toEqual([['access.local-account']]);

    const b = new RecordingSink('b');
    await open(store, { sinks: [a, b] });
    expect(a.sends).toHaveLength(1);
    expect(b.sends).toEqual(a.sends);
  });

  it('a sink that acknowledges is called after every commit with the watermark, the end of input and its state; what it did not acknowledge comes back as a backlog', async () => {
    class AcknowledgingSink implements AlertSink {
      readonly acknowledges = true;
      readonly calls: unknown[] = [];
      constructor(
        readonly name: string,
        private readonly acknowledge: boolean,
      ) {}
      stage(records: Alert[], state: SinkState): void {
        state.set('staged', (state.get<number>('staged') ?? 0) + records.length);
      }
      async send(alerts: Alert[], ctx?: SendContext): Promise<void> {
        const keys = alerts.map(recordKey);
        if (this.acknowledge) await ctx!.delivered(keys);
        this.calls.push({
          rules: alerts.map((a) => a.rule),
          watermark: ctx!.watermark,
          final: ctx!.final,
          backlog: ctx!.backlog,
          staged: ctx!.state.get('staged'),
          received: [...(await ctx!.received(keys))],
        });
      }
    }
    const path = storeFile();
    const first = new AcknowledgingSink('digest', false);
    const p1 = await open(SqliteStore.open(path), { sinks: [first] });
    const app = db.connect({ at: at(0), conn: 1, account: 'app' });
    const [alert] = await p1.ingest(
      items([app, iam.signOn({ at: at(60), user: USERS.dave, ip: '10.9.9.9' })]),
    );
    await p1.ingest(items([iam.signOn({ at: at(61), user: USERS.dave, ip: '10.9.9.9' })]));
    await p1.finish();
    const call = { rules: [], staged: 1, received: [], backlog: false };
    expect(first.calls).toEqual([
      { ...call, rules: ['access.local-account'], watermark: at(40), final: false },
      { ...call, watermark: at(41), final: false },
      { ...call, watermark: at(61), final: true },
    ]);

    const second = new AcknowledgingSink('digest', true);
    await open(SqliteStore.open(path), { sinks: [second] });
    expect(second.calls).toEqual([
      {
        rules: ['access.local-account'],
        watermark: at(61),
        final: false,
        backlog: true,
        staged: 1,
        received: [recordKey(alert!)],
      },
    ]);
    const third = new AcknowledgingSink('digest', true);
    await open(SqliteStore.open(path), { sinks: [third] });
    expect(third.calls).toEqual([]);
  });

  it('each sink has its own state rows, committed with the batches and there after a reopen', async () => {
    class CountingSink implements AlertSink {
      readonly acknowledges = true;
      readonly seen: [string, unknown][][] = [];
      constructor(
        readonly name: string,
        private readonly weight: number,
      ) {}
      stage(records: Alert[], state: SinkState): void {
        state.set('count', (state.get<number>('count') ?? 0) + records.length * this.weight);
        state.set('scratch', true);
      }
      async send(alerts: Alert[], ctx?: SendContext): Promise<void> {
        await ctx!.delivered(alerts.map(recordKey));
        ctx!.state.delete('scratch');
        this.seen.push([...ctx!.state.entries()]);
      }
    }
    const path = storeFile();
    const [a, b] = [new CountingSink('a', 1), new CountingSink('b', 10)];
    const first = SqliteStore.open(path);
    const p1 = await open(first, { sinks: [a, b] });
    await p1.ingest(
      items([
        db.connect({ at: at(0), conn: 1, account: 'app' }),
        iam.signOn({ at: at(60), user: USERS.dave, ip: '10.9.9.9' }),
      ]),
    );
    expect([a.seen, b.seen]).toEqual([[[['count', 1]]], [[['count', 10]]]]);
    await first.close();
    const [a2, b2] = [new CountingSink('a', 1), new CountingSink('b', 10)];
    const p2 = await open(SqliteStore.open(path), { sinks: [a2, b2] });
    await p2.ingest(items([iam.signOn({ at: at(61), user: USERS.dave, ip: '10.9.9.9' })]));
    expect([a2.seen, b2.seen]).toEqual([[[['count', 1]]], [[['count', 10]]]]);
  });

  it('a failing sink keeps nothing from the sinks after it; it receives what it missed once it works again', async () => {
    class FlakySink extends RecordingSink {
      down = true;
      override async send(alerts: Alert[]): Promise<void> {
        if (this.down) throw new Error('output down');
        await super.send(alerts);
      }
    }
    const path = storeFile();
    const stream = new FlakySink('stream');
    const page = new RecordingSink('page');
    const p1 = await open(SqliteStore.open(path), { sinks: [stream, page] });
    const events = [
      db.connect({ at: at(0), conn: 1, account: 'app' }),
      iam.signOn({ at: at(60), user: USERS.dave, ip: '10.9.9.9' }),
    ];
    await expect(p1.ingest(items(events))).rejects.toThrow('output down');
    expect(page.sends.map((s) => s.map((x) => x.rule))).toEqual([['access.local-account']]);
    // Reopened while the output is still down: a sink new to the store gets its backlog all the same,
    // and the first call reports the output down.
    const added = new RecordingSink('file');
    const p2 = await open(SqliteStore.open(path), { sinks: [stream, page, added] });
    expect(added.sends).toEqual(page.sends);
    await expect(p2.finish()).rejects.toThrow('output down');
    stream.down = false;
    await open(SqliteStore.open(path), { sinks: [stream, page, added] });
    expect(stream.sends).toEqual(page.sends);
    expect(page.sends).toHaveLength(1);
    expect(added.sends).toHaveLength(1);
  });

  /** A sink that fails (SINK_FAILED) while it is down. */
  class SwitchableSink extends RecordingSink {
    constructor(
      name: string,
      public down = false,
    ) {
      super(name);
    }
    override async send(alerts: Alert[]): Promise<void> {
      if (this.down) throw new AuditError('SINK_FAILED', `${this.name} is down`);
      await super.send(alerts);
    }
  }

  /**
   * A store holding an alert (access.local-account at minute 0) that the sinks down did not
   * receive, and a pipeline opened on it since.
   */
  async function reopenOwing(sinks: AlertSink[]): Promise<{ path: string; p: Pipeline }> {
    const path = storeFile();
    const first = await open(SqliteStore.open(path), { sinks });
    const events = [
      db.connect({ at: at(0), conn: 1, account: 'app' }),
      iam.signOn({ at: at(60), user: USERS.dave, ip: '10.9.9.9' }),
    ];
    await expect(first.ingest(items(events))).rejects.toThrow('is down');
    return { path, p: await open(SqliteStore.open(path), { sinks }) };
  }

  /** A batch after `owe`'s that raises an alert of its own (another account). */
  const nextBatch = () =>
    items([
      db.connect({ at: at(61), conn: 2, account: 'batch' }),
      iam.signOn({ at: at(120), user: USERS.dave, ip: '10.9.9.9' }),
    ]);

  /** What a call failed with. */
  const failureOf = (call: Promise<unknown>) =>
    call.then(
      () => undefined,
      (e: unknown) => e as Error,
    );

  it('an output failing when the pipeline opens keeps no batch from being processed, nor its alerts from the outputs that work', async () => {
    const stream = new SwitchableSink('stream', true);
    const page = new RecordingSink('page');
    // The stream still owes the first alert: the next pipeline opens all the same.
    const { path, p } = await reopenOwing([stream, page]);
    const batch = nextBatch();
    const error = await failureOf(p.ingest(batch, { src: 'after-the-batch' }));
    // Reported once, though the stream failed both at the open and on the batch's alert.
    expect(error).toMatchObject({ code: 'SINK_FAILED', message: 'stream is down' });
    expect(p.stats).toMatchObject({ processed: 2, alerts: 1 });
    const rules = (sends: Alert[][]) => sends.map((s) => s.map((a) => a.rule));
    expect(rules(page.sends)).toEqual([['access.local-account'], ['access.local-account']]);
    expect(recordKey(page.sends[1]![0]!)).not.toBe(recordKey(page.sends[0]![0]!));
    expect(stream.sends).toEqual([]);
    // Once the stream works: it gets what it missed, the page nothing twice, and the batch was
    // committed (its position, and its events: a redelivery is all duplicates).
    stream.down = false;
    const later = await open(SqliteStore.open(path), { sinks: [stream, page] });
    expect(stream.sends.flat().map(recordKey).sort()).toEqual(page.sends.flat().map(recordKey).sort());
    expect(page.sends).toHaveLength(2);
    expect(later.position('src')).toBe('after-the-batch');
    await later.ingest(batch);
    expect(later.stats).toMatchObject({ received: 2, duplicates: 2, processed: 0, alerts: 0 });
    expect(page.sends).toHaveLength(2);
  });

  it("an output failing when the pipeline opens stops none of a run's batches: `finish` reports it once they were all processed", async () => {
    const stream = new SwitchableSink('stream', true);
    const page = new RecordingSink('page');
    const { path, p } = await reopenOwing([stream, page]);
    // A run of several batches raising no alert of their own (a collect, a replay).
    const quiet = (minute: number) =>
      items([iam.signOn({ at: at(minute * 60), user: USERS.dave, ip: '10.9.9.9' })]);
    await p.ingest(quiet(2), { src: 'first' });
    await p.ingest(quiet(3), { src: 'second' });
    await p.ingest(quiet(4), { src: 'third' });
    expect(p.stats).toMatchObject({ received: 3 });
    await expect(p.finish()).rejects.toThrow('stream is down');
    stream.down = false;
    const later = await open(SqliteStore.open(path), { sinks: [stream, page] });
    expect(later.position('src')).toBe('third');
    expect(stream.sends.flat().map((a) => a.rule)).toEqual(['access.local-account']);
    expect(page.sends).toHaveLength(1);
  });

  it('an output failing when the pipeline opens fails `settle` when no call comes', async () => {
    const stream = new SwitchableSink('stream', true);
    const { path, p: idle } = await reopenOwing([stream]);
    await expect(idle.settle()).rejects.toThrow('stream is down');
    // Once reported, as any failed call, it fails the calls after it.
    await expect(idle.advance(at(120))).rejects.toThrow('stream is down');
    stream.down = false;
    const working = await open(SqliteStore.open(path), { sinks: [stream] });
    await working.settle();
    expect(stream.sends.flat().map((a) => a.rule)).toEqual(['access.local-account']);
  });

  it('an output failing when the pipeline opens, and another in the first call: the call reports both', async () => {
    const stream = new SwitchableSink('stream', true);
    const page = new SwitchableSink('page');
    const { p } = await reopenOwing([stream, page]);
    page.down = true;
    const error = await failureOf(p.ingest(nextBatch()));
    expect(error).toMatchObject({ code: 'SINK_FAILED', details: { sinks: ['stream', 'page'] } });
    expect(error?.message).toContain('stream: stream is down');
    expect(error?.message).toContain('page: page is down');
  });

  it('a failing sink gives up no claim while the sinks after it are still sending: another instance sharing the store sends nothing twice', async () => {
    const path = storeFile();
    const down = (name: string) =>
      new (class extends RecordingSink {
        override async send(): Promise<void> {
          throw new Error('output down');
        }
      })(name);
    let entered!: () => void;
    const sending = new Promise<void>((resolve) => {
      entered = resolve;
    });
    let open_!: () => void;
    const gate = new Promise<void>((resolve) => {
      open_ = resolve;
    });
    // The paging topic of the first instance takes its time to answer.
    const slowPage = new (class extends RecordingSink {
      override async send(alerts: Alert[]): Promise<void> {
        entered();
        await gate;
        await super.send(alerts);
      }
    })('page');
    const otherPage = new RecordingSink('page');
    const other = await open(SqliteStore.open(path, { scope: 'two' }), {
      sinks: [down('stream'), otherPage],
    });
    const p = await open(SqliteStore.open(path, { scope: 'one' }), { sinks: [down('stream'), slowPage] });
    const ingesting = p.ingest(
      items([
        db.connect({ at: at(0), conn: 1, account: 'app' }),
        iam.signOn({ at: at(60), user: USERS.dave, ip: '10.9.9.9' }),
      ]),
    );
    ingesting.catch(() => undefined);
    await sending;
    // The other instance's sweep while the first one's page is under way.
    await other.advance(at(0)).catch(() => undefined);
    open_();
    await expect(ingesting).rejects.toThrow('output down');
    const paged = [...slowPage.sends, ...otherPage.sends].flat().map((a) => a.rule);
    expect(paged).toEqual(['access.local-account']);
  });

  it('a failing sink gives up no claim on the records a digest of the same pipeline holds: another instance does not digest them too', async () => {
    const path = storeFile();
    /** A digest: holds what it is sent, and publishes it (acknowledged) at the end of input. */
    class Digest implements AlertSink {
      readonly acknowledges = true;
      readonly name = 'digest';
      held: Alert[] = [];
      readonly published: Alert[] = [];
      async send(alerts: Alert[], ctx?: SendContext): Promise<void> {
        this.held.push(...alerts);
        if (!ctx!.final) return;
        await ctx!.delivered(this.held.map(recordKey));
        this.published.push(...this.held);
        this.held = [];
      }
    }
    const stream = new SwitchableSink('stream', true);
    const first = await open(SqliteStore.open(path, { scope: 'one' }), { sinks: [new Digest(), stream] });
    await expect(
      first.ingest(
        items([
          db.connect({ at: at(0), conn: 1, account: 'app' }),
          iam.signOn({ at: at(60), user: USERS.dave, ip: '10.9.9.9' }),
        ]),
      ),
    ).rejects.toThrow('stream is down');
    // Re-opened with the stream still down: its digest holds the alert, the stream fails on it.
    const digest = new Digest();
    const p = await open(SqliteStore.open(path, { scope: 'one' }), { sinks: [digest, stream] });
    expect(digest.held.map((a) => a.rule)).toEqual(['access.local-account']);
    // Another instance sharing the store opens meanwhile.
    const otherDigest = new Digest();
    const other = await open(SqliteStore.open(path, { scope: 'two' }), { sinks: [otherDigest, stream] });
    await p.finish().catch(() => undefined);
    await other.finish().catch(() => undefined);
    const digested = [...digest.published, ...otherDigest.published].map((a) => a.rule);
    expect(digested).toEqual(['access.local-account']);
  });

  it('two failing sinks: the call reports both, the second with its own message', async () => {
    const down = (name: string) =>
      new (class extends RecordingSink {
        override async send(): Promise<void> {
          throw new Error(`${name} is down`);
        }
      })(name);
    const p = await open(SqliteStore.open(storeFile()), { sinks: [down('stream'), down('page')] });
    const events = [
      db.connect({ at: at(0), conn: 1, account: 'app' }),
      iam.signOn({ at: at(60), user: USERS.dave, ip: '10.9.9.9' }),
    ];
    const error = await p.ingest(items(events)).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toContain('stream: stream is down');
    expect(error?.message).toContain('page: page is down');
    expect(error).toMatchObject({ code: 'SINK_FAILED', details: { sinks: ['stream', 'page'] } });
  });

  it('two instances on two scopes of one store raise a shared alert once', async () => {
    const path = storeFile();
    const events = [db.connect({ at: at(0), conn: 1, account: 'app' })];
    const one = await open(SqliteStore.open(path, { scope: 'one' }));
    const two = await open(SqliteStore.open(path, { scope: 'two' }));
    await one.ingest(items(events));
    await two.ingest(items(events));
    // Both find the alert unknown before either commits it: the store tells which one stored it.
    const [a, b] = await Promise.all([one.finish(), two.finish()]);
    expect([...a, ...b].map((x) => x.rule)).toEqual(['access.local-account']);
    expect(one.stats.alerts + two.stats.alerts).toBe(1);
    expect(two.stats).toMatchObject({ processed: 1 });
  });
});
