// The alert lifecycle: every rule that can end gets one resolution record (same id, status
// resolved), after its alert, whatever the batching and however often batches are redelivered; a
// sink receives each record once, the alert before its resolution.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Alert, recordKey } from '../../schemas/alert.js';
import type { ConfigInput } from '../../schemas/config.js';
import type { CanonicalEvent } from '../../schemas/events.js';
import { at, baseConfig, db, GROUPS, iam, USERS } from '../../shared/detect/timeline.js';
import type { AlertSink } from '../../shared/emit/sink.js';
import { Pipeline } from '../../shared/pipeline.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { testConfig } from '../helpers/run-timeline.js';

const AUTH = 'ALLOW service mysql_dp_auth TO {AUTHENTICATION_INSPECT, GROUP_MEMBERSHIP_INSPECT} IN TENANCY';
const mapping = (groups: Record<string, string>) =>
  `ALTER USER ''@'%' IDENTIFIED WITH 'authentication_oci' AS '${JSON.stringify({ tenancy: 'ocid1.tenancy.oc1..example', group_mapping: groups })}'`;
const ORIGINAL = { [GROUPS.dba]: 'dba_proxy', [GROUPS.bg]: 'emergency_admin', [GROUPS.dev]: 'dev_proxy' };

const CONFIG: Partial<ConfigInput> = {
  rules: {
    'mapping.change': {
      expected: [{ from: '2026-11-02T09:39:00Z', to: '2026-11-02T09:41:00Z', reason: 'CHG-42' }],
    },
  },
};

/** Events in time order; the last one (a sign-on) arrives later than the lateness. */
function lifecycle(): { events: CanonicalEvent[]; late: CanonicalEvent } {
  const events = [
    iam.added({ at: at(0), user: USERS.bob, group: GROUPS.bg }),
    db.connect({ at: at(10), conn: 1, account: 'dev_proxy', user: 'dev_proxy', ip: '10.0.0.9', proxy: true }),
    db.query({
      at: at(20),
      conn: 3,
      account: 'admin',
      sqlCommand: 'alter_user',
      sql: mapping({ 'ocid1.group.oc1..x': 'dba_proxy' }),
    }),
    db.query({ at: at(25), conn: 3, account: 'admin', sqlCommand: 'alter_user', sql: mapping(ORIGINAL) }),
    iam.policy({ at: at(30), kind: 'policy_created', statements: [AUTH] }),
    iam.policy({ at: at(35), kind: 'policy_deleted', statements: [AUTH] }),
    db.query({
      at: at(40),
      conn: 3,
      account: 'admin',
      sqlCommand: 'alter_user',
      sql: mapping({ 'ocid1.group.oc1..y': 'dba_proxy' }),
    }),
    iam.removed({ at: at(300), user: USERS.bob, group: GROUPS.bg }),
  ];
  return { events, late: iam.signOn({ at: at(5), user: USERS.dave, ip: '10.0.0.9', mfa: 'TOTP' }) };
}

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
