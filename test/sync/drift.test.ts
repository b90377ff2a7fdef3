// Drift of privileges between two snapshots (shared/sync/drift.ts): database and table privileges
// are compared only where both snapshots read them, so that the first sync that reads them (or a
// snapshot stored before they were read) is not taken for a change.
import { describe, expect, it } from 'vitest';
import { PART, SNAPSHOT_VERSION, type Snapshot, type SnapshotAccount } from '../../schemas/snapshot.js';
import { followSnapshots } from '../../shared/sync/drift.js';

const DB = 'ocid1.mysqldbsystem.oc1..drift';

function snapshot(id: string, time: string, app: Partial<SnapshotAccount>): Snapshot {
  return {
    version: SNAPSHOT_VERSION,
    id,
    time,
    parts: { [PART.accounts(DB)]: { status: 'ok', readAt: time } },
    directory: { users: [], groups: [], memberships: [] },
    dbSystems: [
      {
        id: DB,
        name: 'prod',
        endpoints: [],
        accounts: [
          { user: 'app', host: '%', plugin: 'caching_sha2_password', locked: false, privileges: [], ...app },
        ],
      },
    ],
    requests: { oci: {}, sql: 0 },
  };
}

const USAGE = 'GRANT USAGE ON *.* TO `app`@`%`';
const first = (app: Partial<SnapshotAccount>) => snapshot('s1', '2026-11-02T08:00:00.000Z', app);
const second = (app: Partial<SnapshotAccount>) => snapshot('s2', '2026-11-02T09:00:00.000Z', app);
const drift = (a: Snapshot, b: Snapshot) => followSnapshots(a, [b]).events;

describe('drift of privileges', () => {
  it('a database privilege granted or revoked between two snapshots that read them is a change, named by scope', () => {
    const before = first({
      grants: [USAGE, 'GRANT SELECT ON `orders`.* TO `app`@`%`'],
      privileges: ['SELECT ON `orders`.*'],
    });
    const after = second({
      grants: [USAGE, 'GRANT SELECT, DELETE ON `orders`.`items` TO `app`@`%` WITH GRANT OPTION'],
      privileges: [
        'SELECT ON `orders`.`items`',
        'DELETE ON `orders`.`items`',
        'GRANT OPTION ON `orders`.`items`',
      ],
    });
    const [event, ...rest] = drift(before, after);
    expect(rest).toEqual([]);
    expect(event).toMatchObject({
      kind: 'account_changed',
      target: { user: 'app', host: '%' },
      observed: {
        change:
          'privileges +SELECT ON `orders`.`items` +DELETE ON `orders`.`items` +GRANT OPTION ON `orders`.`items` -SELECT ON `orders`.*',
      },
      before: { privileges: ['SELECT ON `orders`.*'] },
    });
  });

  it('the same grants are no change', () => {
    const grants = [USAGE, 'GRANT SELECT ON `orders`.* TO `app`@`%`'];
    const privileges = ['SELECT ON `orders`.*'];
    expect(
      drift(first({ grants, privileges }), second({ grants: [...grants], privileges: [...privileges] })),
    ).toEqual([]);
  });

  it('grants read for the first time (a snapshot without them before) are no change; global privileges still are', () => {
    const grants = [USAGE, 'GRANT SELECT ON `orders`.* TO `app`@`%`'];
    const scoped = ['SELECT ON `orders`.*'];
    expect(drift(first({}), second({ grants, privileges: scoped }))).toEqual([]);
    expect(drift(first({ grants, privileges: scoped }), second({}))).toEqual([]);
    const [event] = drift(first({}), second({ grants, privileges: ['SUPER', ...scoped] }));
    expect(event?.observed.change).toBe('privileges +SUPER');
  });

  it('an account read again with its host in another case is the same account, as in MySQL: no change', () => {
    expect(drift(first({ host: 'LocalHost' }), second({ host: 'localhost' }))).toEqual([]);
  });
});
