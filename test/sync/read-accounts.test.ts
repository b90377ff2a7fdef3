// The accounts sync reads from the grant tables (shared/sync/read-accounts.ts), on rows as a server returns them.
import { describe, expect, it } from 'vitest';
import type { SqlSession } from '../../shared/sources/mysql-connection.js';
import { ACCOUNT_STATEMENTS, readAccounts } from '../../shared/sync/read-accounts.js';

/** A session that answers each statement sync runs with `rows` (none for the others). */
function session(
  rows: Partial<Record<keyof typeof ACCOUNT_STATEMENTS, Record<string, unknown>[]>>,
): SqlSession {
  const by = new Map<string, Record<string, unknown>[]>(
    Object.entries(rows).map(([name, r]) => [ACCOUNT_STATEMENTS[name as keyof typeof ACCOUNT_STATEMENTS], r]),
  );
  return { query: async (sql) => by.get(sql) ?? [], close: async () => {} };
}

const user = (User: string, Host: string) => ({
  User,
  Host,
  plugin: 'caching_sha2_password',
  authentication_string: '',
  account_locked: 'N',
  Select_priv: 'N',
  User_attributes: null,
});

describe('the privileges sync reads', () => {
  it('reach an account whatever the case the grant tables write its host in, as MySQL compares host names', async () => {
    const read = await readAccounts(
      session({
        users: [user('app', 'localhost'), user('reader', '%')],
        roles: [{ FROM_USER: 'reader', FROM_HOST: '%', TO_USER: 'app', TO_HOST: 'LocalHost' }],
        databasePrivileges: [
          { User: 'app', Host: 'LOCALHOST', Db: 'shop', Select_priv: 'Y' },
          { User: 'reader', Host: '%', Db: 'stats', Select_priv: 'Y' },
        ],
      }),
      'collector',
    );
    const app = read.accounts.find((a) => a.user === 'app');
    expect(app?.privileges).toEqual(['SELECT ON `shop`.*', 'SELECT ON `stats`.*']);
  });
});
