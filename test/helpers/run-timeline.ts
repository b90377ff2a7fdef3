// Runs canonical events through the real pipeline on an in-memory SQLite store.
import { beforeEach } from 'vitest';
import type { Alert } from '../../schemas/alert.js';
import type { ConfigInput } from '../../schemas/config.js';
import type { CanonicalEvent } from '../../schemas/events.js';
import type { Session } from '../../schemas/session.js';
import { validateConfig } from '../../shared/config/load-config.js';
import { baseConfig } from '../../shared/detect/timeline.js';
import { Pipeline } from '../../shared/pipeline.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';

export type TimelineResult = { alerts: Alert[]; sessions: Session[]; pipeline: Pipeline };

export function testConfig(overrides: Partial<ConfigInput> = {}) {
  return validateConfig({ ...baseConfig(), ...overrides });
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}

/** Feeds `batches` (each one transaction) then finishes at `asOf`; returns what the store holds. */
export async function runBatches(
  batches: CanonicalEvent[][],
  opts: { config?: Partial<ConfigInput>; asOf?: string; store?: SqliteStore } = {},
): Promise<TimelineResult> {
  const { config, rules } = testConfig(opts.config);
  const store = opts.store ?? SqliteStore.open(':memory:');
  const pipeline = await Pipeline.open({ config, rules, store });
  for (const batch of batches)
    await pipeline.ingest(batch.map((event) => ({ type: 'event' as const, event })));
  await pipeline.finish(opts.asOf === undefined ? undefined : Date.parse(opts.asOf));
  return { alerts: await collect(store.alerts()), sessions: await collect(store.sessions()), pipeline };
}

export function runTimeline(
  events: CanonicalEvent[],
  opts: { config?: Partial<ConfigInput>; asOf?: string } = {},
) {
  return runBatches([events], opts);
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
