// What a statement means for the audit: a privilege change, an authentication_oci mapping change,
// or tampering with the audit log. Read from the canonical event's `sqlCommand` and its
// secret-redacted text; statements that failed (status != 0) change nothing.
import type { DbEvent } from '../../schemas/events.js';
import { type SqlToken, sqlTokens } from '../normalize/redact.js';

export type AccountRef = { user: string; host: string };

export type StatementFacts = {
  /**
   * `administrative`: a grant that administers the server or other accounts (`adminGrant`), or a
   * grant table written directly, which bypasses GRANT altogether.
   */
  privilege?: { verb: string; targets: AccountRef[]; administrative?: true };
  /** Account definitions the statement creates, alters, drops or renames. */
  accounts?: AccountChange[];
  /** GRANT PROXY ON <proxied> TO <proxy>. */
  proxyGrant?: { proxied: AccountRef; to: AccountRef[]; revoke: boolean };
  auditTamper?: { action: string };
  /** Grant tables that hold IAM mappings written directly (`update mysql.user`, `insert mysql.proxies_priv`). */
  mappingTables?: string[];
  /**
   * A stored program created (or an event altered): its body runs later, as its definer, and the
   * audit log records none of its statements, so `privilege` and `auditTamper` are then what its
   * body would do.
   */
  storedProgram?: StoredProgram;
  /**
   * `privilege` and `auditTamper` are what a statement held in a user variable would do
   * (`SET @q = 'GRANT ...'`, then `PREPARE s FROM @q`), read before the value was redacted.
   */
  held?: true;
  /**
   * PREPARE ... FROM: from a literal, `privilege` and `auditTamper` are what the statement it
   * prepares would do; from a user variable, what it would do is not known.
   */
  prepared?: { fromVariable: boolean };
};

export type StoredProgram = {
  /** `CREATE EVENT`, `ALTER EVENT`, `CREATE PROCEDURE`, `CREATE FUNCTION`, `CREATE TRIGGER`. */
  verb: string;
  /** The account its DEFINER clause names; absent when it names the creator (CURRENT_USER, or none). */
  definer?: AccountRef;
  /** Its body prepares or executes statements built at run time: what they do is not known. */
  dynamicSql?: true;
};

export type AccountChange =
  | {
      op: 'create' | 'alter';
      account: AccountRef;
      plugin?: string;
      authenticationString?: string;
      /** IDENTIFIED [WITH plugin] BY: the account gets a password. */
      password?: true;
      /** ACCOUNT LOCK (true) or ACCOUNT UNLOCK (false). */
      locked?: boolean;
      /** CREATE USER IF NOT EXISTS: an account that already exists is left as it is. */
      ifNotExists?: true;
      /** ALTER USER IF EXISTS: an account that does not exist is left absent. */
      ifExists?: true;
    }
  | { op: 'drop'; account: AccountRef }
  | { op: 'rename'; account: AccountRef; to: AccountRef };

const PRIVILEGE_COMMANDS: Record<string, string> = {
  grant: 'GRANT',
  revoke: 'REVOKE',
  revoke_all: 'REVOKE ALL',
  grant_roles: 'GRANT ROLE',
  revoke_roles: 'REVOKE ROLE',
  create_user: 'CREATE USER',
  alter_user: 'ALTER USER',
  drop_user: 'DROP USER',
  rename_user: 'RENAME USER',
  set_password: 'SET PASSWORD',
  create_role: 'CREATE ROLE',
  drop_role: 'DROP ROLE',
  alter_user_default_role: 'SET DEFAULT ROLE',
};

// 'user'@'host', `user`@`host`, "user"@"host", user@host, 'user' (host defaults to %).
const QUOTED = String.raw`'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"|\x60[^\x60]*\x60`;
const PART = `(?:${QUOTED}|[A-Za-z0-9_$.-]+)`;
const ACCOUNT = new RegExp(`(${PART})(?:\\s*@\\s*(${PART}))?`, 'y');

function unquote(part: string): string {
  const q = part[0];
  if ((q === "'" || q === '"' || q === '`') && part.endsWith(q) && part.length >= 2) {
    return part.slice(1, -1).replace(/\\(.)/g, '$1').replaceAll(`${q}${q}`, q);
  }
  return part;
}

/** Parses a comma-separated account list starting at `from`, stopping at the first non-account. */
function accountsAt(
  text: string,
  from: number,
  max = Number.POSITIVE_INFINITY,
): { accounts: AccountRef[]; end: number } {
  const accounts: AccountRef[] = [];
  let i = from;
  for (;;) {
    while (text[i] === ' ' || text[i] === '\n' || text[i] === '\t' || text[i] === '\r') i++;
    ACCOUNT.lastIndex = i;
    const m = ACCOUNT.exec(text);
    if (!m?.[1] || /^(IDENTIFIED|WITH|REQUIRE|PASSWORD|ACCOUNT|DEFAULT|AS|TO|FROM)$/i.test(m[1])) break;
    // MySQL stores host names in lowercase and compares them without case.
    accounts.push({ user: unquote(m[1]), host: m[2] === undefined ? '%' : unquote(m[2]).toLowerCase() });
    i = ACCOUNT.lastIndex;
    if (accounts.length >= max) break;
    const rest = /^\s*,/.exec(text.slice(i, i + 64));
    if (!rest) break;
    i += rest[0].length;
  }
  return { accounts, end: i };
}

