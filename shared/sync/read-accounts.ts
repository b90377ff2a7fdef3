// A DB system's MySQL accounts as `sync` reads them over the collector's connection: `mysql.user`
// (plugin, authentication string, locked, static global privileges), dynamic privileges, roles,
// and database and table privileges, each from its grant table. The grant tables are read rather
// than INFORMATION_SCHEMA's privilege views, which show other accounts' rows only to an account
// holding SELECT on the whole `mysql` schema; SELECT on each table is enough to read it. From them
// come each account's effective privileges (its own and its roles'), written as `SHOW GRANTS`
// writes them, and the privileged accounts, derived rather than hand-written.
import type { SnapshotAccount } from '../../schemas/snapshot.js';
import { accountKey, accountName } from '../correlate/mappings.js';
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
  /** Every column: the static privileges are its `*_priv` columns, which differ between versions. */
  users: 'SELECT * FROM mysql.user',
  /** Dynamic global privileges (AUDIT_ADMIN, SYSTEM_USER, ...). */
  dynamicPrivileges: 'SELECT USER, HOST, PRIV, WITH_GRANT_OPTION FROM mysql.global_grants',
  roles: 'SELECT FROM_USER, FROM_HOST, TO_USER, TO_HOST FROM mysql.role_edges',
  /** Every column, as for mysql.user. */
  databasePrivileges: 'SELECT * FROM mysql.db',
  tablePrivileges: 'SELECT Host, Db, User, Table_name, Table_priv FROM mysql.tables_priv',
} as const;

/** The tables besides mysql.user, each read when the collector may: without one, `grants` are not known. */
const OPTIONAL_TABLES = ['mysql.global_grants', 'mysql.role_edges', 'mysql.db', 'mysql.tables_priv'] as const;

export type AccountsRead = {
  accounts: SnapshotAccount[];
  /** User names holding a privileged privilege. */
  privilegedAccounts: string[];
  statements: number;
  /** The grant tables besides mysql.user that could not be read. */
  missing: string[];
  /** What could not be read (dynamic privileges, roles, database or table privileges) and the grant that fixes it. */
  warning?: string;
};

const PRIVILEGED: ReadonlySet<string> = new Set(PRIVILEGED_PRIVILEGES);
const GRANT_OPTION = 'GRANT OPTION';
const ALL = 'ALL PRIVILEGES';

/** Static privileges in the order `SHOW GRANTS` lists them (others follow, by name). */
const STATIC_ORDER = [
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'CREATE',
  'DROP',
  'RELOAD',
  'SHUTDOWN',
  'PROCESS',
  'FILE',
  'REFERENCES',
  'INDEX',
  'ALTER',
  'SHOW DATABASES',
  'SUPER',
  'CREATE TEMPORARY TABLES',
  'LOCK TABLES',
  'EXECUTE',
  'REPLICATION SLAVE',
  'REPLICATION CLIENT',
  'CREATE VIEW',
  'SHOW VIEW',
  'CREATE ROUTINE',
  'ALTER ROUTINE',
  'CREATE USER',
  'EVENT',
  'TRIGGER',
  'CREATE TABLESPACE',
  'CREATE ROLE',
  'DROP ROLE',
];
const RANK = new Map(STATIC_ORDER.map((p, i) => [p, i]));

/** The privileges a table grant can hold (`mysql.tables_priv.Table_priv`), GRANT OPTION aside. */
const TABLE_PRIVILEGES = [
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'CREATE',
  'DROP',
  'REFERENCES',
  'INDEX',
  'ALTER',
  'CREATE VIEW',
  'SHOW VIEW',
  'TRIGGER',
];

/** `*_priv` columns whose privilege is not the column's name in words. */
const COLUMN_PRIVILEGE: Readonly<Record<string, string>> = {
  grant_priv: GRANT_OPTION,
  show_db_priv: 'SHOW DATABASES',
  create_tmp_table_priv: 'CREATE TEMPORARY TABLES',
  repl_slave_priv: 'REPLICATION SLAVE',
  repl_client_priv: 'REPLICATION CLIENT',
};

