// The pipeline's guards on event time, on a real SQLite store: events dated beyond the clock (plus
// clockSkew) or before 2010, and events older than the retention horizon, are dead letters with
// their reason, just outside each limit, and accepted just inside; none of them moves the watermark.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../schemas/config.js';
import type { DeadLetter } from '../../schemas/dead-letter.js';
import type { CanonicalEvent } from '../../schemas/events.js';
import { at, db } from '../../shared/detect/timeline.js';
import { EARLIEST_EVENT, Pipeline } from '../../shared/pipeline.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { toIso } from '../../shared/time.js';
import { testConfig } from '../helpers/run-timeline.js';

const dir = mkdtempSync(join(tmpdir(), 'hwaudit-guards-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

const HOUR = 3_600_000;
const NOW = at(0);

/** Ingests `batches` with the clock at NOW; returns the stats and the stored dead letters. */
async function run(batches: CanonicalEvent[][], config: Partial<ConfigInput> = {}) {
  const path = join(dir, `guards-${++files}.sqlite`);
  const store = SqliteStore.open(path);
  const { config: cfg, rules } = testConfig(config);
  const p = await Pipeline.open({ config: cfg, rules, store, now: () => NOW });
  for (const b of batches) await p.ingest(b.map((event) => ({ type: 'event' as const, event })));
  const stats = structuredClone(p.stats);
  await store.close();
  const raw = new Database(path, { readonly: true });
  const dead = raw
    .prepare<[], { body: string }>('SELECT body FROM dead_letters ORDER BY rowid')
    .all()
    .map((r) => JSON.parse(r.body) as DeadLetter);
  raw.close();
  return { stats, dead };
}

const connect = (ts: number, conn: number) => db.connect({ at: ts, conn, account: 'app' });
/** An event of another DB system's log: older than what one log gave, it is late, not a redelivery. */
const other = (ts: number, conn: number, log = 'other') =>
  db.connect({ at: ts, conn, account: 'app', db: `ocid1.mysqldbsystem.oc1..${log}` });

describe('event time guards', () => {
  it('accepts an event at now plus clockSkew; one millisecond later is TIME_OUT_OF_RANGE, and does not move the watermark', async () => {
    const limit = NOW + HOUR;
    const { stats, dead } = await run([
      [connect(limit + 1, 1)],
      // Had the refused event moved the watermark, this one would be late.
      [other(NOW - 30 * 60_000, 2)],
      [connect(limit, 3)],
      // The accepted event at the limit did move it: this one is late, but not dead.
      [other(NOW - 2 * HOUR, 4, 'third')],
    ]);
    expect(dead).toEqual([
      {
        code: 'TIME_OUT_OF_RANGE',
        source: 'pipeline',
        message: `event time ${toIso(limit + 1)} is after now plus clockSkew (${toIso(limit)})`,
      },
    ]);
    expect(stats.deadLetters).toEqual({ TIME_OUT_OF_RANGE: 1 });
    expect(stats.received).toBe(4);
    expect(stats.late).toBe(1);
  });

  it('a wider clockSkew accepts what the default refuses', async () => {
    const { stats } = await run([[connect(NOW + 2 * HOUR, 1)]], { clockSkew: 'PT3H' });
    expect(stats.deadLetters).toEqual({});
  });

  it('accepts an event at 2010-01-01T00:00:00Z; one millisecond before is TIME_OUT_OF_RANGE (before 2010)', async () => {
    const { stats, dead } = await run([[connect(EARLIEST_EVENT, 1), connect(EARLIEST_EVENT - 1, 2)]], {
      retention: 'P10000D',
      clockSkew: 'P10000D',
    });
    expect(dead).toEqual([
      {
        code: 'TIME_OUT_OF_RANGE',
        source: 'pipeline',
        message: `event time ${toIso(EARLIEST_EVENT - 1)} is before 2010`,
      },
    ]);
    expect(stats.deadLetters).toEqual({ TIME_OUT_OF_RANGE: 1 });
  });

  it('an event older than the released watermark minus retention is TOO_LATE; one at the horizon is applied late', async () => {
    // The first batch releases the watermark to NOW - lateness (20 minutes).
    const released = NOW - 20 * 60_000;
    const horizon = released - 24 * HOUR;
    const { stats, dead } = await run([[connect(NOW, 1)], [other(horizon, 2), other(horizon - 1, 3)]], {
      retention: 'P1D',
    });
    expect(dead).toEqual([
      {
        code: 'TOO_LATE',
        source: 'pipeline',
        message: `event older than the retention horizon (${toIso(horizon)})`,
      },
    ]);
    expect(stats.late).toBe(1);
  });
});
