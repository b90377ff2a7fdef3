// Batches ingested with `hold` (a replay writes its batches to the store a few at a time): the
// records delivered, their content and their order, the stored alerts, the session ledger and the
// counts are those of committing every batch, whatever the batching, the redeliveries and which
// batches are held.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Alert } from '../../schemas/alert.js';
import type { ConfigInput } from '../../schemas/config.js';
import type { CanonicalEvent } from '../../schemas/events.js';
import type { ActiveRule } from '../../shared/config/active-rules.js';
import { isResolution, type Outcome, type RuleContext, type SessionFact } from '../../shared/detect/rule.js';
import { at, baseConfig, db, GROUPS, iam, USERS } from '../../shared/detect/timeline.js';
import { Pipeline } from '../../shared/pipeline.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import type { StateStore } from '../../shared/state/state-store.js';
import { collect } from '../helpers/collect.js';
import { describeMySql } from '../helpers/mysql-server.js';
import { runs } from '../helpers/property.js';
import { deliveries, folded, testConfig } from '../helpers/run-timeline.js';
import { type Adapter, mysqlAdapter, RecordingSink, sqliteThreadAdapter } from '../state/store-fixtures.js';
import { incidentTimeline, LIFECYCLE_CONFIG, lifecycle } from './scenario-fleet.js';

const LATENESS = 20 * 60_000;

/**
 * Ingests the batches as a replay does (folded into runs, buffered events not stored), holding
 * those `hold` names: a held call is not awaited (its delivery waits for a later commit), a
 * committing one is. What the sink got, in order, and what the store and the stats hold. The
 * store is a new SQLite one in memory, or `opts.store` (left open).
 */
async function run(
  batches: CanonicalEvent[][],
  hold: (i: number) => boolean,
  config: Partial<ConfigInput>,
  opts: { extraRules?: ActiveRule[]; store?: StateStore } = {},
) {
  const { config: validated, rules: configured } = testConfig(config);
  const rules = [...configured, ...(opts.extraRules ?? [])];
  const store = opts.store ?? SqliteStore.open(':memory:');
  const sink = new RecordingSink();
  const pipeline = await Pipeline.open({
    config: validated,
    rules,
    store,
    sinks: [sink],
    durablePending: false,
  });
  // A batch that prunes the ledger is never held, and the first commit that moves the watermark
  // does: this one, with a disconnect of no known session two hours before the timelines.
  const start = [db.disconnect({ at: at(-120), conn: 999, account: 'admin' })];
  const returned: Alert[][] = [await pipeline.ingest(folded(start))];
  const held: Promise<Alert[]>[] = [];
  for (const [i, batch] of batches.entries()) {
    const call = pipeline.ingest(folded(batch), undefined, { hold: hold(i) });
    if (hold(i)) held.push(call);
    else {
      returned.push(...(await Promise.all(held.splice(0))), await call);
    }
  }
  const finished = pipeline.finish();
  returned.push(...(await Promise.all(held)), await finished);
  const result = {
    got: sink.sent,
    returned,
    alerts: await collect(store.alerts()),
    sessions: await collect(store.sessions()),
    deadLetters: (await collect(store.deadLetters())).length,
    stats: pipeline.stats,
  };
  if (opts.store === undefined) await store.close();
  return result;
}

const timelines: [string, CanonicalEvent[], Partial<ConfigInput>][] = [
  ['an incident timeline', incidentTimeline(), {}],
  ['an alert lifecycle, with resolutions', [...lifecycle().events, lifecycle().late], LIFECYCLE_CONFIG],
];