function accountsAfter(text: string, keyword: RegExp): AccountRef[] {
  const m = keyword.exec(text);
  return m ? accountsAt(text, m.index + m[0].length).accounts : [];
}

const IDENTIFIED_WITH = new RegExp(
  String.raw`\s+IDENTIFIED\s+WITH\s+(${PART})(?:\s+(?:AS|BY)\s+(${QUOTED}))?`,
  'iy',
);

const IDENTIFIED_BY = /\s+IDENTIFIED\s+(?:WITH\s+\S+\s+)?BY\b/iy;

/** A password clause, to step over to the next account of the list. */
const PASSWORD_CLAUSE = new RegExp(
  String.raw`\s+IDENTIFIED\s+BY\s+(?:RANDOM\s+PASSWORD|${QUOTED}|[^\s,]+)`,
  'iy',
);

/** The statement's ACCOUNT LOCK (true) or ACCOUNT UNLOCK (false), outside literals and comments. */
function accountLocked(text: string): boolean | undefined {
  const tokens = sqlTokens(text);
  for (let i = 0; i + 1 < tokens.length; i++) {
    const [a, b] = [tokens[i]!, tokens[i + 1]!];
    if (a.type === 'word' && b.type === 'word' && /^account$/i.test(a.text) && /^(un)?lock$/i.test(b.text))
      return !/^un/i.test(b.text);
  }
  return undefined;
}

/**
 * CREATE USER / ALTER USER: each account with the plugin and AS string that follows it, whether it
 * gets a password, and the statement's ACCOUNT LOCK or UNLOCK.
 */
function accountDefinitions(text: string, op: 'create' | 'alter'): AccountChange[] {
  const head = /^\s*(?:CREATE|ALTER)\s+USER\s+(IF\s+(NOT\s+)?EXISTS\s+)?/i.exec(text);
  if (!head) return [];
  const locked = accountLocked(text);
  const withOptions = (change: Extract<AccountChange, { op: 'create' | 'alter' }>, at: number) => {
    IDENTIFIED_BY.lastIndex = at;
    if (IDENTIFIED_BY.test(text)) change.password = true;
    if (locked !== undefined) change.locked = locked;
    if (op === 'create' && head[2]) change.ifNotExists = true;
    if (op === 'alter' && head[1] && !head[2]) change.ifExists = true;
    return change;
  };
  const changes: AccountChange[] = [];
  let i = head[0].length;
  for (;;) {
    const { accounts, end } = accountsAt(text, i);
    const account = accounts[0];
    if (!account) break;
    i = end;
    // accountsAt stops before IDENTIFIED; only take the first account of a run per clause.
    IDENTIFIED_WITH.lastIndex = i;
    const auth = IDENTIFIED_WITH.exec(text);
    if (auth?.[1]) {
      const plugin = unquote(auth[1]).toLowerCase();
      const change = withOptions({ op, account, plugin }, i);
      i = IDENTIFIED_WITH.lastIndex;
      if (auth[2] !== undefined && plugin === 'authentication_oci')
        change.authenticationString = unquote(auth[2]);
      changes.push(change);
    } else {
      for (const a of accounts) changes.push(withOptions({ op, account: a }, i));
      PASSWORD_CLAUSE.lastIndex = i;
      if (PASSWORD_CLAUSE.test(text)) i = PASSWORD_CLAUSE.lastIndex;
    }
    const comma = /^\s*,/.exec(text.slice(i, i + 64));
    if (!comma) break;
    i += comma[0].length;
  }
  return changes;
}

function renames(text: string): AccountChange[] {
  const head = /^\s*RENAME\s+USER\s+/i.exec(text);
  if (!head) return [];
  const out: AccountChange[] = [];
  let i = head[0].length;
  for (;;) {
    const from = accountsAt(text, i);
    const to = /^\s*TO\s+/i.exec(text.slice(from.end, from.end + 16));
    const account = from.accounts[0];
    if (!account || !to) break;
    // One account after TO: a comma there starts the next part (`a TO b, c TO d`).
    const target = accountsAt(text, from.end + to[0].length, 1);
    const dest = target.accounts[0];
    if (!dest) break;
    out.push({ op: 'rename', account, to: dest });
    i = target.end;
    const comma = /^\s*,/.exec(text.slice(i, i + 16));
    if (!comma) break;
    i += comma[0].length;
  }
  return out;
}

