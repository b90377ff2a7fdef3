// Sessions after a credential was planted on their person: marked in the ledger (every one), alerted
// once per credential and DB system, the same whatever the delivery, and across a restart.
import { describe, expect, it } from 'vitest';
import type { CanonicalEvent } from '../../schemas/events.js';
import { PlantedCredentials } from '../../shared/correlate/planted-credentials.js';
import { at, db, iam, USERS } from '../../shared/detect/timeline.js';
import { expecting } from '../../shared/rules/iam-credential-change.js';
import { EntityCache } from '../../shared/state/entity-cache.js';
import { runs } from '../helpers/property.js';
import {
  runAcrossReopen,
  runBatches,
  runTimeline,
  sameForEveryDelivery,
  type TimelineResult,
} from '../helpers/run-timeline.js';

const DAY = 86_400_000;
const LATENESS = 20 * 60_000;

function timeline(): CanonicalEvent[] {
  return [
    iam.credential({ at: at(0), user: USERS.alice, id: 'fp-1' }),
    db.connect({ at: at(30), conn: 1, account: 'dba_proxy', user: 'alice', os: 'alice', proxy: true }),
    db.disconnect({ at: at(35), conn: 1, account: 'dba_proxy' }),
    db.connect({ at: at(40), conn: 2, account: 'dba_proxy', user: 'alice', os: 'alice', proxy: true }),
    iam.credential({ at: at(50), user: USERS.alice, id: 'fp-1', change: 'deleted' }),
    db.connect({ at: at(60), conn: 3, account: 'dba_proxy', user: 'alice', os: 'alice', proxy: true }),
  ];
}

/** Per session: its connection, confidence and planted credential keys; the planted-credential alerts. */
function outcome(r: TimelineResult) {
  return {
    sessions: r.sessions
      .map((s) => ({
        conn: s.connectionId,
        confidence: s.attribution?.confidence,
        planted: (s.attribution?.plantedCredentials ?? []).map((p) => p.type),
      }))
      .sort((a, b) => a.conn - b.conn),
    alerts: r.alerts
      .filter((a) => a.rule === 'access.planted-credential')
      .map((a) => `${a.id} ${a.details?.sessionId}`),
  };
}

describe('sessions after a planted credential', () => {
  it('marks every session while it is in force, alerts at the first, and none after its deletion', async () => {
    const r = await runTimeline(timeline());
    expect(outcome(r).sessions).toEqual([
      { conn: 1, confidence: 'asserted', planted: ['api-key'] },
      { conn: 2, confidence: 'asserted', planted: ['api-key'] },
      { conn: 3, confidence: 'verified', planted: [] },
    ]);
    const alerts = r.alerts.filter((a) => a.rule === 'access.planted-credential');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.details?.sessionId).toBe(r.sessions.find((s) => s.connectionId === 1)!.id);
    const marked = r.sessions.find((s) => s.connectionId === 2)!.attribution!;
    expect(marked.evidence).toContain(marked.plantedCredentials![0]!.key);
  });

  it('gives the same ledger and alerts whatever the order within the lateness, batching or redelivery', async () => {
    await sameForEveryDelivery(timeline(), LATENESS, outcome, runs(15));
  });

  it('keeps the planted credential across a restart between its creation and the session', async () => {
    const events = timeline();
    const baseline = outcome(await runTimeline(events));
    // The creation is committed (the watermark passed it) before the store is closed.
    const first = [events[0]!, db.connect({ at: at(25), conn: 9, account: 'admin' })];
    const restarted = outcome(await runAcrossReopen(first, events.slice(1)));
    expect(restarted.sessions.filter((s) => s.conn !== 9)).toEqual(baseline.sessions);
    expect(restarted.alerts).toEqual(baseline.alerts);
  });
});

describe('a credential the configuration expects', () => {
  // iam-admin's key on alice is the organisation's own; bob's auth token on her, later, is not.
  const config = expecting({ actors: ['iam-admin'], credentials: ['api-key'], reason: 'key rotation' });
  const events = (): CanonicalEvent[] => [
    ...timeline().slice(0, 4),
    iam.credential({ at: at(45), user: USERS.alice, by: USERS.bob, type: 'auth-token' }),
    db.connect({ at: at(60), conn: 3, account: 'dba_proxy', user: 'alice', os: 'alice', proxy: true }),
  ];

  it('is not followed: sessions stay verified and unmarked until a credential nobody expected', async () => {
    const r = await runTimeline(events(), { config });
    expect(outcome(r).sessions).toEqual([
      { conn: 1, confidence: 'verified', planted: [] },
      { conn: 2, confidence: 'verified', planted: [] },
      { conn: 3, confidence: 'asserted', planted: ['auth-token'] },
    ]);
    expect(r.alerts.filter((a) => a.rule === 'access.planted-credential')).toHaveLength(1);
    // Its creation is raised, and resolved at once; bob's stays open.
    const created = r.alerts.filter((a) => a.rule === 'iam.credential-change');
    expect(created.map((a) => [a.details?.credential, a.status]).sort()).toEqual([
      ['api-key', 'open'],
      ['api-key', 'resolved'],
      ['auth-token', 'open'],
    ]);
  });

  it('gives the same ledger and alerts whatever the order within the lateness, batching or redelivery', async () => {
    await sameForEveryDelivery(events(), LATENESS, outcome, runs(10), { config });
  });
});

