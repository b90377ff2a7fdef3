// What a statement means for the audit: a privilege change, an authentication_oci mapping change,
// or tampering with the audit log. Read from the canonical event's `sqlCommand` and its
// secret-redacted text; statements that failed (status != 0) change nothing.
import type { DbEvent } from '../../schemas/events.js';
import { maskLiterals } from '../normalize/redact.js';

export type AccountRef = { user: string; host: string };

export type StatementFacts = {
  /** `administrative`: a grant that administers the server or other accounts (`adminGrant`). */
  privilege?: { verb: string; targets: AccountRef[]; administrative?: true };
  /** Account definitions the statement creates, alters, drops or renames. */
  accounts?: AccountChange[];
  /** GRANT PROXY ON <proxied> TO <proxy>. */
  proxyGrant?: { proxied: AccountRef; to: AccountRef[]; revoke: boolean };
  auditTamper?: { action: string };
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
function accountsAt(text: string, from: number): { accounts: AccountRef[]; end: number } {
  const accounts: AccountRef[] = [];
  let i = from;
  for (;;) {
    while (text[i] === ' ' || text[i] === '\n' || text[i] === '\t' || text[i] === '\r') i++;
    ACCOUNT.lastIndex = i;
    const m = ACCOUNT.exec(text);
    if (!m?.[1] || /^(IDENTIFIED|WITH|REQUIRE|PASSWORD|ACCOUNT|DEFAULT|AS|TO|FROM)$/i.test(m[1])) break;
    accounts.push({ user: unquote(m[1]), host: m[2] === undefined ? '%' : unquote(m[2]) });
    i = ACCOUNT.lastIndex;
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

/**
 * CREATE USER / ALTER USER: each account with the plugin and AS string that follows it, whether it
 * gets a password, and the statement's ACCOUNT LOCK or UNLOCK.
 */
function accountDefinitions(text: string, op: 'create' | 'alter'): AccountChange[] {
  const head = /^\s*(?:CREATE|ALTER)\s+USER\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?/i.exec(text);
  if (!head) return [];
  const lock = /\bACCOUNT\s+(UN)?LOCK\b/i.exec(maskLiterals(text));
  const withOptions = (change: Extract<AccountChange, { op: 'create' | 'alter' }>, at: number) => {
    IDENTIFIED_BY.lastIndex = at;
    if (IDENTIFIED_BY.test(text)) change.password = true;
    if (lock) change.locked = lock[1] === undefined;
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
    const target = accountsAt(text, from.end + to[0].length);
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

/** Every AUDIT_TAMPER pattern contains one of these: one scan rules out most statements. */
const TAMPER_HINT = /audit_log|uninstall/i;
/**
 * Read on the text with its literals masked (`maskLiterals`). The variables are the 8.0/8.4
 * plugin's (`audit_log_disable`), the 9.x component's (`audit_log.disable`) and Percona's
 * (`audit_log_filter.disable`); the first pattern that matches names the action.
 */
const AUDIT_TAMPER: [RegExp, string][] = [
  [/\baudit_log_filter_remove_(filter|user)\s*\(/i, 'filter-removed'],
  [/\baudit_log_filter_set_(filter|user)\s*\(/i, 'filter-changed'],
  // The filter tables written directly take effect at the next flush (or restart).
  [
    /\b(?:(?:INSERT|REPLACE)(?:\s+(?:LOW_PRIORITY|DELAYED|IGNORE))*(?:\s+INTO)?|UPDATE(?:\s+(?:LOW_PRIORITY|IGNORE))*|DELETE(?:\s+(?:LOW_PRIORITY|QUICK|IGNORE))*\s+FROM|TRUNCATE(?:\s+TABLE)?)\s+`?mysql`?\s*\.\s*`?audit_log_(?:filter|user)\b/i,
    'filter-tables-changed',
  ],
  [/\baudit_log_filter_flush\s*\(/i, 'filters-reloaded'],
  [/\bUNINSTALL\s+PLUGIN\s+[`'"]?audit_log\b/i, 'plugin-uninstalled'],
  [/\bUNINSTALL\s+COMPONENT\s+['"]?file:\/\/component_audit/i, 'component-uninstalled'],
  [/\baudit_log(?:[._]filter)?[._]disable\s*:?=\s*(?:ON|1|TRUE)\b/i, 'audit-log-disabled'],
  [/\baudit_log[._](?:connection_|statement_)?policy\s*:?=\s*NONE\b/i, 'audit-policy-none'],
  [/\baudit_log[._](?:connection_|statement_)?policy\s*:?=\s*(?!ALL\b)\w/i, 'audit-policy-reduced'],
  [/\baudit_log[._]exclude_accounts\s*:?=/i, 'accounts-excluded'],
  [/\baudit_log[._]include_accounts\s*:?=/i, 'accounts-included'],
];

/** What a statement changes; empty for ordinary queries and for failed statements. */
export function statementFacts(event: DbEvent): StatementFacts {
  const sql = event.sql;
  if (!sql || event.status !== 0 || (sql.status !== undefined && sql.status !== 0)) return {};
  const text = sql.text ?? '';
  const command = (sql.sqlCommand ?? '').toLowerCase();
  const facts: StatementFacts = {};

  const verb = PRIVILEGE_COMMANDS[command];
  // Account definitions first: privilege targets of CREATE/ALTER/DROP/RENAME USER come from them.
  if (command === 'create_user' || command === 'alter_user') {
    facts.accounts = accountDefinitions(text, command === 'create_user' ? 'create' : 'alter');
  } else if (command === 'drop_user') {
    facts.accounts = accountsAfter(text, /^\s*DROP\s+USER\s+(?:IF\s+EXISTS\s+)?/i).map((account) => ({
      op: 'drop' as const,
      account,
    }));
  } else if (command === 'rename_user') {
    facts.accounts = renames(text);
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
    } else if (command === 'drop_role' || command === 'create_role') {
      targets = accountsAfter(text, /^\s*(?:DROP|CREATE)\s+ROLE\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?/i);
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

  if (TAMPER_HINT.test(text)) {
    const masked = maskLiterals(text);
    const tamper = AUDIT_TAMPER.find(([pattern]) => pattern.test(masked));
    if (tamper) facts.auditTamper = { action: tamper[1] };
  }
  return facts;
}

/** Whether the facts say anything: only such statements reach the rules (Correlator.statement). */
export function hasFacts(facts: StatementFacts): boolean {
  return Boolean(facts.privilege || facts.accounts || facts.proxyGrant || facts.auditTamper);
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
