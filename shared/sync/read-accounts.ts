// A DB system's MySQL accounts as `sync` reads them over the collector's connection: `mysql.user`
// (plugin, authentication string, locked) and each account's global privileges, direct or through
// the roles granted to it, from which the privileged accounts are derived rather than hand-written.
import type { SnapshotAccount } from '../../schemas/snapshot.js';
import { accountName } from '../correlate/mappings.js';
import type { SqlSession } from '../sources/mysql-connection.js';

/** Global privileges that make an account privileged: they reach every account, grant, or the audit log. */
export const PRIVILEGED_PRIVILEGES = [
  'ALL PRIVILEGES',
  'SUPER',
  'CREATE USER',
  'GRANT OPTION',
  'AUDIT_ADMIN',
  'SYSTEM_USER',
  'ROLE_ADMIN',
] as const;

export const ACCOUNT_STATEMENTS = {
  users: 'SELECT User, Host, plugin, authentication_string, account_locked FROM mysql.user',
  /** Static global privileges (and, on some versions, dynamic ones). */
  staticPrivileges: 'SELECT GRANTEE, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES',
  /** Dynamic global privileges (AUDIT_ADMIN, SYSTEM_USER, ...). */
  dynamicPrivileges: 'SELECT USER, HOST, PRIV, WITH_GRANT_OPTION FROM mysql.global_grants',
  roles: 'SELECT FROM_USER, FROM_HOST, TO_USER, TO_HOST FROM mysql.role_edges',
} as const;

export type AccountsRead = {
  accounts: SnapshotAccount[];
  /** User names holding a privileged privilege. */
  privilegedAccounts: string[];
  statements: number;
  /** What could not be read (dynamic privileges, roles) and the grant that fixes it. */
  warning?: string;
};

const PRIVILEGED: ReadonlySet<string> = new Set(PRIVILEGED_PRIVILEGES);

/**
 * Reads the accounts of one instance. `mysql.user` and USER_PRIVILEGES are required (a failure
 * throws); dynamic privileges and roles are read when the collector may, else `warning` says what
 * is missing.
 */
export async function readAccounts(session: SqlSession, collectorUser: string): Promise<AccountsRead> {
  let statements = 0;
  const query = (sql: string) => {
    statements++;
    return session.query(sql);
  };
  const rows = await query(ACCOUNT_STATEMENTS.users);
  const privileges = new Map<string, Set<string>>();
  const grant = (user: string, host: string, privilege: string, grantable: boolean) => {
    const key = accountName({ user, host });
    let set = privileges.get(key);
    if (!set) {
      set = new Set();
      privileges.set(key, set);
    }
    set.add(normalizePrivilege(privilege));
    if (grantable) set.add('GRANT OPTION');
  };
  for (const r of await query(ACCOUNT_STATEMENTS.staticPrivileges)) {
    const grantee = parseGrantee(text(r.GRANTEE));
    if (grantee) grant(grantee.user, grantee.host, text(r.PRIVILEGE_TYPE), text(r.IS_GRANTABLE) === 'YES');
  }
  const missing: string[] = [];
  const optional = async (sql: string, table: string) => {
    try {
      return await query(sql);
    } catch {
      missing.push(table);
      return [];
    }
  };
  for (const r of await optional(ACCOUNT_STATEMENTS.dynamicPrivileges, 'mysql.global_grants'))
    grant(text(r.USER), text(r.HOST), text(r.PRIV), text(r.WITH_GRANT_OPTION) === 'Y');
  const roles = new Map<string, string[]>();
  for (const r of await optional(ACCOUNT_STATEMENTS.roles, 'mysql.role_edges')) {
    const to = accountName({ user: text(r.TO_USER), host: text(r.TO_HOST) });
    roles.set(to, [
      ...(roles.get(to) ?? []),
      accountName({ user: text(r.FROM_USER), host: text(r.FROM_HOST) }),
    ]);
  }

  const effective = (key: string, seen = new Set<string>()): Set<string> => {
    const out = new Set(privileges.get(key) ?? []);
    seen.add(key);
    for (const role of roles.get(key) ?? [])
      if (!seen.has(role)) for (const p of effective(role, seen)) out.add(p);
    return out;
  };
  const accounts = rows
    .map((r): SnapshotAccount => {
      const user = text(r.User);
      const host = text(r.Host);
      const authenticationString = text(r.authentication_string);
      const plugin = text(r.plugin).toLowerCase();
      const account: SnapshotAccount = {
        user,
        host,
        plugin,
        locked: text(r.account_locked) === 'Y',
        privileges: [...effective(accountName({ user, host }))].sort(),
      };
      // Only the authentication_oci mapping is kept: other plugins store password hashes here.
      if (plugin === 'authentication_oci' && authenticationString !== '')
        account.authenticationString = authenticationString;
      return account;
    })
    .sort((a, b) => (accountName(a) < accountName(b) ? -1 : accountName(a) > accountName(b) ? 1 : 0));
  const privilegedAccounts = [
    ...new Set(accounts.filter((a) => a.privileges.some((p) => PRIVILEGED.has(p))).map((a) => a.user)),
  ].sort();
  const read: AccountsRead = { accounts, privilegedAccounts, statements };
  if (missing.length > 0)
    read.warning = `cannot read ${missing.join(' and ')}: privileges from there are not known (GRANT SELECT ON ${missing.join(`, `)} TO ${collectorUser})`;
  return read;
}

/** `ALL` and `ALL PRIVILEGES` are one privilege; names are upper case with single spaces. */
function normalizePrivilege(p: string): string {
  const name = p.trim().replace(/\s+/g, ' ').toUpperCase();
  return name === 'ALL' ? 'ALL PRIVILEGES' : name;
}

/** `'user'@'host'` as USER_PRIVILEGES writes it. */
function parseGrantee(grantee: string): { user: string; host: string } | undefined {
  const m = /^'((?:[^']|'')*)'@'((?:[^']|'')*)'$/.exec(grantee);
  return m ? { user: m[1]!.replaceAll("''", "'"), host: m[2]!.replaceAll("''", "'") } : undefined;
}

function text(value: unknown): string {
  if (value === null || value === undefined) return '';
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}
