// A pipeline's calls may overlap on a store whose calls are ordered (SQLite, with or without its
// commit thread): a replay builds its next batch while the last one is written. Overlapping calls
// give the alerts, session ledger and deliveries of calls made one after the other; a commit that
// fails fails every call after it, and nothing after it reaches the store.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { CanonicalEvent } from '../../schemas/events.js';
import { at, db } from '../../shared/detect/timeline.js';
import { Pipeline } from '../../shared/pipeline.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { collect } from '../helpers/collect.js';
import { runs } from '../helpers/property.js';
import { deliveries, runBatches, type TimelineResult, testConfig } from '../helpers/run-timeline.js';
import { COMMIT_WORKER_BUILT, RecordingSink } from '../state/store-fixtures.js';
import { incidentTimeline } from './scenario-fleet.js';

const dir = mkdtempSync(join(tmpdir(), 'hwaudit-overlap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

const STORES: Record<string, Parameters<typeof SqliteStore.open>[1]> = {
  'SQLite on this thread': {},
  'SQLite with a commit thread': { thread: 'commits', threadWorker: COMMIT_WORKER_BUILT },
  'SQLite with a checkpoint thread': { thread: 'checkpoints', threadWorker: COMMIT_WORKER_BUILT },
};

function fingerprint(r: TimelineResult) {
  return {
    alerts: r.alerts.map((a) => JSON.stringify(a)),
    sessions: r.sessions.map((s) => JSON.stringify(s)),
  };
}

const events = incidentTimeline();

describe.each(Object.entries(STORES))('overlapping calls on %s', (_, opts) => {
  const file = () => join(dir, `s${++files}.sqlite`);
  const open = (path = file()) => SqliteStore.open(path, opts);

  it('give the alerts and session ledger of calls made one after the other, in any delivery', async () => {
    await fc.assert(
      fc.asyncProperty(deliveries(events, 20 * 60_000), async (batches) => {
        const sequential = open();
        const overlapping = open();
        try {
          const one = fingerprint(
            await runBatches(batches, { store: sequential, fold: true, durablePending: false }),
          );
          const all = await runBatches(batches, {
            store: overlapping,
            fold: true,
            durablePending: false,
            overlap: true,
          });
          expect(fingerprint(all)).toEqual(one);
          expect(one.alerts.length).toBeGreaterThan(5);
        } finally {
          await sequential.close();
          await overlapping.close();
        }
      }),
      runs(8),
    );
  });

  it('deliver the same records in the same order, each marked delivered', async () => {
    const sent = async (overlap: boolean) => {
      const store = open();
      const sink = new RecordingSink();
      const { config, rules } = testConfig();
      const pipeline = await Pipeline.open({ config, rules, store, sinks: [sink] });
      const calls: Promise<unknown>[] = [];
      for (let i = 0; i < events.length; i += 7) {
        const call = pipeline.ingest(
          events.slice(i, i + 7).map((event) => ({ type: 'event' as const, event })),
        );
        if (overlap) calls.push(call);
        else await call;
      }
      calls.push(pipeline.finish());
      await Promise.all(calls);
      const undelivered = await store.undelivered(sink.name);
      await store.close();
      expect(undelivered).toEqual([]);
      return sink.sent.map((a) => a.id);
    };
    const one = await sent(false);
    expect(one.length).toBeGreaterThan(5);
    expect(await sent(true)).toEqual(one);
  });

  it('fail every call after a failed commit, which then commit nothing', async () => {
    const path = file();
    await open(path).close();
    // A real failure of the commit that writes a dead letter, in SQLite itself.
    const raw = new Database(path);
    raw.exec(
      `CREATE TRIGGER no_dead BEFORE INSERT ON dead_letters BEGIN SELECT RAISE(ABORT, 'refused'); END`,
    );
    raw.close();
    const store = open(path);
    const { config, rules } = testConfig();
    const pipeline = await Pipeline.open({ config, rules, store, durablePending: false });
    const connect = (conn: number, minute: number): CanonicalEvent =>
      db.connect({ at: at(minute), conn, account: 'app' });
    const item = (event: CanonicalEvent) => ({ type: 'event' as const, event });
    const calls = [
      pipeline.ingest([item(connect(1, 0)), item(connect(2, 60))]),
      pipeline.ingest([
        { type: 'dead', dead: { code: 'JSON_INVALID', source: 'test', message: 'not JSON' } },
      ]),
      pipeline.ingest([item(connect(3, 120)), item(connect(4, 180))]),
      pipeline.finish(),
    ];
    const outcomes = await Promise.allSettled(calls);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected']);
    const failure = (outcomes[1] as PromiseRejectedResult).reason as Error;
    expect(failure).toMatchObject({ code: 'STORE_FAILED', message: 'state store commit failed' });
    for (const o of outcomes.slice(2)) expect((o as PromiseRejectedResult).reason).toBe(failure);
    await expect(pipeline.ingest([item(connect(5, 240))])).rejects.toBe(failure);
    // What the first commit wrote (connection 2 still waited for the watermark), none of the rest.
    const stored = await collect(store.sessions());
    expect(stored.map((s) => s.connectionId)).toEqual([1]);
    expect((await collect(store.deadLetters())).length).toBe(0);
    await store.close();
  });
});