/** The privileges of a global grant (`GRANT <list> ON *.*`). */
const GLOBAL_GRANT = /^\s*GRANT\s+([\s\S]+?)\s+ON\s+(?:\*\.\*|\*)\s+TO\b/i;
/** Global privileges that administer the server, its accounts or its audit log. */
const ADMIN_PRIVILEGES =
  /\b(?:ALL|SUPER|CREATE\s+USER|GRANT\s+OPTION|FILE|SHUTDOWN|SYSTEM_USER|SYSTEM_VARIABLES_ADMIN|ROLE_ADMIN|AUDIT_ADMIN|CONNECTION_ADMIN|ENCRYPTION_KEY_ADMIN|PERSIST_RO_VARIABLES_ADMIN|SET_USER_ID|SET_ANY_DEFINER)\b/i;

/**
 * A grant that makes its grantee an administrator: ALL or an administrative privilege on `*.*`,
 * or any grant WITH GRANT OPTION (the grantee can pass it on).
 */
function adminGrant(text: string): boolean {
  const global = GLOBAL_GRANT.exec(text);
  return (global !== null && ADMIN_PRIVILEGES.test(global[1]!)) || /\bWITH\s+GRANT\s+OPTION\b/i.test(text);
}

/** Every way of tampering with the audit log names one of these: one scan rules out most statements. */
const TAMPER_HINT = /audit_log|uninstall/i;

/** The tampering actions, the most serious first: a statement doing several is named by the first. */
const TAMPER_ACTIONS = [
  'filter-removed',
  'filter-changed',
  'filter-tables-changed',
  'filters-reloaded',
  'plugin-uninstalled',
  'component-uninstalled',
  'audit-log-disabled',
  'audit-policy-none',
  'audit-policy-reduced',
  'accounts-excluded',
  'accounts-included',
] as const;
type TamperAction = (typeof TAMPER_ACTIONS)[number];

/** Matches no value: any value given to the setting counts. */
const NOTHING = /(?!)/;
/**
 * The audit settings and what assigning them a value does, unless the value is literally one of
 * `safe`: an expression or a variable may be anything. The variables are the 8.0/8.4 plugin's
 * (`audit_log_disable`), the 9.x component's (`audit_log.disable`) and Percona's
 * (`audit_log_filter.disable`).
 */
const AUDIT_SETTINGS: { name: RegExp; safe: RegExp; action: (value: string) => TamperAction }[] = [
  {
    name: /^audit_log(?:_filter)?[._]disable$/,
    safe: /^(?:OFF|0|FALSE|DEFAULT)$/,
    action: () => 'audit-log-disabled',
  },
  {
    name: /^audit_log[._](?:connection_|statement_)?policy$/,
    safe: /^(?:ALL|DEFAULT)$/,
    action: (value) => (value === 'NONE' ? 'audit-policy-none' : 'audit-policy-reduced'),
  },
  { name: /^audit_log[._]exclude_accounts$/, safe: NOTHING, action: () => 'accounts-excluded' },
  { name: /^audit_log[._]include_accounts$/, safe: NOTHING, action: () => 'accounts-included' },
];

/** Tables whose rows are the audit filters: written directly, they take effect at the next flush. */
const AUDIT_TABLES = new Set(['mysql.audit_log_filter', 'mysql.audit_log_user']);

/** Reads a statement's tokens (`sqlTokens`) by position. */
class Tokens {
  constructor(readonly list: readonly SqlToken[]) {}
  /** The keyword at `k`, upper case; back-quoted names are never keywords. */
  word(k: number): string | undefined {
    const t = this.list[k];
    return t?.type === 'word' ? t.text.toUpperCase() : undefined;
  }
  /** The name at `k`, lower case, quoted or not. */
  name(k: number): string | undefined {
    const t = this.list[k];
    return t?.type === 'word' || t?.type === 'ident' ? t.text.toLowerCase() : undefined;
  }
  punct(k: number): string | undefined {
    const t = this.list[k];
    return t?.type === 'punct' ? t.text : undefined;
  }
  /** The index of the `;` (or the end) that ends the statement at `k`. */
  endOfStatement(k: number): number {
    let j = k;
    while (j < this.list.length && this.punct(j) !== ';') j++;
    return j;
  }
  /** The index of the `,` or `;` (or the end) that ends the expression starting at `k`. */
  endOfExpression(k: number): number {
    let depth = 0;
    for (let j = k; j < this.list.length; j++) {
      const p = this.punct(j);
      if (p === '(') depth++;
      else if (p === ')') depth--;
      else if (depth <= 0 && (p === ',' || p === ';')) return j;
    }
    return this.list.length;
  }
}

/** Words after which a stored program's body, or a statement of it, begins. */
const OPENERS = new Set([
  'DO',
  'BEGIN',
  'THEN',
  'ELSE',
  'LOOP',
  'REPEAT',
  'SQLEXCEPTION',
  'SQLWARNING',
  'FOUND',
  'DEFINER',
  'INVOKER',
  'DETERMINISTIC',
  'SQL',
  'DATA',
  'ROW',
]);