/** The privileges an account holds at one level: `*.*`, a database, or a table. */
type Held = {
  /** Privileges by scope (`*.*`, `` `db`.* ``, `` `db`.`table` ``); GRANT OPTION among them. */
  scopes: Map<string, Set<string>>;
  /** Dynamic privileges, each with its grant option. */
  dynamic: Map<string, boolean>;
};

/**
 * Reads the accounts of one instance. `mysql.user` is required (a failure throws); the other grant
 * tables are read when the collector may, else `warning` says what is missing and which grant
 * fixes it, and the accounts' `grants` are left out (privileges from there are not known).
 */
export async function readAccounts(session: SqlSession, collectorUser: string): Promise<AccountsRead> {
  let statements = 0;
  const query = (sql: string) => {
    statements++;
    return session.query(sql);
  };
  const missing: string[] = [];
  const optional = async (sql: string, table: (typeof OPTIONAL_TABLES)[number]) => {
    try {
      return await query(sql);
    } catch {
      missing.push(table);
      return [];
    }
  };

  const held = new Map<string, Held>();
  const of = (user: unknown, host: unknown): Held => {
    const key = accountKey({ user: text(user), host: text(host) });
    let h = held.get(key);
    if (!h) {
      h = { scopes: new Map(), dynamic: new Map() };
      held.set(key, h);
    }
    return h;
  };
  const grant = (h: Held, scope: string, privilege: string) => {
    let set = h.scopes.get(scope);
    if (!set) {
      set = new Set();
      h.scopes.set(scope, set);
    }
    set.add(privilege);
  };

  const users = await query(ACCOUNT_STATEMENTS.users);
  const everyGlobal = privilegeColumns(users[0]);
  for (const r of users) {
    const h = of(r.User, r.Host);
    for (const [column, privilege] of everyGlobal) if (text(r[column]) === 'Y') grant(h, '*.*', privilege);
  }
  for (const r of await optional(ACCOUNT_STATEMENTS.dynamicPrivileges, 'mysql.global_grants')) {
    const h = of(r.USER, r.HOST);
    const privilege = normalizePrivilege(text(r.PRIV));
    h.dynamic.set(privilege, (h.dynamic.get(privilege) ?? false) || text(r.WITH_GRANT_OPTION) === 'Y');
  }
  const roles = new Map<string, string[]>();
  for (const r of await optional(ACCOUNT_STATEMENTS.roles, 'mysql.role_edges')) {
    const to = accountKey({ user: text(r.TO_USER), host: text(r.TO_HOST) });
    roles.set(to, [
      ...(roles.get(to) ?? []),
      accountKey({ user: text(r.FROM_USER), host: text(r.FROM_HOST) }),
    ]);
  }
  const databases = await optional(ACCOUNT_STATEMENTS.databasePrivileges, 'mysql.db');
  // Every privilege a database grant can hold on this server: holding them all is ALL PRIVILEGES.
  const everyDatabase = privilegeColumns(databases[0]);
  for (const r of databases) {
    const h = of(r.User, r.Host);
    const scope = `${quoteName(text(r.Db))}.*`;
    for (const [column, privilege] of everyDatabase) if (text(r[column]) === 'Y') grant(h, scope, privilege);
  }
  for (const r of await optional(ACCOUNT_STATEMENTS.tablePrivileges, 'mysql.tables_priv')) {
    const h = of(r.User, r.Host);
    const scope = `${quoteName(text(r.Db))}.${quoteName(text(r.Table_name))}`;
    for (const word of text(r.Table_priv).split(',')) {
      const privilege = normalizePrivilege(word);
      if (privilege !== '') grant(h, scope, privilege === 'GRANT' ? GRANT_OPTION : privilege);
    }
  }

  // What an account holds itself and through the roles granted to it (and theirs).
  const effective = (key: string, seen = new Set<string>()): Held => {
    const own = held.get(key);
    const out: Held = {
      scopes: new Map([...(own?.scopes ?? [])].map(([scope, set]) => [scope, new Set(set)])),
      dynamic: new Map(own?.dynamic),
    };
    seen.add(key);
    for (const role of roles.get(key) ?? []) {
      if (seen.has(role)) continue;
      const inherited = effective(role, seen);
      for (const [scope, set] of inherited.scopes) for (const p of set) grant(out, scope, p);
      for (const [p, option] of inherited.dynamic)
        out.dynamic.set(p, (out.dynamic.get(p) ?? false) || option);
    }
    return out;
  };
  const complete = missing.length === 0;
  const every = { database: new Set(everyDatabase.values()), table: new Set(TABLE_PRIVILEGES) };
  const accounts = users
    .map((r): SnapshotAccount => {
      const user = text(r.User);
      const host = text(r.Host);
      const key = accountKey({ user, host });
      const h = effective(key);
      const authenticationString = text(r.authentication_string);
      const plugin = text(r.plugin).toLowerCase();
      const global = new Set([...(h.scopes.get('*.*') ?? []), ...h.dynamic.keys(), ...dynamicGrantOption(h)]);
      const account: SnapshotAccount = {
        user,
        host,
        plugin,
        locked: text(r.account_locked) === 'Y',
        // Database and table ones too where every grant table was read (drift compares them).
        privileges: [...[...global].sort(), ...(complete ? scopedPrivileges(h) : [])],
      };
      // Only the authentication_oci mapping is kept: other plugins store password hashes here.
      if (plugin === 'authentication_oci' && authenticationString !== '')
        account.authenticationString = authenticationString;
      if (complete)
        account.grants = grantLines(
          user,
          host,
          h,
          roles.get(key) ?? [],
          every,
          restrictions(r.User_attributes),
        );
      return account;
    })
    .sort((a, b) => (accountName(a) < accountName(b) ? -1 : accountName(a) > accountName(b) ? 1 : 0));
  const privilegedAccounts = [
    ...new Set(accounts.filter((a) => a.privileges.some((p) => PRIVILEGED.has(p))).map((a) => a.user)),
  ].sort();
  const read: AccountsRead = { accounts, privilegedAccounts, statements, missing };
  if (!complete)
    read.warning = `cannot read ${missing.join(', ')}: privileges from there are not known, nor the accounts' grants (${grantsFix(missing, collectorUser)})`;
  return read;
}

