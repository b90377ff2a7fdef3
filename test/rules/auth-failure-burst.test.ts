// auth.failure-burst's fleet-wide login-user scope through the real pipeline: a guessing run over
// several DB systems gives the same alerts whatever the arrival order within the lateness, the
// batching and the redeliveries, and across a restart that has to restore the counted failures
// (where each happened) from the store.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Alert } from '../../schemas/alert.js';
import { at, DB, db } from '../../shared/detect/timeline.js';
import { runs } from '../helpers/property.js';
import { deliveries, runAcrossReopen, runBatches, runTimeline } from '../helpers/run-timeline.js';

const LATENESS = 20 * 60_000;

/** `admin` failing on four DB systems from two addresses: a fast run at first, then a slow one. */
function guessingRun() {
  const minutes = [0, 0.5, 1, 1, 2, ...Array.from({ length: 15 }, (_, i) => 13 + 3 * i)];
  return minutes.map((m, i) =>
    db.connect({
      at: at(m),
      conn: 100 + i,
      account: 'admin',
      status: 1045,
      ip: i % 3 === 0 ? '198.51.100.7' : '203.0.113.40',
      db: `${DB.id}-${(i % 4) + 1}`,
    }),
  );
}

const fleetWide = (alerts: Alert[]) =>
  alerts
    .filter((a) => a.rule === 'auth.failure-burst' && a.dbSystem === null)
    .map((a) => JSON.stringify(a))
    .sort();

describe('auth.failure-burst fleet-wide', () => {
  const events = guessingRun();

  it('raises the burst and the long window once each, naming the DB systems and addresses', async () => {
    const { alerts } = await runTimeline(events);
    const mine = alerts.filter((a) => a.rule === 'auth.failure-burst');
    // The per-DB-system and per-IP scopes stay under both thresholds.
    expect(mine.map((a) => a.title).sort()).toEqual([
      '20 failed logins for login user admin on 4 DB systems within P1D',
      '5 failed logins for login user admin on 4 DB systems',
    ]);
    const burst = mine.find((a) => !a.details?.longWindow);
    // Two addresses: the alert names none of them on its own.
    expect(burst?.sourceIp).toBeUndefined();
    expect(burst).toMatchObject({
      dbSystem: null,
      loginUser: 'admin',
      time: '2026-11-02T09:02:00.000Z',
      details: {
        failures: 5,
        dbSystems: [1, 2, 3, 4].map((n) => `${DB.id}-${n}`),
        dbSystemCount: 4,
        sourceIps: ['198.51.100.7', '203.0.113.40'],
        sourceIpCount: 2,
      },
    });
  });

  it('any arrival order within the lateness, any batches, any duplicates: the same alerts', async () => {
    const baseline = fleetWide((await runTimeline(events)).alerts);
    expect(baseline).toHaveLength(2);
    await fc.assert(
      fc.asyncProperty(deliveries(events, LATENESS), async (batches) => {
        expect(fleetWide((await runBatches(batches)).alerts)).toEqual(baseline);
      }),
      runs(30),
    );
  });

  it('a restart between the failures restores where the earlier ones happened', async () => {
    const baseline = fleetWide((await runTimeline(events)).alerts);
    expect(baseline).toHaveLength(2);
    // The first five are behind the watermark before the restart: counted, then read back.
    expect(fleetWide((await runAcrossReopen(events.slice(0, 10), events.slice(10))).alerts)).toEqual(
      baseline,
    );
  });
});