/**
 * Where statements begin: the start, after `;`, and where a stored program's body or one of its
 * statements may begin (after `DO`, `BEGIN`, `THEN`, a handler's condition, the routine's
 * characteristics or its parameter list).
 */
function statementStarts(t: Tokens): number[] {
  const starts: number[] = [];
  for (let k = 0; k < t.list.length; k++) {
    const before = t.list[k - 1];
    if (
      before === undefined ||
      before.type === 'string' ||
      before.type === 'number' ||
      t.punct(k - 1) === ';' ||
      t.punct(k - 1) === ')' ||
      OPENERS.has(t.word(k - 1) ?? '') ||
      (t.word(k - 2) === 'FOR' && t.word(k - 3) === 'HANDLER')
    )
      starts.push(k);
  }
  return starts;
}

/**
 * `SET` at `k`: each variable assigned (lower case, `audit_log.disable` as one name, a user
 * variable with its `@`) and its value.
 */
function assignments(t: Tokens, k: number): { name: string; value: SqlToken[] }[] {
  const out: { name: string; value: SqlToken[] }[] = [];
  let j = k + 1;
  for (;;) {
    if (/^(?:GLOBAL|PERSIST|PERSIST_ONLY|SESSION|LOCAL)$/.test(t.word(j) ?? '')) j++;
    else if (t.punct(j) === '@' && t.punct(j + 1) === '@') {
      j += 2;
      if (/^(?:global|persist|persist_only|session|local)$/.test(t.name(j) ?? '') && t.punct(j + 1) === '.')
        j += 2;
    }
    const user = t.punct(j) === '@' ? '@' : '';
    if (user) j++;
    let name = t.name(j) ?? t.list[j]?.text;
    if (name === undefined) return out;
    name = user + name;
    j++;
    const part = t.name(j + 1);
    if (t.punct(j) === '.' && part !== undefined) {
      name = `${name}.${part}`;
      j += 2;
    }
    if (t.punct(j) === ':' && t.punct(j + 1) === '=') j += 2;
    else if (t.punct(j) === '=') j++;
    else return out;
    const end = t.endOfExpression(j);
    out.push({ name, value: t.list.slice(j, end) });
    if (t.punct(end) !== ',') return out;
    j = end + 1;
  }
}

/** A `mysql.` table a statement writes, and for an UPDATE the columns it assigns there. */
type Written = { table: string; columns?: string[] };

/** Words that end a table reference's alias position: joins and the clauses around them. */
const NOT_ALIAS =
  /^(?:AS|ON|USING|JOIN|INNER|CROSS|LEFT|RIGHT|OUTER|NATURAL|STRAIGHT_JOIN|SET|WHERE|ORDER|LIMIT|PARTITION|FROM|USE|FORCE|IGNORE)$/;

/** The `mysql.` tables named in tokens [from, to), each with the alias it is given there. */
function mysqlTables(t: Tokens, from: number, to: number): { table: string; name: string; alias?: string }[] {
  const out: { table: string; name: string; alias?: string }[] = [];
  for (let j = from; j < to; j++) {
    const name = t.name(j + 2);
    if (t.name(j) !== 'mysql' || t.punct(j + 1) !== '.' || name === undefined) continue;
    const at = t.word(j + 3) === 'AS' ? j + 4 : j + 3;
    const alias = at < to && !NOT_ALIAS.test(t.word(at) ?? '') ? t.name(at) : undefined;
    out.push(
      alias === undefined ? { table: `mysql.${name}`, name } : { table: `mysql.${name}`, name, alias },
    );
  }
  return out;
}

/** The index of the first word of `words` in [from, to) outside parentheses, or `to`. */
function wordAt(t: Tokens, from: number, to: number, words: RegExp): number {
  let depth = 0;
  for (let j = from; j < to; j++) {
    const p = t.punct(j);
    if (p === '(') depth++;
    else if (p === ')') depth--;
    else if (depth === 0 && words.test(t.word(j) ?? '')) return j;
  }
  return to;
}

/**
 * The `mysql.` tables a DML statement at `k` writes (lower case; other schemas are not needed):
 * INSERT/REPLACE INTO, TRUNCATE, the tables a multi-table DELETE deletes from (not those it only
 * joins), and the tables whose columns an UPDATE assigns (a column not qualified in a multi-table
 * UPDATE may be any table's).
 */