/** The statements that let `user` read the grant tables `missing`, one a table as MySQL takes them. */
export function grantsFix(missing: readonly string[], user: string): string {
  return missing.map((t) => `GRANT SELECT ON ${t} TO ${user};`).join(' ');
}

/** GRANT OPTION held through a dynamic privilege's grant option counts as GRANT OPTION. */
function dynamicGrantOption(h: Held): string[] {
  return [...h.dynamic.values()].some(Boolean) ? [GRANT_OPTION] : [];
}

/**
 * An account's effective privileges as `SHOW GRANTS FOR ... USING` its roles writes them: static
 * global privileges by name (`USAGE` for none), dynamic ones (those with grant option on a line of
 * their own), each database (`ALL PRIVILEGES` where it holds every one of the level), its own
 * partial revokes, each table, then the roles granted to it.
 */
function grantLines(
  user: string,
  host: string,
  h: Held,
  roles: readonly string[],
  every: { database: ReadonlySet<string>; table: ReadonlySet<string> },
  revoked: readonly Restriction[],
): string[] {
  const to = `TO ${quoteAccount(user, host)}`;
  const line = (privileges: string[], scope: string, option: boolean, separator = ', ') =>
    `GRANT ${privileges.join(separator)} ON ${scope} ${to}${option ? ' WITH GRANT OPTION' : ''}`;
  const held = (scope: string) => {
    const set = h.scopes.get(scope) ?? new Set<string>();
    return {
      set,
      option: set.has(GRANT_OPTION),
      names: [...set].filter((p) => p !== GRANT_OPTION).sort(byRank),
    };
  };
  const global = held('*.*');
  const lines = [line(global.names.length > 0 ? global.names : ['USAGE'], '*.*', global.option)];
  for (const option of [false, true]) {
    const dynamic = [...h.dynamic].filter(([, o]) => o === option).map(([p]) => p);
    if (dynamic.length > 0) lines.push(line(dynamic.sort(), '*.*', option, ','));
  }
  const scoped = (scope: string) => {
    const { set, option, names } = held(scope);
    const level = isDatabase(scope) ? every.database : every.table;
    const all = level.size > 0 && [...level].every((p) => p === GRANT_OPTION || set.has(p));
    lines.push(line(all ? [ALL] : names.length > 0 ? names : ['USAGE'], scope, option));
  };
  const { databases, tables } = scopesOf(h);
  for (const scope of databases) scoped(scope);
  lines.push(...revokeLines(user, host, revoked));
  for (const scope of tables) scoped(scope);
  for (const role of [...roles].sort()) {
    const at = role.lastIndexOf('@');
    lines.push(`GRANT ${quoteAccount(role.slice(0, at), role.slice(at + 1))} ${to}`);
  }
  return lines;
}

