// Event time, idempotency: any order within the lateness, any batching and any redelivery give
// the same session ledger and the same alerts; a restart in the middle changes nothing.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { at, db, GROUPS, iam, USERS } from '../../shared/detect/timeline.js';
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
import { incidentTimeline, LONG_SESSION_CONFIG, longSession } from './scenario-fleet.js';

const LATENESS_MIN = 20;

function fingerprint(r: TimelineResult) {
  return {
    alerts: r.alerts.map((a) => `${a.rule}|${a.id}|${a.severity}|${a.details?.occurrences}`).sort(),
    sessions: r.sessions.map((s) => JSON.stringify(s)).sort(),
  };
}

describe('order, batching and redelivery', () => {
  const events = incidentTimeline();

  it('the baseline raises the expected incidents', async () => {
    const base = await runTimeline(events);
    const rules = base.alerts.map((a) => a.rule).sort();
    expect(rules).toEqual(
      [
        'access.after-revocation',
        'access.local-account',
        'audit.tamper',
        'auth.failure-burst',
        'auth.failure-burst',
        'break-glass.stale',
        'break-glass.used',
        'break-glass.used',
        'iam.privileged-group-change',
        'iam.privileged-group-change',
        'access.unattributed',
        'privilege.change',
      ].sort(),
    );
  });

  // The golden file holds the baseline's alerts and session ledger, byte for byte (refreshed only
  // by `npm run test:update`, after review); every reordering below must give the same.
  it('the baseline gives exactly the golden alerts and session ledger', async () => {
    const base = await runTimeline(events);
    const lines = [...base.alerts, ...base.sessions].map((x) => JSON.stringify(x));
    await expect(`${lines.join('\n')}\n`).toMatchFileSnapshot('./golden/incident-timeline.jsonl');
  });

  it('any arrival order within the lateness, any batches, any duplicates: same result', async () => {
    const baseline = fingerprint(await runTimeline(events));
    await fc.assert(
      fc.asyncProperty(deliveries(events, LATENESS_MIN * 60_000), async (batches) => {
        expect(fingerprint(await runBatches(batches))).toEqual(baseline);
      }),
      runs(40),
    );
  });

  it('closing the store half way and reopening it gives the same result as one pass', async () => {
    const baseline = fingerprint(await runTimeline(events));
    const half = Math.floor(events.length / 2);
    expect(fingerprint(await runAcrossReopen(events.slice(0, half), events.slice(half)))).toEqual(baseline);
  });

  it('a store whose first batch held no event reopens with a clean clock', async () => {
    const baseline = fingerprint(await runTimeline(events));
    const dir = mkdtempSync(join(tmpdir(), 'hwaudit-'));
    try {
      const path = join(dir, 'state.sqlite');
      const first = SqliteStore.open(path);
      const { config, rules } = (await import('../helpers/run-timeline.js')).testConfig();
      const { Pipeline } = await import('../../shared/pipeline.js');
      const p1 = await Pipeline.open({ config, rules, store: first });
      await p1.ingest([
        { type: 'dead', dead: { code: 'JSON_INVALID', source: 'test', message: 'not JSON' } },
      ]);
      expect(p1.watermark).toBeUndefined();
      await first.close();
      const result = await runBatches([events], { store: SqliteStore.open(path) });
      expect(result.pipeline.watermark).toBe(events.at(-1)!.ts);
      expect(fingerprint(result)).toEqual(baseline);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a second run over the same store emits no alert twice', async () => {
    const store = SqliteStore.open(':memory:');
    const first = await runBatches([events], { store });
    const { config, rules } = (await import('../helpers/run-timeline.js')).testConfig();
    const { Pipeline } = await import('../../shared/pipeline.js');
    const again = await Pipeline.open({ config, rules, store });
    const created = [
      ...(await again.ingest(events.map((event) => ({ type: 'event' as const, event })))),
      ...(await again.finish()),
    ];
    expect(created).toEqual([]);
    expect(again.stats.duplicates).toBe(events.length);
    expect(first.alerts.length).toBeGreaterThan(0);
  });
});

describe('late IAM data', () => {
  it('a removal arriving beyond the lateness raises access.after-revocation once, when it arrives', async () => {
    const connect = db.connect({ at: at(30), conn: 1, account: 'dba_proxy', user: 'alice', proxy: true });
    const later = db.connect({ at: at(150), conn: 2, account: 'app' });
    const removal = iam.removed({ at: at(0), user: USERS.alice, group: GROUPS.dba });
    const r = await runBatches([[connect, later], [removal], [removal]]);
    const hits = r.alerts.filter((a) => a.rule === 'access.after-revocation');
    expect(hits).toHaveLength(1);
    expect(hits[0]?.identity?.name).toBe('alice@example.com');
  });

  it('a sign-on arriving within the lateness clears an unattributed session', async () => {
    const connect = db.connect({
      at: at(10),
      conn: 1,
      account: 'dev_proxy',
      user: 'dev_proxy',
      ip: '10.0.0.7',
      proxy: true,
    });
    const signOn = iam.signOn({ at: at(5), user: USERS.bob, ip: '10.0.0.7' });
    const tick = db.connect({ at: at(20), conn: 2, account: 'admin' });
    const r = await runBatches([[connect], [tick], [signOn]]);
    expect(r.alerts.filter((a) => a.rule === 'access.unattributed')).toHaveLength(0);
    expect(r.sessions.find((s) => s.connectKey === connect.key)?.attribution?.method).toBe(
      'signon-correlated',
    );
  });
});

describe('late MySQL data', () => {
  it("an instance's log read days late is attributed by the sign-ons of its time, as it would have been on time", async () => {
    const early = db.connect({ at: at(1), conn: 1, account: 'admin' });
    const signOn = iam.signOn({ at: at(5), user: USERS.bob, ip: '10.0.0.7' });
    // IAM events go on for three days (past the lookback) before the instance's log is read on.
    const days = iam.signOn({ at: at(3 * 24 * 60), user: USERS.alice, ip: '10.0.0.9' });
    const late = db.connect({
      at: at(10),
      conn: 2,
      account: 'dev_proxy',
      user: 'dev_proxy',
      ip: '10.0.0.7',
      proxy: true,
    });
    const r = await runBatches([[early, signOn, days], [late]]);
    expect(r.sessions.find((s) => s.connectKey === late.key)).toMatchObject({
      identity: { id: USERS.bob },
      attribution: { method: 'signon-correlated' },
    });
    expect(r.alerts.filter((a) => a.rule === 'access.unattributed')).toEqual([]);
    const onTime = await runBatches([[early, signOn, late, days]]);
    expect(fingerprint(r)).toEqual(fingerprint(onTime));
  });
});

describe('bounded memory', () => {
  it('forgets open sessions whose disconnect never came once they are older than the retention', async () => {
    const connects = [1, 2, 3].map((i) => db.connect({ at: at(i), conn: i, account: 'app' }));
    const r = await runBatches([connects], { config: { retention: 'P2D' } });
    expect(r.pipeline.openSessions).toBe(3);
    const later = await runBatches(
      [connects, [db.connect({ at: at(3 * 24 * 60), conn: 9, account: 'admin' })]],
      {
        config: { retention: 'P2D' },
      },
    );
    expect(later.pipeline.openSessions).toBe(1);
    expect(later.sessions).toHaveLength(4);
  });

  it('keeps a session open while it is active, however long ago it connected: its GRANT names the person', async () => {
    const r = await runBatches(longSession(5), { config: LONG_SESSION_CONFIG, fold: true });
    expect(r.alerts.find((a) => a.rule === 'privilege.change')).toMatchObject({
      identity: { principalId: USERS.carol, name: 'carol@example.com' },
    });
    expect(r.sessions).toEqual([
      expect.objectContaining({
        identity: { id: USERS.carol, name: 'carol@example.com' },
        disconnectTime: toIso(at(5 * 24 * 60 + 120)),
        counts: expect.objectContaining({ queries: 6 }),
      }),
    ]);
    expect(r.pipeline.openSessions).toBe(0);
    expect(r.pipeline.stats.processed).toBe(8);
  });

  it('forgets an open session idle for longer than the retention: its later statements name nobody', async () => {
    const r = await runBatches(longSession(1), { config: LONG_SESSION_CONFIG, fold: true });
    expect(r.alerts.find((a) => a.rule === 'privilege.change')).toMatchObject({ identity: null });
    // Its row went with the ledger's prune, as any session's that connected before auditRetention.
    expect(r.sessions).toEqual([]);
    expect(r.pipeline.openSessions).toBe(0);
  });

  it('forgets sign-ons older than the retention, in a scope that sees no connection too', async () => {
    const store = SqliteStore.open(':memory:');
    const signOns = [0, 1, 5].map((day) =>
      iam.signOn({ at: at(day * 24 * 60), user: USERS.bob, ip: '10.0.0.7' }),
    );
    await runBatches([signOns], { store, config: { retention: 'P2D' } });
    const rows = (await store.loadEntities()).filter((r) => r.kind === 'signon');
    expect(rows.map((r) => (r.body as { ts: number }[]).map((s) => s.ts))).toEqual([[at(5 * 24 * 60)]]);
    await store.close();
  });
});