describe('batches held for a later commit', () => {
  for (const [name, events, config] of timelines) {
    it(`give what committing every batch gives: ${name}, any delivery, any batches held`, async () => {
      const withConfig = { ...baseConfig(), ...config };
      await fc.assert(
        fc.asyncProperty(
          deliveries(events, LATENESS),
          fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
          async (batches, holds) => {
            const each = await run(batches, () => false, withConfig);
            expect(each.got.length).toBeGreaterThan(0);
            expect(await run(batches, (i) => holds[i]!, withConfig)).toEqual(each);
          },
        ),
        runs(30),
      );
    });
  }

  it('an alert and its resolution held in different batches: the resolution is the alert as stored', async () => {
    const { events, late } = lifecycle();
    const batches = [...events, late].map((e) => [e]);
    const each = await run(batches, () => false, LIFECYCLE_CONFIG);
    expect(each.got.some((a) => a.status === 'resolved')).toBe(true);
    expect(await run(batches, () => true, LIFECYCLE_CONFIG)).toEqual(each);
  });

  it('a redelivery older than the retention is too late, as when every batch commits', async () => {
    // The first batch's IAM event leaves its key; two hours on, with a retention of one hour, a
    // commit would have pruned it: its redelivery is then too late, not a duplicate.
    const added = iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg });
    const batches = [
      [added, db.connect({ at: at(30), conn: 1, account: 'admin' })],
      [db.connect({ at: at(150), conn: 2, account: 'admin' })],
      [added],
    ];
    const config = { ...baseConfig(), retention: 'PT1H' };
    const each = await run(batches, () => false, config);
    expect(each.stats.deadLetters.TOO_LATE).toBe(1);
    expect(each.deadLetters).toBe(1);
    expect(each.stats.duplicates).toBe(0);
    expect(await run(batches, () => true, config)).toEqual(each);
    // Redelivered before the clock moves on, it is a duplicate either way.
    const soon = [batches[0]!, [added], batches[1]!];
    const again = await run(soon, () => false, config);
    expect(again.stats.duplicates).toBe(1);
    expect(await run(soon, () => true, config)).toEqual(again);
  });

  it('a redelivery after the watermark passed it is a duplicate, its first copy held', async () => {
    const added = iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg });
    const batches = [[added, db.connect({ at: at(30), conn: 1, account: 'admin' })], [added]];
    const each = await run(batches, () => false, baseConfig());
    expect(each.stats.duplicates).toBe(1);
    expect(await run(batches, () => true, baseConfig())).toEqual(each);
  });

  it('a finding raised again by a late event in a held batch is not recorded twice', async () => {
    // The late removal re-evaluates Alice's session: its rules run again on it.
    const batches = [
      [
        db.connect({ at: at(30), conn: 1, account: 'dba_proxy', user: 'alice', proxy: true }),
        db.connect({ at: at(150), conn: 2, account: 'admin' }),
      ],
      [iam.removed({ at: at(0), user: USERS.alice, group: GROUPS.dba })],
    ];
    const each = await run(batches, () => false, baseConfig());
    expect(each.got.filter((a) => a.rule === 'access.after-revocation')).toHaveLength(1);
    expect(await run(batches, () => true, baseConfig())).toEqual(each);
  });

  it('a finding raised again in a later held batch is not recorded twice', async () => {
    // A rule whose every finding has the same id: the second is an alert the store already holds.
    const local = testConfig().rules.find((r) => r.rule.id === 'access.local-account')!;
    const again: ActiveRule = {
      ...local,
      rule: {
        ...local.rule,
        id: 'test.same-finding',
        suppressFor: 0,
        on: {
          session: (fact: SessionFact, ctx: RuleContext<unknown>) =>
            local.rule.on.session!(fact, ctx).map((o: Outcome) =>
              isResolution(o) ? o : { ...o, subject: 'one', occurrence: 'one' },
            ),
        },
      },
    };
    const batches = [
      [db.connect({ at: at(1), conn: 1, account: 'app' })],
      [db.connect({ at: at(90), conn: 2, account: 'app' })],
      [db.connect({ at: at(200), conn: 3, account: 'admin' })],
    ];
    const each = await run(batches, () => false, baseConfig(), { extraRules: [again] });
    expect(each.got.filter((a) => a.rule === 'test.same-finding')).toHaveLength(1);
    expect(await run(batches, () => true, baseConfig(), { extraRules: [again] })).toEqual(each);
  });

  it('a batch that prunes the ledger commits, held or not', async () => {
    // With a retention of two hours, the third batch moves the ledger's horizon into the next day:
    // its commit drops the first session.
    const config = { ...baseConfig(), auditRetention: 'PT2H', lookback: 'PT1H' };
    const batches = [
      [
        db.connect({ at: at(0), conn: 1, account: 'admin' }),
        db.disconnect({ at: at(10), conn: 1, account: 'admin' }),
      ],
      [db.connect({ at: at(1000), conn: 2, account: 'admin' })],
      [db.connect({ at: at(1100), conn: 3, account: 'admin' })],
    ];
    const each = await run(batches, () => false, config);
    expect(each.sessions.map((s) => s.connectionId)).toEqual([2, 3]);
    expect(await run(batches, () => true, config)).toEqual(each);
  });

  it('a host that stores what it buffers commits every batch, hold or not', async () => {
    const { config, rules } = testConfig();
    const store = SqliteStore.open(':memory:');
    const pipeline = await Pipeline.open({ config, rules, store });
    await pipeline.ingest(folded([db.disconnect({ at: at(-120), conn: 999, account: 'admin' })]));
    const waiting = db.connect({ at: at(0), conn: 1, account: 'admin' });
    await pipeline.ingest(folded([waiting]), undefined, { hold: true });
    expect((await store.loadPending()).map((e) => e.key)).toEqual([waiting.key]);
    await store.close();
  });

  it("an alert's later occurrences, merged in a later held batch, are stored on it", async () => {
    const batches = [
      [db.connect({ at: at(1), conn: 1, account: 'app' })],
      [db.connect({ at: at(61), conn: 2, account: 'app' })],
      [db.connect({ at: at(200), conn: 3, account: 'admin' })],
    ];
    const each = await run(batches, () => false, baseConfig());
    const local = each.alerts.filter((a) => a.rule === 'access.local-account');
    expect(local.map((a) => a.details?.occurrences)).toEqual([2]);
    expect(await run(batches, () => true, baseConfig())).toEqual(each);
  });

  it('a commit that fails fails the batches held for it, and writes none of them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hwaudit-held-'));
    try {
      const path = join(dir, 'state.sqlite');
      await SqliteStore.open(path).close();
      // A real failure of the commit that writes a dead letter, in SQLite itself.
      const raw = new Database(path);
      raw.exec(
        `CREATE TRIGGER no_dead BEFORE INSERT ON dead_letters BEGIN SELECT RAISE(ABORT, 'refused'); END`,
      );
      raw.close();
      const store = SqliteStore.open(path);
      const { config, rules } = testConfig();
      const pipeline = await Pipeline.open({ config, rules, store, durablePending: false });
      await pipeline.ingest(folded([db.disconnect({ at: at(-120), conn: 999, account: 'admin' })]));
      const connects = [1, 2].map((conn) => db.connect({ at: at(conn * 60), conn, account: 'app' }));
      const held = pipeline.ingest(folded(connects), undefined, { hold: true });
      const dead = {
        type: 'dead' as const,
        dead: { code: 'JSON_INVALID' as const, source: 't', message: 'x' },
      };
      const failing = pipeline.ingest([dead]);
      await expect(failing).rejects.toMatchObject({ code: 'STORE_FAILED' });
      await expect(held).rejects.toBe(await failing.catch((e: unknown) => e));
      expect(await collect(store.sessions())).toEqual([]);
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an output that fails a held batch: the other batches of its commit still reach every output, then fail', async () => {
    const { store, working, pipeline, calls } = await downOutputBatches();
    // The first batch's alert waits for the second batch, whose delivery is the first to fail.
    await expect(calls[0]).resolves.toEqual([]);
    for (const call of calls.slice(1)) await expect(call).rejects.toThrow('output down');
    const stored = await collect(store.alerts());
    expect(stored).toHaveLength(3);
    expect(working.sent.map((a) => a.id).sort()).toEqual(stored.map((a) => a.id).sort());
    expect(pipeline.stats.alerts).toBe(stored.length);
    // A call after the failure does no work, and delivers nothing.
    await expect(pipeline.finish()).rejects.toThrow('output down');
    expect(working.sent).toHaveLength(stored.length);
    await store.close();
  });

  it('a store that cannot mark a delivery, with an output that fails: no later batch is sent', async () => {
    // From the first held batch on the store writes no delivery mark: what the working output got
    // stays unmarked, and is sent to it again once the store works (the backlog of the next run).
    const { store, working, calls } = await downOutputBatches((store) => {
      store.markDelivered = async () => {
        throw new Error('disk I/O error');
      };
    });
    await expect(calls[0]).resolves.toEqual([]);
    for (const call of calls.slice(1)) await expect(call).rejects.toThrow();
    expect(await collect(store.alerts())).toHaveLength(3);
    // The store failed with the first delivery: the batches after it are sent to no output.
    expect(working.sent).toHaveLength(1);
    await store.close();
  });

  it('a batch that fails before its commit fails the batches held before it', async () => {
    const { config, rules } = testConfig();
    const store = SqliteStore.open(':memory:');
    const pipeline = await Pipeline.open({ config, rules, store, durablePending: false });
    await pipeline.ingest(folded([db.disconnect({ at: at(-120), conn: 999, account: 'admin' })]));
    const held = pipeline.ingest(folded([db.connect({ at: at(30), conn: 1, account: 'admin' })]), undefined, {
      hold: true,
    });
    await store.close();
    // An event the watermark passed is looked up in the closed store.
    const late = [iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg })];
    await expect(pipeline.ingest(folded(late), undefined, { hold: true })).rejects.toThrow();
    await expect(held).rejects.toThrow();
  });
});

