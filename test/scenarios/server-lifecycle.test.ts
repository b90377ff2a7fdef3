// Sessions whose server logged no disconnect for them end when their server does: a restart (after a
// shutdown record or not), another server taking over the instance (an HA failover), a log reset.
// They are written to the ledger ended, with how; rules no longer see them open; and the result is
// the same in any delivery, across a reopen of the store, and when the same input is replayed again.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { CanonicalEvent, DbEvent } from '../../schemas/events.js';
import type { Session } from '../../schemas/session.js';
import { at, db, GROUPS, gap, iam, USERS } from '../../shared/detect/timeline.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { toIso } from '../../shared/time.js';
import { runs } from '../helpers/property.js';
import {
  deliveries,
  runAcrossReopen,
  runBatches,
  runTimeline,
  type TimelineResult,
} from '../helpers/run-timeline.js';

const LATENESS = 20 * 60_000;
const REPLICA = 'replica-1';

const onReplica = (ev: DbEvent): DbEvent => ({ ...ev, instance: REPLICA, key: `${ev.key}:${REPLICA}` });
const alice = (m: number, conn: number) =>
  db.connect({ at: at(m), conn, account: 'dba_proxy', user: 'alice', ip: '10.0.0.5', proxy: true });
const select = (m: number, conn: number) =>
  db.query({ at: at(m), conn, account: 'dba_proxy', sqlCommand: 'select', sql: `SELECT ${m}` });

/** Restarts of the primary: with a shutdown record, then without one (a crash). */
function restarts(): CanonicalEvent[] {
  return [
    // What was open at the shutdown record ended at it; a disconnect the server logged while it
    // shut down stays a disconnect.
    db.connect({ at: at(1), conn: 5, account: 'admin' }),
    db.connect({ at: at(2), conn: 6, account: 'admin' }),
    db.shutdown({ at: at(8) }),
    db.disconnect({ at: at(9), conn: 6, account: 'admin' }),
    db.startup({ at: at(10) }),
    // Without a shutdown record the startup is the end, an upper bound.
    db.connect({ at: at(11), conn: 5, account: 'admin' }),
    db.startup({ at: at(20) }),
    iam.signOn({ at: at(80), user: USERS.dave, ip: '10.0.0.9' }),
  ];
}

/** An HA failover at the primary, and a log reset at a replica and a gap that end nothing. */
function failover(): CanonicalEvent[] {
  return [
    // The primary's sessions end; the replica's go on, through a reset of its log too.
    alice(121, 7),
    onReplica(alice(122, 7)),
    gap.mysql({ from: at(125), reason: 'server-changed' }),
    iam.removed({ at: at(126), user: USERS.alice, group: GROUPS.dba }),
    // The new primary's connection 7 (its connect before the read began): not alice's session.
    select(127, 7),
    gap.mysql({ from: at(130), reason: 'log-reset', instance: REPLICA }),
    // The same server still answers after a pruned log.
    db.connect({ at: at(131), conn: 9, account: 'admin' }),
    gap.mysql({ from: at(132), to: at(133), reason: 'pruned' }),
    iam.signOn({ at: at(200), user: USERS.dave, ip: '10.0.0.9' }),
  ];
}

const ended = (sessions: Session[]) =>
  sessions.map((s) => [s.connectionId, s.instance ?? null, s.disconnectTime ?? null, s.endReason ?? null]);

const fingerprint = (r: TimelineResult) => ({
  alerts: r.alerts.map((a) => JSON.stringify(a)).sort(),
  sessions: r.sessions.map((s) => JSON.stringify(s)).sort(),
  orphans: r.pipeline.correlation.orphanEvents,
});

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function storeFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hwaudit-lifecycle-'));
  dirs.push(dir);
  return join(dir, 'state.sqlite');
}

