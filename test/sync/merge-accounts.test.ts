// The configuration's accounts merged with those a snapshot read (shared/sync/baseline.ts).
import { describe, expect, it } from 'vitest';
import type { SnapshotAccount } from '../../schemas/snapshot.js';
import { DB } from '../../shared/detect/timeline.js';
import { mergeDbSystems } from '../../shared/sync/baseline.js';
import { testConfig } from '../helpers/run-timeline.js';

const GRANTS = ['GRANT USAGE ON *.* TO `app`@`localhost`'];

describe('accounts the configuration lists and a snapshot read', () => {
  it('are one account whatever the case of the host the configuration writes, as in MySQL', () => {
    const { config } = testConfig({
      dbSystems: [{ id: DB.id, name: DB.name, accounts: [{ user: 'app', host: 'LocalHost' }] }],
    });
    const read: SnapshotAccount[] = [
      {
        user: 'app',
        host: 'localhost',
        plugin: 'caching_sha2_password',
        locked: false,
        privileges: [],
        grants: GRANTS,
      },
      { user: 'APP', host: 'localhost', plugin: 'caching_sha2_password', locked: false, privileges: [] },
    ];
    const [db] = mergeDbSystems(config, [{ id: DB.id, name: DB.name, endpoints: [], accounts: read }]);
    expect(db?.accounts.map((a) => [a.user, a.host, a.grants])).toEqual([
      ['app', 'LocalHost', GRANTS],
      ['APP', 'localhost', undefined],
    ]);
  });
});
