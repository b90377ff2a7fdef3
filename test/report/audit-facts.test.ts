// What reports read of the state (shared/report/audit-facts.ts), from the rows a pipeline stores.
import { describe, expect, it } from 'vitest';
import { recordDbCatalog } from '../../shared/correlate/db-catalog.js';
import { DB } from '../../shared/detect/timeline.js';
import { AuditFacts } from '../../shared/report/audit-facts.js';
import { EntityCache } from '../../shared/state/entity-cache.js';
import { testConfig } from '../helpers/run-timeline.js';

const GRANTS = ['GRANT SELECT ON `shop`.* TO `app`@`localhost`'];

describe('the privileges the configuration lists', () => {
  it('are those of the account whatever the case of its host, as MySQL compares host names', () => {
    const { config } = testConfig({
      dbSystems: [
        { id: DB.id, name: DB.name, accounts: [{ user: 'app', host: 'LocalHost', grants: GRANTS }] },
      ],
    });
    const cache = new EntityCache();
    recordDbCatalog(cache, config.dbSystems);
    const facts = new AuditFacts(cache.drainChanges());
    expect(facts.grantsOf(DB.id, 'app', 'localhost')).toEqual(GRANTS);
    expect(facts.grantsOf(DB.id, 'APP', 'localhost')).toBeUndefined();
  });

  it('are found in a catalog stored under the host as written, of a DB system no longer configured', () => {
    // Recorded before hosts were taken in lowercase; a DB system the configuration has dropped since
    // is never recorded again, and its sessions still name the account app@localhost.
    const stored = {
      kind: 'dbsystem',
      key: DB.id,
      body: {
        id: DB.id,
        name: DB.name,
        iamOnly: false,
        privilegedAccounts: [],
        allowedLocalAccounts: [],
        grants: { 'app@LocalHost': GRANTS, "''@%": ['GRANT USAGE ON *.* TO ``@`%`'] },
      },
    };
    const facts = new AuditFacts([stored]);
    expect(facts.grantsOf(DB.id, 'app', 'localhost')).toEqual(GRANTS);
    expect(facts.grantsOf(DB.id, '', '%')).toEqual(['GRANT USAGE ON *.* TO ``@`%`']);
  });
});
