// The alert lifecycle: every rule that can end gets one resolution record (same id, status
// resolved), after its alert, whatever the batching and however often batches are redelivered; a
// sink receives each record once, the alert before its resolution.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Alert, recordKey } from '../../schemas/alert.js';
import type { CanonicalEvent } from '../../schemas/events.js';
import { baseConfig } from '../../shared/detect/timeline.js';
import type { AlertSink } from '../../shared/emit/sink.js';
import { Pipeline } from '../../shared/pipeline.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { testConfig } from '../helpers/run-timeline.js';
import { LIFECYCLE_CONFIG as CONFIG, lifecycle } from './scenario-fleet.js';

/** A sink that keeps every record it is sent, in order. */
function recorder(): AlertSink & { got: Alert[] } {
  const got: Alert[] = [];
  return { name: 'recorder', got, send: async (records) => void got.push(...records) };
}

async function run(batches: CanonicalEvent[][]) {
  const { config, rules } = testConfig({ ...baseConfig(), ...CONFIG });
  const store = SqliteStore.open(':memory:');
  const sink = recorder();
  const pipeline = await Pipeline.open({ config, rules, store, sinks: [sink] });
  for (const b of batches) await pipeline.ingest(b.map((event) => ({ type: 'event' as const, event })));
  await pipeline.finish();
  const stored: Alert[] = [];
  for await (const a of store.alerts()) stored.push(a);
  await store.close();
  return { stored, delivered: sink.got };
}

const lines = (records: Alert[]) => records.map((r) => JSON.stringify(r)).sort();

describe('resolutions', () => {
  const { events, late } = lifecycle();

  it('each rule that can end gets its resolution, after its alert', async () => {
    const { stored, delivered } = await run([events, [late]]);
    const resolved = stored.filter((a) => a.status === 'resolved');
    expect(resolved.map((r) => `${r.rule}:${r.resolution?.reason}`).sort()).toEqual(
      [
        'access.unattributed:attributed',
        'break-glass.stale:membership-removed',
        'iam.auth-policy-change:reverted',
        'mapping.change:acknowledged',
        'mapping.change:reverted',
      ].sort(),
    );
    for (const r of resolved) {
      const alert = stored.find((a) => a.id === r.id && a.status === 'open')!;
      expect(r).toEqual({ ...alert, status: 'resolved', resolution: r.resolution });
      expect(stored.indexOf(alert)).toBeLessThan(stored.indexOf(r));
      const sent = delivered.map(recordKey);
      expect(sent.indexOf(alert.id)).toBeLessThan(sent.indexOf(recordKey(r)));
    }
    // The restore and the deletion end the earlier changes and raise nothing themselves.
    expect(stored.filter((a) => a.rule === 'mapping.change' && a.status === 'open')).toHaveLength(2);
    expect(stored.filter((a) => a.rule === 'iam.auth-policy-change' && a.status === 'open')).toHaveLength(1);
    expect(new Set(delivered.map(recordKey)).size).toBe(delivered.length);
    expect(lines(delivered)).toEqual(lines(stored));
  });

  it('any batching, any redelivery: the same records, each sent once', async () => {
    const baseline = await run([events, [late]]);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: events.length - 1 }), { maxLength: 5 }),
        fc.array(fc.boolean(), { minLength: events.length + 1, maxLength: events.length + 1 }),
        async (cuts, again) => {
          const bounds = [...new Set([0, ...cuts, events.length])].sort((a, b) => a - b);
          const batches: CanonicalEvent[][] = [];
          for (let i = 1; i < bounds.length; i++) batches.push(events.slice(bounds[i - 1], bounds[i]));
          batches.push([late]);
          // Redelivery: some batches come again, whole, right after themselves.
          const delivered = batches.flatMap((b, i) => (again[i] ? [b, b] : [b]));
          const result = await run(delivered);
          expect(lines(result.stored)).toEqual(lines(baseline.stored));
          expect(result.delivered.map(recordKey).sort()).toEqual(baseline.delivered.map(recordKey).sort());
        },
      ),
      { numRuns: 25 },
    );
  });
});