function writtenTables(t: Tokens, k: number): Written[] {
  const verb = t.word(k);
  const end = t.endOfStatement(k);
  if (verb === 'INSERT' || verb === 'REPLACE' || verb === 'TRUNCATE') {
    const stop =
      verb === 'TRUNCATE' ? end : wordAt(t, k + 1, end, /^(?:VALUES?|SELECT|SET|TABLE|WITH|PARTITION)$/);
    let to = stop;
    for (let j = k + 1; j < stop; j++) if (t.punct(j) === '(') to = Math.min(to, j);
    return mysqlTables(t, k + 1, to).map(({ table }) => ({ table }));
  }
  if (verb === 'UPDATE') {
    const set = wordAt(t, k + 1, end, /^SET$/);
    const refs = mysqlTables(t, k + 1, set);
    if (refs.length === 0) return [];
    const single =
      wordAt(t, k + 1, set, /^(?:JOIN|STRAIGHT_JOIN)$/) === set &&
      !t.list.slice(k + 1, set).some((_, i) => t.punct(k + 1 + i) === ',');
    const stop = wordAt(t, set + 1, end, /^(?:WHERE|ORDER|LIMIT)$/);
    const assigned: { qualifier: string[]; column: string }[] = [];
    for (let e = set + 1; e < stop; e = t.endOfExpression(e) + 1) {
      const parts: string[] = [];
      let j = e;
      for (; j < stop && t.punct(j) !== '='; j += 2) {
        const n = t.name(j);
        if (n === undefined) break;
        parts.push(n);
        if (t.punct(j + 1) !== '.') {
          j++;
          break;
        }
      }
      if (parts.length > 0) assigned.push({ qualifier: parts.slice(0, -1), column: parts.at(-1)! });
    }
    return refs.flatMap((ref) => {
      const columns = assigned
        .filter(({ qualifier: q }) =>
          q.length === 0
            ? true // the one table of a single-table UPDATE, or maybe any table's
            : q.length === 1
              ? q[0] === (ref.alias ?? ref.name)
              : q[0] === 'mysql' && q[1] === ref.name,
        )
        .map((a) => a.column);
      return single || columns.length > 0 ? [{ table: ref.table, columns }] : [];
    });
  }
  if (verb === 'DELETE') {
    let j = k + 1;
    while (/^(?:LOW_PRIORITY|QUICK|IGNORE)$/.test(t.word(j) ?? '')) j++;
    const stop = wordAt(t, j, end, /^(?:WHERE|ORDER|LIMIT)$/);
    const from = wordAt(t, j, stop, /^FROM$/);
    const using = wordAt(t, from, stop, /^USING$/);
    // DELETE t1, t2 FROM refs; DELETE FROM t1, t2 USING refs; DELETE FROM one table.
    const [targets, refs] =
      from > j
        ? [
            [j, from],
            [from + 1, stop],
          ]
        : using < stop
          ? [
              [from + 1, using],
              [using + 1, stop],
            ]
          : [
              [from + 1, stop],
              [from + 1, stop],
            ];
    const known = mysqlTables(t, refs[0]!, refs[1]!);
    const written = new Set<string>();
    for (let n = targets[0]!; n < targets[1]!; n = t.endOfExpression(n) + 1) {
      const first = t.name(n);
      if (first === 'mysql' && t.punct(n + 1) === '.' && t.name(n + 2) !== undefined) {
        written.add(`mysql.${t.name(n + 2)}`);
      } else if (first !== undefined) {
        const ref = known.find((r) => (r.alias ?? r.name) === first);
        if (ref) written.add(ref.table);
      }
      if (from === j && using === stop) break; // the single-table form names one table
    }
    return [...written].map((table) => ({ table }));
  }
  return [];
}

/** The first (most serious) tampering action of a statement's tokens, if any. */
function tamperAction(t: Tokens): TamperAction | undefined {
  const found = new Set<TamperAction>();
  for (let k = 0; k < t.list.length; k++) {
    // A call of a filter function (the read and encryption functions are named otherwise); a
    // "name" is a name too, under sql_mode ANSI_QUOTES, and no string is ever called.
    const name = t.list[k]?.type === 'punct' ? undefined : t.list[k]?.text.toLowerCase();
    if (name?.startsWith('audit_log_filter_') && t.punct(k + 1) === '(') {
      found.add(
        name.startsWith('audit_log_filter_remove_')
          ? 'filter-removed'
          : name === 'audit_log_filter_flush'
            ? 'filters-reloaded'
            : 'filter-changed',
      );
    }
    const what = t.word(k + 1);
    if (t.word(k) === 'UNINSTALL' && (what === 'PLUGIN' || what === 'COMPONENT')) {
      const targets = t.list.slice(k + 2, t.endOfStatement(k + 2));
      if (targets.some((x) => x.type !== 'punct' && /audit/i.test(x.text)))
        found.add(what === 'PLUGIN' ? 'plugin-uninstalled' : 'component-uninstalled');
    }
  }
  for (const k of statementStarts(t)) {
    if (t.word(k) === 'SET') {
      for (const { name, value } of assignments(t, k)) {
        const setting = AUDIT_SETTINGS.find((s) => s.name.test(name));
        const literal = value.length === 1 && value[0]!.type !== 'punct' ? value[0]!.text.toUpperCase() : '?';
        if (setting && !setting.safe.test(literal)) found.add(setting.action(literal));
      }
    }
    if (writtenTables(t, k).some((w) => AUDIT_TABLES.has(w.table))) found.add('filter-tables-changed');
  }
  return TAMPER_ACTIONS.find((a) => found.has(a));
}