describe('sessions a server restart or failover ended', () => {
  const events = [...restarts(), ...failover()].sort((a, b) => a.ts - b.ts);

  it('end at the shutdown record, else at the startup or gap, and say how', async () => {
    const { sessions, alerts, pipeline } = await runTimeline(events);
    expect(ended(sessions)).toEqual([
      [5, null, toIso(at(8)), 'server-shutdown'],
      [6, null, toIso(at(9)), null],
      [5, null, toIso(at(20)), 'server-restart'],
      [7, null, toIso(at(125)), 'server-changed'],
      [7, REPLICA, null, null],
      [9, null, null, null],
    ]);
    // Alice's session ended with the failover: a statement of the new server's connection 7 after
    // her removal is no statement of hers (an orphan), and no access after revocation.
    expect(pipeline.correlation.orphanEvents).toBe(1);
    expect(alerts.filter((a) => a.rule === 'access.after-revocation')).toEqual([]);
    expect(sessions.find((s) => s.connectionId === 7 && !s.instance)?.counts.queries).toBe(0);
    expect(pipeline.openSessions).toBe(2);
  });

  // Each part on its own: after a failover the log is deduplicated by exact key, and a redelivery of
  // an event from more than `lateness` before is applied again (README, Limits).
  it.each([
    ['restarts', restarts()],
    ['a failover', failover()],
  ])(
    '%s: any arrival order within the lateness, any batches, any duplicates: same sessions and alerts',
    async (_, part) => {
      const baseline = fingerprint(await runTimeline(part));
      await fc.assert(
        fc.asyncProperty(deliveries(part, LATENESS), async (batches) => {
          expect(fingerprint(await runBatches(batches, { fold: true }))).toEqual(baseline);
        }),
        runs(40),
      );
    },
  );

  it.each([
    ['restarts', restarts(), at(10)],
    ['a failover', failover(), at(126)],
  ])(
    '%s: the same after a reopen of the store, and when the input is replayed again',
    async (_, part, cutAt) => {
      const baseline = fingerprint(await runTimeline(part));
      const cut = part.findIndex((e) => e.ts > cutAt);
      expect(fingerprint(await runAcrossReopen(part.slice(0, cut), part.slice(cut - 3)))).toEqual(baseline);
      const path = storeFile();
      expect(fingerprint(await runBatches([part], { store: SqliteStore.open(path) }))).toEqual(baseline);
      const again = await runBatches([part], { store: SqliteStore.open(path) });
      expect(again.pipeline.stats).toMatchObject({ duplicates: part.length, processed: 0 });
      expect({ ...fingerprint(again), orphans: baseline.orphans }).toEqual(baseline);
    },
  );

  it('a shutdown applied before the store was closed still dates the end after it reopens', async () => {
    const path = storeFile();
    await runBatches([[db.connect({ at: at(1), conn: 5, account: 'admin' }), db.shutdown({ at: at(8) })]], {
      store: SqliteStore.open(path),
    });
    const { sessions } = await runBatches([[db.startup({ at: at(10) })]], { store: SqliteStore.open(path) });
    expect(ended(sessions)).toEqual([[5, null, toIso(at(8)), 'server-shutdown']]);
  });

  it('a log reset ends none of the sessions of the log read again, older than the gap as they all are', async () => {
    const { sessions, pipeline } = await runBatches([
      [
        onReplica(db.connect({ at: at(1), conn: 7, account: 'admin' })),
        iam.signOn({ at: at(100), user: USERS.dave, ip: '10.0.0.9' }),
      ],
      // The log went back in time: it is read again from its start, after the gap.
      [
        gap.mysql({ from: at(100), reason: 'log-reset', instance: REPLICA }),
        onReplica(db.connect({ at: at(50), conn: 3, account: 'admin' })),
      ],
      [
        onReplica(
          db.query({ at: at(105), conn: 3, account: 'admin', sqlCommand: 'select', sql: 'SELECT 1' }),
        ),
        iam.signOn({ at: at(200), user: USERS.dave, ip: '10.0.0.9' }),
      ],
    ]);
    expect(sessions.map((s) => [s.connectionId, s.disconnectTime ?? null, s.counts.queries])).toEqual([
      [7, null, 0],
      [3, null, 1],
    ]);
    expect(pipeline.correlation.orphanEvents).toBe(0);
  });

  it("the new server's sessions are not ended: those it opened in the gap's second, or after a startup applied late", async () => {
    // The gap's time is the last second read from the old server; the new one logged a connect in it.
    const sameSecond = await runTimeline([
      db.connect({ at: at(1), conn: 5, account: 'admin' }),
      db.query({ at: at(5), conn: 5, account: 'admin', sqlCommand: 'select', sql: 'SELECT 1' }),
      gap.mysql({ from: at(5), reason: 'server-changed' }),
      db.connect({ at: at(5), conn: 9, account: 'admin' }),
      db.query({ at: at(6), conn: 9, account: 'admin', sqlCommand: 'select', sql: 'SELECT 2' }),
      iam.signOn({ at: at(80), user: USERS.dave, ip: '10.0.0.9' }),
    ]);
    expect(ended(sameSecond.sessions)).toEqual([
      [5, null, toIso(at(5)), 'server-changed'],
      [9, null, null, null],
    ]);
    expect(sameSecond.pipeline.correlation.orphanEvents).toBe(0);
    // A startup more than the lateness late, after a connection its server made since.
    const first = [
      db.connect({ at: at(1), conn: 5, account: 'admin' }),
      db.connect({ at: at(30), conn: 6, account: 'admin' }),
      iam.signOn({ at: at(80), user: USERS.dave, ip: '10.0.0.9' }),
    ];
    const { sessions } = await runBatches([first, [db.startup({ at: at(5) })]]);
    expect(ended(sessions)).toEqual([
      [5, null, toIso(at(5)), 'server-restart'],
      [6, null, null, null],
    ]);
  });

  it("a gap on a replica ends the replica's sessions only, one on the primary the DB system's own", async () => {
    const replica = [onReplica(alice(1, 7)), alice(2, 7)];
    const { sessions } = await runTimeline([
      ...replica,
      gap.mysql({ from: at(5), reason: 'server-changed', instance: REPLICA }),
      iam.signOn({ at: at(80), user: USERS.dave, ip: '10.0.0.9' }),
    ]);
    expect(ended(sessions)).toEqual([
      [7, REPLICA, toIso(at(5)), 'server-changed'],
      [7, null, null, null],
    ]);
  });
});
