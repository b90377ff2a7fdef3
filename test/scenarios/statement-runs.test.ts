// A replay takes each connection's routine statements of a batch together (a run): the session
// ledger and the alerts must be exactly those of the same statements applied one by one, in any
// delivery, whatever else happens to the connection or its attribution between two statements.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CanonicalEvent, DbEvent } from '../../schemas/events.js';
import { StatementRuns } from '../../shared/decode/statement-runs.js';
import { at, db, GROUPS, gap, iam, USERS } from '../../shared/detect/timeline.js';
import { Pipeline } from '../../shared/pipeline.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { runs } from '../helpers/property.js';
import { deliveries, folded, runBatches, type TimelineResult, testConfig } from '../helpers/run-timeline.js';
import { incidentTimeline } from './scenario-fleet.js';

const LATENESS_MIN = 20;

const select = (minute: number, conn: number, account: string, table = 'orders'): DbEvent =>
  db.query({
    at: at(minute),
    conn,
    account,
    sql: `SELECT * FROM shop.${table} WHERE id = 7`,
    sqlCommand: 'select',
  });

/** The incident timeline, with routine statements in its sessions (break-glass ones included). */
function busyTimeline(): CanonicalEvent[] {
  const statements = [
    ...[6, 7, 9, 12, 20, 24].map((m) => select(m, 1, 'dba_proxy', m % 2 ? 'orders' : 'payments')),
    ...[16, 17, 19, 26, 33, 38, 45].map((m) => select(m, 2, 'emergency_admin', `t${m}`)),
    ...[52, 53, 61, 70].map((m) => select(m, 20, 'app')),
    ...[261, 262, 300].map((m) => select(m, 5, 'emergency_admin')),
  ];
  return [...incidentTimeline(), ...statements].sort((a, b) => a.ts - b.ts);
}

function fingerprint(r: TimelineResult) {
  return {
    alerts: r.alerts.map((a) => JSON.stringify(a)).sort(),
    sessions: r.sessions.map((s) => JSON.stringify(s)).sort(),
  };
}