const isDatabase = (scope: string) => scope.endsWith('.*');

/** An account's database and table scopes, each in order. */
function scopesOf(h: Held): { databases: string[]; tables: string[] } {
  const scopes = [...h.scopes.keys()].filter((s) => s !== '*.*').sort();
  return { databases: scopes.filter(isDatabase), tables: scopes.filter((s) => !isDatabase(s)) };
}

/** Database and table privileges, each as `PRIVILEGE ON scope` (GRANT OPTION last in its scope). */
function scopedPrivileges(h: Held): string[] {
  const { databases, tables } = scopesOf(h);
  return [...databases, ...tables].flatMap((scope) => {
    const set = h.scopes.get(scope)!;
    const names = [...set].filter((p) => p !== GRANT_OPTION).sort(byRank);
    return [...names, ...(set.has(GRANT_OPTION) ? [GRANT_OPTION] : [])].map((p) => `${p} ON ${scope}`);
  });
}

/** A partial revoke: global privileges taken back on one database (`partial_revokes`). */
type Restriction = { database: string; privileges: string[] };

/** An account's partial revokes, from `mysql.user.User_attributes` (`{"Restrictions": [...]}`). */
function restrictions(attributes: unknown): Restriction[] {
  let parsed: unknown;
  try {
    parsed =
      typeof attributes === 'string' || Buffer.isBuffer(attributes)
        ? JSON.parse(text(attributes))
        : attributes;
  } catch {
    return [];
  }
  const list = (parsed as { Restrictions?: unknown } | null)?.Restrictions;
  if (!Array.isArray(list)) return [];
  return list.flatMap((r: { Database?: unknown; Privileges?: unknown }) =>
    typeof r?.Database === 'string' && Array.isArray(r.Privileges)
      ? [
          {
            database: r.Database,
            privileges: r.Privileges.map((p) => normalizePrivilege(String(p))).sort(byRank),
          },
        ]
      : [],
  );
}

function revokeLines(user: string, host: string, revoked: readonly Restriction[]): string[] {
  return [...revoked]
    .sort((a, b) => (a.database < b.database ? -1 : a.database > b.database ? 1 : 0))
    .map(
      (r) =>
        `REVOKE ${r.privileges.join(', ')} ON ${quoteName(r.database)}.* FROM ${quoteAccount(user, host)}`,
    );
}

/** The `*_priv` columns of a grant table's row and the privilege each stands for, in column order. */
function privilegeColumns(row: Record<string, unknown> | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const column of Object.keys(row ?? {})) {
    const name = column.toLowerCase();
    if (!name.endsWith('_priv')) continue;
    out.set(
      column,
      COLUMN_PRIVILEGE[name] ?? name.slice(0, -'_priv'.length).replaceAll('_', ' ').toUpperCase(),
    );
  }
  return out;
}

function byRank(a: string, b: string): number {
  const [ra, rb] = [RANK.get(a) ?? STATIC_ORDER.length, RANK.get(b) ?? STATIC_ORDER.length];
  return ra - rb || (a < b ? -1 : a > b ? 1 : 0);
}

/** `ALL` and `ALL PRIVILEGES` are one privilege; names are upper case with single spaces. */
function normalizePrivilege(p: string): string {
  const name = p.trim().replace(/\s+/g, ' ').toUpperCase();
  return name === 'ALL' ? ALL : name;
}

/** A name as `SHOW GRANTS` quotes it: in backticks, a backtick doubled. */
function quoteName(name: string): string {
  return `\`${name.replaceAll('`', '``')}\``;
}

function quoteAccount(user: string, host: string): string {
  return `${quoteName(user)}@${quoteName(host)}`;
}

function text(value: unknown): string {
  if (value === null || value === undefined) return '';
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}
