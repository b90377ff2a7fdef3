// Runs canonical events through the real pipeline on an in-memory SQLite store, in any delivery a
// source may make of them, and across a reopen of a store file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeEach, expect } from 'vitest';
import type { Alert } from '../../schemas/alert.js';
import type { ConfigInput } from '../../schemas/config.js';
import type { CanonicalEvent } from '../../schemas/events.js';
import type { Session } from '../../schemas/session.js';
import { validateConfig } from '../../shared/config/load-config.js';
import { isRoutineStatement } from '../../shared/correlate/sql-facts.js';
import { type BatchItem, StatementRuns } from '../../shared/decode/statement-runs.js';
import { baseConfig } from '../../shared/detect/timeline.js';
import { Pipeline } from '../../shared/pipeline.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';

export type TimelineResult = { alerts: Alert[]; sessions: Session[]; pipeline: Pipeline };
/** What a test does once a pipeline is open on its store, before it ingests anything. */
export type Opened = (pipeline: Pipeline, store: SqliteStore) => Promise<unknown>;

export function testConfig(overrides: Partial<ConfigInput> = {}) {
  return validateConfig({ ...baseConfig(), ...overrides });
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}

/** A batch as a replay gives it: each connection's routine statements taken together as a run. */
export function folded(batch: readonly CanonicalEvent[]): BatchItem[] {
  const runs = new StatementRuns();
  return batch.flatMap((event) => {
    const routine = event.source === 'mysql' && isRoutineStatement(event);
    const item = runs.fold(routine ? { type: 'event', event, routine } : { type: 'event', event });
    return item === undefined ? [] : [item];
  });
}

/**
 * Feeds `batches` (each one transaction) then finishes at `asOf`; returns what the store holds.
 * `fold` takes each batch's routine statements together, as a replay does; `overlap` makes every
 * call at once, none waiting for the last to resolve (a store whose calls are ordered allows it).
 */
export async function runBatches(
  batches: CanonicalEvent[][],
  opts: {
    config?: Partial<ConfigInput>;
    asOf?: string;
    store?: SqliteStore;
    fold?: boolean;
    durablePending?: boolean;
    overlap?: boolean;
    /** Runs once the pipeline is open, before the first batch (a sync that stores a snapshot, say). */
    opened?: Opened;
  } = {},
): Promise<TimelineResult> {
  const { config, rules } = testConfig(opts.config);
  const store = opts.store ?? SqliteStore.open(':memory:');
  const pipeline = await Pipeline.open({ config, rules, store, durablePending: opts.durablePending ?? true });
  await opts.opened?.(pipeline, store);
  const calls: Promise<unknown>[] = [];
  for (const batch of batches) {
    const call = pipeline.ingest(
      opts.fold ? folded(batch) : batch.map((event) => ({ type: 'event' as const, event })),
    );
    if (opts.overlap) calls.push(call);
    else await call;
  }
  calls.push(pipeline.finish(opts.asOf === undefined ? undefined : Date.parse(opts.asOf)));
  await Promise.all(calls);
  return { alerts: await collect(store.alerts()), sessions: await collect(store.sessions()), pipeline };
}

export function runTimeline(
  events: CanonicalEvent[],
  opts: { config?: Partial<ConfigInput>; asOf?: string } = {},
) {
  return runBatches([events], opts);
}

/**
 * Ingests each of `batches` on its own opening of one store file, closing it after each but the
 * last (a restart between every two batches), then finishes at `asOf`; `opened` runs on the first
 * pipeline. Returns what the store holds at the end.
 */
export async function runAcrossReopens(
  batches: CanonicalEvent[][],
  opts: { config?: Partial<ConfigInput>; asOf?: string; opened?: Opened } = {},
): Promise<TimelineResult> {
  const dir = mkdtempSync(join(tmpdir(), 'hwaudit-reopen-'));
  try {
    const path = join(dir, 'state.sqlite');
    const { config, rules } = testConfig(opts.config);
    for (const [i, batch] of batches.slice(0, -1).entries()) {
      const store = SqliteStore.open(path);
      const pipeline = await Pipeline.open({ config, rules, store });
      if (i === 0) await opts.opened?.(pipeline, store);
      await pipeline.ingest(batch.map((event) => ({ type: 'event' as const, event })));
      await store.close();
    }
    // A single batch has no restart: its pipeline is the first.
    const { opened, ...last } = opts;
    const first = batches.length === 1 && opened ? { opened } : {};
    return await runBatches(batches.slice(-1), { ...last, ...first, store: SqliteStore.open(path) });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Ingests `before` into a store file (after `opened`, on the first pipeline), closes it, then runs
 * `after` on the reopened store.
 */
export function runAcrossReopen(
  before: CanonicalEvent[],
  after: CanonicalEvent[],
  opened?: Opened,
): Promise<TimelineResult> {
  return runAcrossReopens([before, after], opened ? { opened } : {});
}

/**
 * Any delivery of `events` a source may make within `lateness` ms: each event late by less than
 * the lateness, up to 8 of them again (soon, maybe while the first copy still waits, or three
 * latenesses later), cut into up to 7 batches.
 */
export function deliveries(events: CanonicalEvent[], lateness: number): fc.Arbitrary<CanonicalEvent[][]> {
  const delay = fc.integer({ min: 0, max: lateness - 1 });
  const index = fc.integer({ min: 0, max: events.length - 1 });
  return fc
    .tuple(
      fc.array(delay, { minLength: events.length, maxLength: events.length }),
      fc.array(fc.tuple(index, fc.option(delay, { nil: undefined })), { maxLength: 8 }),
      fc.array(fc.integer({ min: 1, max: events.length }), { maxLength: 6 }),
    )
    .map(([delays, again, cuts]) => {
      const arrivals = events.map((e, i) => ({ e, arrive: e.ts + delays[i]! }));
      for (const [i, soon] of again)
        arrivals.push({ e: events[i]!, arrive: events[i]!.ts + (soon ?? 3 * lateness) });
      arrivals.sort((a, b) => a.arrive - b.arrive);
      const stream = arrivals.map((a) => a.e);
      const bounds = [...new Set([0, ...cuts.map((c) => Math.min(c, stream.length)), stream.length])].sort(
        (a, b) => a - b,
      );
      return bounds.slice(1).map((end, i) => stream.slice(bounds[i], end));
    });
}

/** Asserts that every delivery of `events` within `lateness` ms gives what one pass gives, as `outcome` sees it. */
export async function sameForEveryDelivery<T>(
  events: CanonicalEvent[],
  lateness: number,
  outcome: (r: TimelineResult) => T,
  numRuns: { numRuns: number },
  opts: { config?: Partial<ConfigInput> } = {},
): Promise<void> {
  const baseline = outcome(await runTimeline(events, opts));
  await fc.assert(
    fc.asyncProperty(deliveries(events, lateness), async (batches) => {
      expect(outcome(await runBatches(batches, opts))).toEqual(baseline);
    }),
    numRuns,
  );
}

/**
 * A file's shared fixture, built once in the first test that runs rather than in `beforeAll`: the
 * work then counts as that test's, so mutation testing's per-test coverage sees which test reaches
 * the code (work outside any test makes every mutant in it run the whole suite).
 */
export function beforeFirstTest(build: () => Promise<void>): void {
  let built = false;
  beforeEach(async () => {
    if (built) return;
    built = true;
    await build();
  });
}