/** What a statement changes; empty for ordinary queries and for failed statements. */
export function statementFacts(event: DbEvent): StatementFacts {
  const sql = event.sql;
  if (!sql || event.status !== 0 || (sql.status !== undefined && sql.status !== 0)) return {};
  const text = sql.text ?? '';
  const command = (sql.sqlCommand ?? '').toLowerCase();
  if (command === 'prepare_sql') return preparedFacts(text);
  const program = PROGRAM_COMMANDS[command];
  const facts = program ? storedProgramFacts(text, program) : privilegeFacts(text, command);
  let tokens: Tokens | undefined;
  const tokensOf = () => (tokens ??= new Tokens(sqlTokens(text)));
  if (DML_COMMANDS.has(command) && MYSQL_SCHEMA.test(text)) {
    const writes = grantTableWrites(tokensOf());
    if (writes.length > 0) facts.privilege = grantTablesChange(writes);
    const mapping = writes.filter((w) => w.mapping).map((w) => `${w.verb.toLowerCase()} ${w.table}`);
    if (mapping.length > 0) facts.mappingTables = mapping;
  }
  const action = TAMPER_HINT.test(text) ? tamperAction(tokensOf()) : undefined;
  if (action) facts.auditTamper = { action };
  const held = sql.held;
  if (held && !facts.privilege && !facts.auditTamper) {
    facts.held = true;
    if (held.privilege) {
      const { verb, targets, administrative } = held.privilege;
      facts.privilege = { verb, targets, ...(administrative ? { administrative: true as const } : {}) };
    }
    if (held.auditTamper) facts.auditTamper = held.auditTamper;
  }
  return facts;
}

type Held = NonNullable<NonNullable<DbEvent['sql']>['held']>;

/** Words of the statements whose facts matter: a user variable's value without any holds none. */
const HELD_HINT = /grant|revoke|user|password|role|mysql|audit_log|uninstall/i;

/**
 * What the statements assigned to user variables (`SET @q = ...`, also in a stored program's
 * body) would do if prepared: the
 * privilege, grant-table and tamper facts of each value's string literals joined (so that
 * `CONCAT('GRA', 'NT ...')` reads as one statement). For the normalizer, before it redacts the
 * values: only these facts are kept, never the text.
 */
export function heldStatementFacts(sqlCommand: string, sql: string): Held | undefined {
  if (sqlCommand !== 'set_option' && PROGRAM_COMMANDS[sqlCommand] === undefined) return undefined;
  if (!sql.includes('@') || !HELD_HINT.test(sql)) return undefined;
  const t = new Tokens(sqlTokens(sql));
  const held: Held = {};
  for (const k of statementStarts(t)) {
    if (t.word(k) !== 'SET') continue;
    for (const { name, value } of assignments(t, k)) {
      const text = name.startsWith('@')
        ? value.flatMap((v) => (v.type === 'string' ? [v.text] : [])).join('')
        : '';
      if (!HELD_HINT.test(text)) continue;
      const inner = new Tokens(sqlTokens(text));
      const { privilege } = deferredPrivilege(inner, text);
      const action = TAMPER_HINT.test(text) ? tamperAction(inner) : undefined;
      if (privilege) held.privilege ??= privilege;
      if (action) held.auditTamper ??= { action };
    }
  }
  return held.privilege || held.auditTamper ? held : undefined;
}

/** The account, privilege and proxy facts of a statement whose sql_command is `command`. */
function privilegeFacts(text: string, command: string): StatementFacts {
  const facts: StatementFacts = {};
  const verb = PRIVILEGE_COMMANDS[command];
  // Account definitions first: privilege targets of CREATE/ALTER/DROP/RENAME USER come from them.
  if (command === 'create_user' || command === 'alter_user') {
    facts.accounts = accountDefinitions(text, command === 'create_user' ? 'create' : 'alter');
  } else if (command === 'drop_user' || command === 'drop_role') {
    // A role is an account (mysql.user): DROP ROLE drops it as DROP USER does.
    facts.accounts = accountsAfter(text, /^\s*DROP\s+(?:USER|ROLE)\s+(?:IF\s+EXISTS\s+)?/i).map(
      (account) => ({
        op: 'drop' as const,
        account,
      }),
    );
  } else if (command === 'rename_user') {
    facts.accounts = renames(text);
  } else if (command === 'create_role') {
    // CREATE ROLE creates the account locked, with no password.
    const head = /^\s*CREATE\s+ROLE\s+(IF\s+NOT\s+EXISTS\s+)?/i.exec(text);
    facts.accounts = (head ? accountsAt(text, head[0].length).accounts : []).map((account) => ({
      op: 'create' as const,
      account,
      locked: true,
      ...(head?.[1] ? { ifNotExists: true as const } : {}),
    }));
  } else if (command === 'set_password') {
    facts.accounts = accountsAfter(text, /\bSET\s+PASSWORD\s+FOR\s+/i).map((account) => ({
      op: 'alter' as const,
      account,
      password: true as const,
    }));
  }

  if (verb) {
    let targets: AccountRef[];
    if (facts.accounts) {
      targets = facts.accounts.flatMap((c) => (c.op === 'rename' ? [c.account, c.to] : [c.account]));
    } else if (command.startsWith('grant') || command === 'alter_user_default_role') {
      targets = accountsAfter(text, /\sTO\s+/i);
    } else {
      targets = accountsAfter(text, /\sFROM\s+/i);
    }
    facts.privilege = { verb, targets };
    if (command === 'grant' && adminGrant(text)) facts.privilege.administrative = true;
  }

  const proxy = /^\s*(GRANT|REVOKE)\s+PROXY\s+ON\s+/i.exec(text);
  if (proxy?.[1]) {
    const on = accountsAt(text, proxy[0].length);
    const proxied = on.accounts[0];
    const revoke = proxy[1].toUpperCase() === 'REVOKE';
    const to = accountsAfter(text.slice(on.end), revoke ? /^\s*FROM\s+/i : /^\s*TO\s+/i);
    if (proxied) facts.proxyGrant = { proxied, to, revoke };
  }
  return facts;
}

