// Password logins straight to a group's proxied account, the server naming no proxy account: local
// accounts from when a snapshot or an audited statement shows the account open to logins without
// IAM (whether before or after a mapping named it) until one shows it closed; group logins
// otherwise. The same whatever the delivery, batching or redelivery, and across a restart.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { following } from '../helpers/account-snapshots.js';
import { runs } from '../helpers/property.js';
import { deliveries, runAcrossReopen, runBatches, type TimelineResult } from '../helpers/run-timeline.js';
import { directLogins } from './scenario-fleet.js';

const LATENESS = 20 * 60_000;

function fingerprint(r: TimelineResult) {
  return {
    alerts: r.alerts.map((a) => JSON.stringify(a)).sort(),
    sessions: r.sessions.map((s) => JSON.stringify(s)).sort(),
  };
}

/** Per connection: how its login was attributed, and to whom. */
function attributions(r: TimelineResult) {
  return Object.fromEntries(
    r.sessions.map((s) => [
      s.connectionId,
      `${s.attribution?.method} ${s.attribution?.confidence} ${s.identity?.name ?? '-'}`,
    ]),
  );
}

/** Per connection, how its login is attributed in one pass (each delivery and restart must agree). */
const EXPECTED = {
  // dba_proxy locked in the baseline: alice's login is hers, with or without a proxy account named.
  1: 'login-name corroborated alice@example.com',
  2: 'login-name corroborated alice@example.com',
  // dev_proxy unlocked in the baseline.
  3: 'local-account none -',
  // ops_proxy created with a password before the Developers group was pointed at it.
  4: 'local-account none -',
  // dba_proxy unlocked, unaudited, by the second snapshot's time; locked again by a statement.
  5: 'local-account none -',
  6: 'login-name corroborated alice@example.com',
};

describe('password logins straight to proxied accounts', () => {
  const { snapshots, events } = directLogins();
  const run = (batches: (typeof events)[]) => runBatches(batches, { opened: following(snapshots) });

  it('are local-account sessions while a snapshot or a statement shows the account open; group logins otherwise', async () => {
    const r = await run([events]);
    expect(attributions(r)).toEqual(EXPECTED);
    const local = r.alerts.filter((a) => a.rule === 'access.local-account').map((a) => a.mysqlAccount);
    expect(local.sort()).toEqual(['dba_proxy@%', 'dev_proxy@%', 'ops_proxy@%']);
    const opened = r.alerts.filter((a) => a.rule === 'privilege.change' && a.details?.bypassesIam);
    expect(opened.map((a) => [a.title, a.severity])).toEqual([
      [
        'dba_proxy@% can now be logged in to without IAM on prod-orders (ALTER USER) (observed by sync, not audited)',
        'high',
      ],
    ]);
  });

  it('any arrival order within the lateness, any batches, any duplicates: the same alerts and ledger', async () => {
    const baseline = fingerprint(await run([events]));
    await fc.assert(
      fc.asyncProperty(deliveries(events, LATENESS), async (batches) => {
        const r = await run(batches);
        expect(attributions(r)).toEqual(EXPECTED);
        expect(fingerprint(r)).toEqual(baseline);
      }),
      runs(20),
    );
  });

  it('closing the store at any point and reopening it gives the same as one pass', async () => {
    const baseline = fingerprint(await run([events]));
    for (let cut = 1; cut < events.length; cut++) {
      const reopened = await runAcrossReopen(events.slice(0, cut), events.slice(cut), following(snapshots));
      expect(attributions(reopened)).toEqual(EXPECTED);
      expect(fingerprint(reopened)).toEqual(baseline);
    }
  });
});