describe('runs of routine statements', () => {
  it('fold a batch per connection, ended by the connection’s other events', () => {
    const s1 = select(1, 1, 'app');
    const s2 = select(2, 2, 'app');
    const s3 = select(3, 1, 'app');
    const quit = db.disconnect({ at: at(4), conn: 1, account: 'app' });
    const s4 = select(5, 1, 'app');
    const s5 = select(6, 2, 'app');
    const items = folded([s1, s2, s3, quit, s4, s5]);
    expect(items).toEqual([
      { type: 'run', events: [s1, s3] },
      { type: 'run', events: [s2, s5] },
      { type: 'event', event: quit },
      { type: 'run', events: [s4] },
    ]);
  });

  it('keep DB systems, instances, non-routine statements and dead letters apart', () => {
    const runsOf = new StatementRuns();
    const a = select(1, 1, 'app');
    const other = { ...select(2, 1, 'app'), dbSystemId: 'ocid1.mysqldbsystem.oc1..other' };
    const instance = { ...select(3, 1, 'app'), instance: 'replica-1' };
    const grant = db.query({
      at: at(4),
      conn: 1,
      account: 'app',
      sql: 'GRANT ALL ON *.* TO x',
      sqlCommand: 'grant',
    });
    const dead = { type: 'dead', dead: { code: 'JSON_INVALID', source: 'f', message: 'bad' } } as const;
    const out = [
      runsOf.fold({ type: 'event', event: a, routine: true }),
      runsOf.fold({ type: 'event', event: other, routine: true }),
      runsOf.fold({ type: 'event', event: instance, routine: true }),
      runsOf.fold({ type: 'event', event: grant }),
      runsOf.fold(dead),
      runsOf.fold({ type: 'event', event: select(5, 1, 'app'), routine: true }),
    ];
    expect(out.map((i) => i?.type)).toEqual(['run', 'run', 'run', 'event', 'dead', 'run']);
    runsOf.reset();
    const again = runsOf.fold({ type: 'event', event: a, routine: true });
    expect(again).toEqual({ type: 'run', events: [a] });
  });

  it('give exactly the alerts and ledger of one-by-one statements, in one batch and in any delivery', async () => {
    const events = busyTimeline();
    const baseline = await runBatches([events]);
    expect(baseline.sessions.some((s) => (s.statements?.length ?? 0) > 3)).toBe(true);
    const expected = fingerprint(baseline);
    expect(fingerprint(await runBatches([events], { fold: true }))).toEqual(expected);
    expect(fingerprint(await runBatches([events], { fold: true, durablePending: false }))).toEqual(expected);
    await fc.assert(
      fc.asyncProperty(deliveries(events, LATENESS_MIN * 60_000), async (batches) => {
        const one = fingerprint(await runBatches(batches));
        expect(fingerprint(await runBatches(batches, { fold: true, durablePending: false }))).toEqual(one);
      }),
      runs(40),
    );
  });

  it('count a redelivered run once, whole or cut differently', async () => {
    const statements = [1, 2, 3, 4, 5, 6].map((m) => select(10 + m, 1, 'app'));
    const connect = db.connect({ at: at(10), conn: 1, account: 'app' });
    const options = { fold: true, durablePending: false } as const;
    const once = await runBatches([[connect, ...statements]], options);
    const again = await runBatches(
      [[connect, ...statements.slice(0, 4)], statements.slice(2), statements, statements.slice(1, 3)],
      options,
    );
    expect(once.sessions[0]?.counts.queries).toBe(6);
    expect(again.sessions).toEqual(once.sessions);
    expect(again.pipeline.stats.duplicates).toBe(2 + 6 + 2);
  });

  it('count statements redelivered once their connection is forgotten once', async () => {
    const connect = db.connect({ at: at(10), conn: 1, account: 'app' });
    const statements = [11, 12, 13, 14, 15, 16].map((m) => select(m, 1, 'app'));
    const tick = (minute: number, conn: number) => db.connect({ at: at(minute), conn, account: 'app' });
    const r = await runBatches(
      [[connect, ...statements, tick(60, 2)], [tick(100, 3)], [tick(101, 4), ...statements]],
      {
        fold: true,
        durablePending: false,
      },
    );
    expect(r.pipeline.stats.duplicates).toBe(6);
    expect(r.sessions.find((s) => s.connectKey === connect.key)?.counts.queries).toBe(6);
  });

  // Keys, not positions, tell these redeliveries: another DB system's later event releases the
  // statements while their own log's mark is within the lateness of them, or the run waits while a
  // log-reset gap ends its log's order.
  it.each([
    {
      after: 'while their log is behind another',
      between: () => [
        db.connect({ at: at(40), conn: 9, account: 'app', db: 'ocid1.mysqldbsystem.oc1..other' }),
      ],
    },
    {
      after: 'after their log lost its order',
      between: () => [
        gap.mysql({ from: at(60), to: at(61), reason: 'log-reset' }),
        db.connect({ at: at(62), conn: 2, account: 'app' }),
      ],
    },
  ])('count statements redelivered once applied $after once', async ({ between }) => {
    const connect = db.connect({ at: at(10), conn: 1, account: 'app' });
    const statements = [11, 12].map((m) => select(m, 1, 'app'));
    const r = await runBatches([[connect, ...statements], between(), statements], {
      fold: true,
      durablePending: false,
    });
    expect(r.pipeline.stats.duplicates).toBe(2);
    expect(r.sessions.find((s) => s.connectKey === connect.key)?.counts.queries).toBe(2);
  });

  it('count statements buffered in the store and redelivered after a restart once', async () => {
    const { config, rules } = testConfig();
    const connect = db.connect({ at: at(10), conn: 1, account: 'app' });
    const statements = [11, 12, 13].map((m) => select(m, 1, 'app'));
    const dir = mkdtempSync(join(tmpdir(), 'hwaudit-runs-'));
    try {
      const path = join(dir, 'state.sqlite');
      const first = SqliteStore.open(path);
      // Nothing is released yet: the store keeps the buffered events.
      await (await Pipeline.open({ config, rules, store: first })).ingest(folded([connect, ...statements]));
      await first.close();
      const r = await runBatches([[...statements, connect]], { store: SqliteStore.open(path) });
      expect(r.pipeline.stats.duplicates).toBe(4);
      expect(r.sessions.find((s) => s.connectKey === connect.key)?.counts.queries).toBe(3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('apply statements after a later-delivered disconnect and reconnect of their connection id to the new session', async () => {
    const first = db.connect({ at: at(10), conn: 7, account: 'app' });
    const quit = db.disconnect({ at: at(12), conn: 7, account: 'app' });
    const second = db.connect({ at: at(13), conn: 7, account: 'dba_proxy', user: 'alice', proxy: true });
    const before = [select(11, 7, 'app'), select(11.5, 7, 'app')];
    const after = [select(14, 7, 'dba_proxy'), select(15, 7, 'dba_proxy'), select(16, 7, 'dba_proxy')];
    // The statements arrive first, as one run spanning both sessions; the connection's own events later.
    const batches = [
      [first],
      [...before, ...after],
      [quit, second],
      [db.connect({ at: at(60), conn: 8, account: 'app' })],
    ];
    const options = { fold: true, durablePending: false } as const;
    const r = await runBatches(batches, options);
    expect(r.sessions.find((s) => s.connectKey === first.key)?.counts.queries).toBe(2);
    expect(r.sessions.find((s) => s.connectKey === second.key)?.counts.queries).toBe(3);
    expect(fingerprint(r)).toEqual(fingerprint(await runBatches(batches)));
  });

  it('apply statements after a server restart among them as statements of no open session', async () => {
    const connect = db.connect({ at: at(10), conn: 7, account: 'app' });
    // One run (a server start names no connection, so it does not end it), cut by the restart.
    const batch = [connect, select(11, 7, 'app'), db.startup({ at: at(12) }), select(13, 7, 'app')];
    const r = await runBatches([batch], { fold: true, durablePending: false });
    expect(folded(batch).filter((i) => i.type === 'run')).toHaveLength(1);
    expect(r.sessions.find((s) => s.connectKey === connect.key)?.counts.queries).toBe(1);
    expect(r.pipeline.correlation.orphanEvents).toBe(1);
    expect(fingerprint(r)).toEqual(fingerprint(await runBatches([batch])));
  });

  it('record a break-glass session’s statements only from when late IAM data makes it one', async () => {
    const connect = db.connect({ at: at(30), conn: 3, account: 'emergency_admin', user: 'bob', proxy: true });
    const statements = [31, 32, 50, 51].map((m) => select(m, 3, 'emergency_admin'));
    const added = iam.added({ at: at(20), user: USERS.bob, group: GROUPS.bg });
    // One run; the first watermark (minute 35) passes half of it. The membership then arrives late
    // and makes the session a break-glass one: only the statements applied after it are recorded.
    const batches = [
      [connect, ...statements, db.connect({ at: at(55), conn: 8, account: 'app' })],
      [added],
      [db.connect({ at: at(100), conn: 9, account: 'app' })],
    ];
    const r = await runBatches(batches, { fold: true, durablePending: false });
    const session = r.sessions.find((s) => s.connectKey === connect.key);
    expect(session?.breakGlassGrant).not.toBeNull();
    expect(session?.counts.queries).toBe(4);
    expect(session?.statements?.map((s) => s.time)).toEqual([statements[2]!.time, statements[3]!.time]);
    expect(fingerprint(r)).toEqual(fingerprint(await runBatches(batches)));
  });
});