describe('PlantedCredentials', () => {
  const planted = (key: string, ts: number, extra: { id?: string; type?: string } = {}) => ({
    key,
    ts,
    type: extra.type ?? 'api-key',
    ...(extra.id === undefined ? {} : { id: extra.id }),
    actor: { name: 'iam-admin' },
  });
  const keys = (c: PlantedCredentials, ts: number) => c.inForce('u', ts).map((p) => p.key);

  it('is ended by a deletion of its type and id in event time, whichever was recorded first', () => {
    const c = new PlantedCredentials(new EntityCache(), 30 * DAY);
    c.end('u', { key: 'd', ts: 20, type: 'api-key', id: 'k1' });
    c.plant('u', planted('a', 10, { id: 'k1' }));
    c.plant('u', planted('b', 10, { id: 'k2' }));
    c.plant('u', planted('t', 10, { type: 'auth-token' }));
    expect(keys(c, 15)).toEqual(['a', 'b', 't']);
    expect(keys(c, 20)).toEqual(['b', 't']);
    // A deletion before a creation does not end it.
    c.plant('u', planted('late', 30, { id: 'k1' }));
    expect(keys(c, 30)).toEqual(['b', 't', 'late']);
    expect(keys(c, 5)).toEqual([]);
  });

  it('is kept `retention` after its creation or its last use, and read back from the state', () => {
    const cache = new EntityCache();
    const c = new PlantedCredentials(cache, 30 * DAY);
    c.plant('u', planted('used', 0));
    c.plant('u', planted('unused', 0));
    c.noteUse('u', ['used'], 40 * DAY);
    c.prune(30 * DAY);
    expect(keys(new PlantedCredentials(cache, 30 * DAY), 41 * DAY)).toEqual(['used']);
    c.prune(45 * DAY);
    expect(keys(c, 46 * DAY)).toEqual([]);
    expect(cache.size('planted-credential')).toBe(0);
  });

  it('is in force until `retention` after its creation or last use in event time, pruned or not', () => {
    const c = new PlantedCredentials(new EntityCache(), 30 * DAY);
    c.plant('u', planted('k', 0));
    expect(keys(c, 30 * DAY)).toEqual(['k']);
    expect(keys(c, 30 * DAY + 1)).toEqual([]);
    c.noteUse('u', ['k'], 20 * DAY);
    expect(keys(c, 50 * DAY)).toEqual(['k']);
  });

  it('past `retention`, a session is marked or not the same in one batch or two', async () => {
    const R = 30 * DAY;
    const alice = (ts: number, conn: number) =>
      db.connect({ at: ts, conn, account: 'dba_proxy', user: 'alice', os: 'alice', proxy: true });
    const first = [
      iam.credential({ at: at(0), user: USERS.alice, id: 'fp-1' }),
      alice(at(1), 1),
      db.disconnect({ at: at(2), conn: 1, account: 'dba_proxy' }),
      iam.signOn({ at: at(1) + R + 120 * 60_000, user: USERS.dave, ip: '10.0.0.9' }),
    ];
    const second = [
      alice(at(1) + R + 121 * 60_000, 2),
      iam.signOn({ at: at(1) + R + 300 * 60_000, user: USERS.dave, ip: '10.0.0.9' }),
    ];
    const marks = (r: TimelineResult) =>
      r.sessions.map((s) => [
        s.connectionId,
        s.attribution?.confidence,
        s.attribution?.plantedCredentials?.length ?? 0,
      ]);
    const oneBatch = marks(await runBatches([[...first, ...second]]));
    expect(oneBatch).toEqual([
      [1, 'asserted', 1],
      [2, 'verified', 0],
    ]);
    expect(marks(await runBatches([first, second]))).toEqual(oneBatch);
  });

  it("keeps each user's latest 20, once each however often they are recorded", () => {
    const c = new PlantedCredentials(new EntityCache(), 30 * DAY);
    for (let i = 0; i < 25; i++) c.plant('u', planted(`k${String(i).padStart(2, '0')}`, i));
    c.plant('u', planted('k24', 24));
    const kept = keys(c, 100);
    expect(kept).toHaveLength(20);
    expect(kept[0]).toBe('k05');
  });
});