/** Statements that write rows; those naming the `mysql` schema may write its grant tables. */
const DML_COMMANDS = new Set([
  'insert',
  'insert_select',
  'replace',
  'replace_select',
  'update',
  'update_multi',
  'delete',
  'delete_multi',
  'truncate',
]);
const MYSQL_SCHEMA = /\bmysql\b/i;

/** The tables that hold accounts and privileges: written directly, they take effect at FLUSH PRIVILEGES. */
const GRANT_TABLES = new Set(
  [
    'user',
    'db',
    'tables_priv',
    'columns_priv',
    'procs_priv',
    'global_grants',
    'role_edges',
    'default_roles',
    'proxies_priv',
  ].map((t) => `mysql.${t}`),
);

/**
 * The grant tables written by the statements of `t`, and whether each write may change an IAM
 * mapping: any of `mysql.proxies_priv`, and of `mysql.user` all but an UPDATE that leaves its
 * `plugin` and `authentication_string` alone.
 */
function grantTableWrites(t: Tokens): { verb: string; table: string; mapping: boolean }[] {
  const writes: { verb: string; table: string; mapping: boolean }[] = [];
  for (const k of statementStarts(t)) {
    const verb = t.word(k) ?? '';
    for (const { table, columns } of writtenTables(t, k)) {
      if (!GRANT_TABLES.has(table)) continue;
      // An UPDATE of mysql.user changes a mapping when it assigns the plugin or its AS string.
      const authentication = columns?.some((c) => c === 'plugin' || c === 'authentication_string') === true;
      const mapping =
        table === 'mysql.proxies_priv' || (table === 'mysql.user' && (verb !== 'UPDATE' || authentication));
      writes.push({ verb, table, mapping });
    }
  }
  return writes;
}

/** The privilege change of grant tables written directly: administrative, its targets unknown. */
function grantTablesChange(
  writes: readonly { verb: string; table: string }[],
): NonNullable<StatementFacts['privilege']> {
  return {
    verb: [...new Set(writes.map((w) => `${w.verb} ${w.table}`))].join(', '),
    targets: [],
    administrative: true,
  };
}

/** The statements that create a stored program, or give an event a new body or definer. */
const PROGRAM_COMMANDS: Record<string, string> = {
  create_event: 'CREATE EVENT',
  alter_event: 'ALTER EVENT',
  create_procedure: 'CREATE PROCEDURE',
  create_function: 'CREATE FUNCTION',
  create_spfunction: 'CREATE FUNCTION',
  create_trigger: 'CREATE TRIGGER',
};

/**
 * A stored program's definer, and what the privilege statements of its body would change (their
 * verbs and targets together). Its body's accounts are not `accounts`: they change nothing yet.
 */
function storedProgramFacts(text: string, verb: string): StatementFacts {
  const t = new Tokens(sqlTokens(text));
  const storedProgram: StoredProgram = { verb };
  const definer = t.list.findIndex((_, k) => t.word(k) === 'DEFINER' && t.punct(k + 1) === '=');
  const account = definer === -1 ? undefined : accountToken(t, definer + 2);
  if (account) storedProgram.definer = account;
  if (statementStarts(t).some((k) => t.word(k) === 'PREPARE' || t.word(k) === 'EXECUTE'))
    storedProgram.dynamicSql = true;
  return { ...deferredPrivilege(t, text), storedProgram };
}

/**
 * PREPARE <name> FROM <text>. From a literal, the facts of the statement it holds; from a user
 * variable only that it is dynamic SQL: the variable's value is redacted before anything reads it.
 */
