// What reports need to know of each configured DB system (its name, whether it is IAM-only, its
// privileged and allow-listed accounts, the privileges of its accounts), kept in the state with
// the correlation state, so that reports and exports read the store without the configuration.
import type { DbSystemConfig } from '../../schemas/config.js';
import type { EntityCache } from '../state/entity-cache.js';
import { accountKey, nameKey } from './mappings.js';

export type DbCatalogEntry = {
  id: string;
  name: string;
  iamOnly: boolean;
  privilegedAccounts: string[];
  allowedLocalAccounts: string[];
  /** `user@host` (`accountKey`: the host in lowercase) -> privileges as `SHOW GRANTS FOR` prints them, for the accounts the config lists them for. */
  grants: Record<string, string[]>;
};

const KIND = 'dbsystem';

/** Records the DB systems as configured (discoveries merged in); an entry changes only when its configuration did. */
export function recordDbCatalog(cache: EntityCache, dbSystems: readonly DbSystemConfig[]): void {
  for (const db of dbSystems) {
    const grants: Record<string, string[]> = {};
    for (const a of db.accounts) if (a.grants) grants[accountKey(a)] = a.grants;
    const entry: DbCatalogEntry = {
      id: db.id,
      name: db.name,
      iamOnly: db.iamOnly,
      privilegedAccounts: db.privilegedAccounts,
      allowedLocalAccounts: db.allowedLocalAccounts,
      grants,
    };
    if (JSON.stringify(cache.get(KIND, db.id)) !== JSON.stringify(entry)) cache.set(KIND, db.id, entry);
  }
}

/**
 * The recorded DB systems by id (those configured now and those configured before). An entry
 * recorded when grants were keyed by the host as written (that of a DB system configured no more
 * is never recorded again) is read with its hosts in lowercase, as `accountKey` keys them.
 */
export function dbCatalog(cache: EntityCache): Map<string, DbCatalogEntry> {
  return new Map(
    [...cache.entries<DbCatalogEntry>(KIND)].map(([id, e]) => [id, { ...e, grants: byAccountKey(e.grants) }]),
  );
}

function byAccountKey(grants: Record<string, string[]>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(grants).map(([name, list]) => [nameKey(name), list]));
}