/** Every timeline one event a batch, every batch held, on `adapter`'s stores: as committing each. */
function heldOnStore(adapter: Adapter): void {
  for (const [name, events, config] of timelines) {
    it(`${name}, every batch held`, async () => {
      const batches = events.map((e) => [e]);
      const results = [];
      for (const hold of [false, true]) {
        const backing = await adapter.create();
        try {
          results.push(
            await run(batches, () => hold, { ...baseConfig(), ...config }, { store: await backing.open() }),
          );
        } finally {
          await backing.dispose();
        }
      }
      expect(results[0]!.got.length).toBeGreaterThan(0);
      expect(results[1]).toEqual(results[0]);
    });
  }
}

describe('batches held for a SQLite store that commits on a thread of its own', () => {
  heldOnStore(sqliteThreadAdapter);
});

describeMySql('batches held for a MySQL store', (server) => {
  heldOnStore(mysqlAdapter(server));
});

/**
 * A pipeline with an output that fails every send before one that works, and four batches of one
 * alert each (a member added to the break-glass group, released by the next batch), the first three
 * held for the fourth's commit; `before` changes the store once the pipeline opened.
 */
async function downOutputBatches(before?: (store: SqliteStore) => void) {
  const { config, rules } = testConfig();
  const store = SqliteStore.open(':memory:');
  const working = new RecordingSink('working');
  const down = new (class extends RecordingSink {
    override async send(alerts: Alert[]): Promise<void> {
      if (alerts.length > 0) throw new Error('output down');
    }
  })('down');
  const pipeline = await Pipeline.open({
    config,
    rules,
    store,
    sinks: [down, working],
    durablePending: false,
  });
  await pipeline.ingest(folded([db.disconnect({ at: at(-120), conn: 999, account: 'admin' })]));
  before?.(store);
  const users = [USERS.alice, USERS.bob, USERS.carol, USERS.dave];
  const calls = users.map((user, i) =>
    pipeline.ingest(folded([iam.added({ at: at(60 * (i + 1)), user, group: GROUPS.bg })]), undefined, {
      hold: i < users.length - 1,
    }),
  );
  return { store, working, pipeline, calls };
}