function preparedFacts(text: string): StatementFacts {
  const t = new Tokens(sqlTokens(text));
  const from = t.list.findIndex((_, k) => t.word(k) === 'FROM');
  const source = from === -1 ? undefined : t.list[from + 1];
  if (source?.type === 'punct' && source.text === '@') return { prepared: { fromVariable: true } };
  if (source?.type !== 'string') return {};
  const inner = new Tokens(sqlTokens(source.text));
  const facts: StatementFacts = {
    ...deferredPrivilege(inner, source.text),
    prepared: { fromVariable: false },
  };
  const action = TAMPER_HINT.test(source.text) ? tamperAction(inner) : undefined;
  if (action) facts.auditTamper = { action };
  return facts;
}

/**
 * The privilege statements and grant-table writes among statements that run later (a stored
 * program's body, a prepared statement), their verbs and targets together. Their accounts are not
 * `accounts`: they change nothing yet.
 */
function deferredPrivilege(t: Tokens, text: string): Pick<StatementFacts, 'privilege'> {
  const changes: NonNullable<StatementFacts['privilege']>[] = [];
  for (const k of statementStarts(t)) {
    const command = bodyCommand(t, k);
    const end = t.list[t.endOfStatement(k)]?.start ?? text.length;
    const change = command && privilegeFacts(text.slice(t.list[k]!.start, end), command).privilege;
    // One that names no account is prose (`'Grant us access'`), not a statement.
    if (change && change.targets.length > 0) changes.push(change);
  }
  const writes = grantTableWrites(t);
  if (writes.length > 0) changes.push(grantTablesChange(writes));
  if (changes.length === 0) return {};
  const privilege: NonNullable<StatementFacts['privilege']> = {
    verb: [...new Set(changes.map((c) => c.verb))].join(', '),
    targets: changes.flatMap((c) => c.targets),
  };
  if (changes.some((c) => c.administrative)) privilege.administrative = true;
  return { privilege };
}

/** The account written at `k` (`'u'@'h'`, `u@h`, `u`); undefined for CURRENT_USER. */
function accountToken(t: Tokens, k: number): AccountRef | undefined {
  const user = t.list[k];
  if (user === undefined || user.type === 'punct' || t.word(k) === 'CURRENT_USER') return undefined;
  const host = t.punct(k + 1) === '@' ? t.list[k + 2] : undefined;
  return { user: user.text, host: host && host.type !== 'punct' ? host.text : '%' };
}

/**
 * Whether the GRANT or REVOKE at `k` reads as one: privileges `ON` something, or a list of roles
 * (names, `,` between them) before `TO`/`FROM`; prose (`Grant us access to ...`) does not.
 */
function grantShaped(t: Tokens, k: number): boolean {
  let roles = true;
  for (let j = k + 1; j < t.list.length && t.punct(j) !== ';'; j++) {
    const word = t.word(j);
    if (word === 'ON') return true;
    if (word === 'TO' || word === 'FROM') return roles && j > k + 1;
    // Two names side by side are no list of roles ('r1'@'%', r2 is).
    const next = t.list[j + 1];
    if (t.list[j]!.type !== 'punct' && next !== undefined && next.type !== 'punct')
      roles &&= /^(?:TO|FROM|ON)$/.test(t.word(j + 1) ?? '');
  }
  return false;
}

/** The sql_command a privilege statement at `k` of a stored program's body would be logged with. */
function bodyCommand(t: Tokens, k: number): string | undefined {
  const word = t.word(k);
  const next = t.word(k + 1);
  if (word === 'GRANT' || word === 'REVOKE') return grantShaped(t, k) ? word.toLowerCase() : undefined;
  if (next === 'USER' && (word === 'CREATE' || word === 'ALTER' || word === 'DROP' || word === 'RENAME'))
    return `${word.toLowerCase()}_user`;
  if (next === 'ROLE' && (word === 'CREATE' || word === 'DROP')) return `${word.toLowerCase()}_role`;
  if (word === 'SET' && next === 'PASSWORD') return 'set_password';
  if (word === 'SET' && next === 'DEFAULT' && t.word(k + 2) === 'ROLE') return 'alter_user_default_role';
  return undefined;
}

/** Whether the facts say anything: only such statements reach the rules (Correlator.statement). */
export function hasFacts(facts: StatementFacts): boolean {
  return Boolean(
    facts.privilege ||
      facts.accounts ||
      facts.proxyGrant ||
      facts.auditTamper ||
      facts.storedProgram ||
      facts.prepared,
  );
}

/**
 * A statement whose only effect is on its session's counters, tables and statement list: table
 * access, and queries without facts (most of a busy fleet's events). Nothing reads its login or
 * account (its session has them), so decoding does not keep them.
 */
export function isRoutineStatement(event: DbEvent): boolean {
  if (event.kind === 'table_access') return true;
  return event.kind === 'query' && (event.sql === undefined || !hasFacts(statementFacts(event)));
}
