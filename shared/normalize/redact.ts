// SQL redaction. MySQL masks the passwords of statements it could parse, but logs a statement
// that failed to parse (status 1064) verbatim, password included.
//
// Two strengths:
// - redactSecrets: passwords and hashes only. Used for the canonical event text, so that the
//   correlator can still read account names and `authentication_oci` mappings.
// - redactLiterals: every string and number literal too. Used where SQL leaves the pipeline
//   (alerts, outputs). `authentication_oci` mappings stay: they are configuration, not data.
//
// Secrets are: passwords and hashes in account and replication statements; every literal of a
// statement that touches a credential table (`mysql.user`, `mysql.servers`, ...) or names
// `authentication_string`; the value given to a user variable (`SET @k = '...'`, often a key or
// a password carried to the next statement); the arguments of password, hashing, encryption and
// keyring functions.
//
// The lexer is lenient: it works on text that is not valid SQL, and an unterminated string runs
// to the end of the text (so a cut-off secret is still hidden).

type TokenType = 'space' | 'comment' | 'string' | 'ident' | 'number' | 'word' | 'punct';
type Token = { type: TokenType; start: number; end: number };

const SECRET = "'<redacted>'";
const LITERAL = '?';
/** The plugin whose `AS '...'` value is a mapping (configuration), not a hash: bare or quoted. */
const OCI_PLUGIN = /^(['"`]?)authentication_oci\1$/i;

/** Tables whose rows hold credentials: every literal of a statement naming one is a secret. */
const CREDENTIAL_TABLES = new Set(['USER', 'SERVERS', 'SLAVE_MASTER_INFO', 'PASSWORD_HISTORY']);
/** Functions whose arguments are keys, passwords or what they protect (besides `*PASSWORD*(`). */
const SECRET_FUNCTIONS =
  /^(?:AES_(?:EN|DE)CRYPT|DES_(?:EN|DE)CRYPT|ENCRYPT|ENCODE|DECODE|MD5|SHA[12]?|ASYMMETRIC_\w+|CREATE_ASYMMETRIC_\w+|CREATE_DH_PARAMETERS|KEYRING_\w+)$/;
/**
 * Words that mark text which may hold a secret of any form above; text with none of them and no
 * `@` (user variables, accounts) is returned as it is, unlexed. The `@` is looked for apart: in
 * the same expression it made every statement's test three times slower.
 */
const MAY_HOLD_SECRET =
  /identified|password|authentication_string|mysql\W|crypt|encode|decode|md5|sha|asymmetric|keyring|_dh_/i;

/** Replaces passwords, password hashes and other secrets with `'<redacted>'`. */
export function redactSecrets(sql: string): string {
  if (!sql.includes('@') && !MAY_HOLD_SECRET.test(sql)) return sql;
  const tokens = tokenize(sql);
  const { secret } = classify(sql, tokens);
  if (secret.size === 0) return sql;
  return render(sql, tokens, (t) => (secret.has(t) ? SECRET : undefined));
}

/** Replaces secrets and every string and number literal with `?`, keeping `authentication_oci` mappings. */
export function redactLiterals(sql: string): string {
  const tokens = tokenize(sql);
  const { secret, keep } = classify(sql, tokens);
  return render(sql, tokens, (t) =>
    secret.has(t) || ((t.type === 'string' || t.type === 'number') && !keep.has(t)) ? LITERAL : undefined,
  );
}

/** A token as MySQL reads it: `text` is a string's value or a back-quoted name without its quotes. */
export type SqlToken = {
  type: 'word' | 'ident' | 'string' | 'number' | 'punct';
  text: string;
  start: number;
};

/**
 * For reading what a statement does, not for output: its tokens without spaces and comments. The
 * content of an executable comment (`/*!80000 ... *\/`) stays, as MySQL runs it (whatever the
 * version named: the server's is not known here); text inside a literal stays one `string`.
 */
export function sqlTokens(sql: string): SqlToken[] {
  const out: SqlToken[] = [];
  for (const t of tokenize(sql)) {
    if (t.type === 'space' || t.type === 'comment') continue;
    const raw = sql.slice(t.start, t.end);
    const text = t.type === 'string' || t.type === 'ident' ? unquoted(raw) : raw;
    out.push({ type: t.type, text, start: t.start });
  }
  return out;
}

/** The value of a quoted string or name: quotes removed, doubled quotes and backslash escapes undone. */
function unquoted(raw: string): string {
  const q = raw[0]!;
  const body = raw.length >= 2 && raw.endsWith(q) ? raw.slice(1, -1) : raw.slice(1);
  const undoubled = body.replaceAll(q + q, q);
  return q === '`' ? undoubled : undoubled.replace(/\\(.)/g, '$1');
}

/** The redaction for SQL that leaves the pipeline: same as `redactLiterals`. */
export const redactSql = redactLiterals;

/**
 * Joins the tokens, putting `replace`'s text in place of the tokens it names. A replacement must read
 * back as one token with the same neighbours, or a second redaction would see other tokens and
 * change the text again (`'<redacted>'` right before a `'...'` string reads as one string with a
 * doubled quote). Where it would fuse with a neighbour, a space keeps them apart.
 */
function render(sql: string, tokens: readonly Token[], replace: (t: Token) => string | undefined): string {
  let out = '';
  let previous = '';
  let previousReplaced = false;
  for (const t of tokens) {
    const replacement = replace(t);
    const text = replacement ?? sql.slice(t.start, t.end);
    if ((replacement !== undefined || previousReplaced) && fuses(previous, text)) out += ' ';
    out += text;
    previous = text;
    previousReplaced = replacement !== undefined;
  }
  return out;
}

/** Whether two adjacent tokens' texts, read again together, no longer end in `right` as one token. */
function fuses(left: string, right: string): boolean {
  return tokenize(left + right).at(-1)!.start !== left.length;
}

/**
 * Marks which tokens are secrets and which literals must be kept (plugin names, OCI mappings),
 * looking at the tokens that carry meaning: no spaces, no comments.
 */
function classify(
  sql: string,
  tokens: readonly Token[],
): { secret: Set<Token>; keep: Set<Token | undefined> } {
  const secret = new Set<Token>();
  const keep = new Set<Token | undefined>();
  const sig = tokens.filter((t) => t.type !== 'space' && t.type !== 'comment');
  const words = sig.map((t) => (t.type === 'word' ? sql.slice(t.start, t.end).toUpperCase() : undefined));
  const word = (k: number) => words[k];
  const punct = (k: number) => {
    const t = sig[k];
    return t?.type === 'punct' ? sql[t.start] : undefined;
  };

  /** The value at `k` is a secret unless it is a keyword or a function call. */
  const secretValue = (k: number): void => {
    const t = sig[k];
    if (t === undefined) return;
    const literal = t.type === 'string' || t.type === 'number' || t.type === 'ident';
    const name = t.type === 'word' && punct(k + 1) !== '(' && word(k) !== 'RANDOM';
    if (!literal && !name) return;
    secret.add(t);
    // ALTER USER ... IDENTIFIED BY 'new' REPLACE 'current', SET PASSWORD = 'new' REPLACE 'current'
    if (word(k + 1) === 'REPLACE') secretValue(k + 2);
  };

  /** `BY 'x'`, `BY PASSWORD 'hash'` (old syntax); `BY RANDOM PASSWORD` has no secret. */
  const byClause = (k: number): void => {
    if (word(k + 1) === 'PASSWORD') secretValue(k + 2);
    else secretValue(k + 1);
  };

  /** String and number arguments of a call whose `(` is at `k`, up to the matching `)`. */
  const secretArguments = (k: number): void => {
    let depth = 0;
    for (let j = k; j < sig.length; j++) {
      const p = punct(j);
      if (p === '(') depth++;
      else if (p === ')' && --depth === 0) return;
      const t = sig[j]!;
      if (t.type === 'string' || t.type === 'number') secret.add(t);
    }
  };

  /** The literals of the value assigned at `k`, up to a `,`, `;` or `)` around it, or a clause word. */
  const secretExpression = (k: number): void => {
    let depth = 0;
    for (let j = k; j < sig.length; j++) {
      const p = punct(j);
      if (p === '(') depth++;
      else if (p === ')' && --depth < 0) return;
      else if (depth === 0 && (p === ',' || p === ';')) return;
      const t = sig[j]!;
      if (t.type === 'string' || t.type === 'number') secret.add(t);
      // A word ends the value unless it calls a function or introduces a string (X'..', _utf8mb4'..').
      else if (depth === 0 && t.type === 'word' && punct(j + 1) !== '(' && sig[j + 1]?.type !== 'string')
        return;
    }
  };

  /** Whether the tokens at `k` name a credential table: mysql.user, `mysql`.`servers`, ... */
  const credentialTable = (k: number): boolean =>
    name(k) === 'MYSQL' && punct(k + 1) === '.' && CREDENTIAL_TABLES.has(name(k + 2) ?? '');
  const name = (k: number): string | undefined => {
    const t = sig[k];
    if (t?.type === 'word') return words[k];
    return t?.type === 'ident' ? sql.slice(t.start + 1, t.end - 1).toUpperCase() : undefined;
  };

  if (sig.some((_, k) => credentialTable(k) || word(k) === 'AUTHENTICATION_STRING')) {
    for (const t of sig) if (t.type === 'string' || t.type === 'number') secret.add(t);
    return { secret, keep };
  }

  for (let k = 0; k < sig.length; k++) {
    const w = word(k);
    if (punct(k) === '@' && punct(k - 1) !== '@' && sig[k + 1] !== undefined && punct(k + 1) === undefined) {
      // A user variable: @k = 'v', @k := 'v', @`k` = ..., @'k' = ...
      const assign = punct(k + 2) === ':' && punct(k + 3) === '=' ? k + 4 : punct(k + 2) === '=' ? k + 3 : -1;
      if (assign !== -1) secretExpression(assign);
    } else if (w !== undefined && punct(k + 1) === '(' && SECRET_FUNCTIONS.test(w)) {
      secretArguments(k + 1);
    } else if (w === 'IDENTIFIED' && word(k + 1) === 'BY') {
      byClause(k + 1);
    } else if (w === 'IDENTIFIED' && word(k + 1) === 'WITH') {
      // IDENTIFIED WITH <plugin> BY 'x' | AS 'hash' | AS '<authentication_oci mapping>'
      const plugin = sig[k + 2];
      keep.add(plugin);
      const next = word(k + 3);
      if (next === 'BY') byClause(k + 3);
      else if (next !== 'AS' && next !== 'USING') continue;
      else if (OCI_PLUGIN.test(sql.slice(plugin!.start, plugin!.end))) keep.add(sig[k + 4]);
      else secretValue(k + 4);
    } else if (w?.includes('PASSWORD') && punct(k + 1) === '(') {
      // PASSWORD('x'), OLD_PASSWORD('x'), audit_log_encryption_password_set('x')
      secretArguments(k + 1);
    } else if (w?.endsWith('PASSWORD') && (punct(k + 1) === '=' || sig[k + 1]?.type === 'string')) {
      // MASTER_PASSWORD='x', SOURCE_PASSWORD='x', PASSWORD='x', CREATE SERVER ... OPTIONS (PASSWORD 'x')
      secretValue(punct(k + 1) === '=' ? k + 2 : k + 1);
    } else if (w === 'PASSWORD' && word(k + 1) === 'FOR') {
      // SET PASSWORD FOR 'u'@'h' = 'x': the account is not a secret, the value after `=` is.
      let j = k + 2;
      while (j < sig.length && punct(j) !== '=' && punct(j) !== ';') j++;
      if (punct(j) === '=') secretValue(j + 1);
    }
  }
  return { secret, keep };
}

function isWordChar(c: number): boolean {
  return (
    (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95 || c === 36 || c >= 128
  );
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  const n = sql.length;
  // Past the end, charCodeAt gives NaN, which is in no character class: the loops stop there.
  const at = (i: number) => sql.charCodeAt(i);
  let i = 0;
  while (i < n) {
    const start = i;
    const c = at(i);
    const next = at(i + 1);
    let type: TokenType;
    if (isSpace(c)) {
      while (isSpace(at(i))) i++;
      type = 'space';
    } else if (c === 39 || c === 34) {
      i = endOfQuoted(sql, i, c); // ' "
      type = 'string';
    } else if (c === 96) {
      i = endOfQuoted(sql, i, c); // `
      type = 'ident';
    } else if (c === 35 || (c === 45 && next === 45 && isSpace(at(i + 2)))) {
      const nl = sql.indexOf('\n', i); // # comment, or -- and a space
      i = nl === -1 ? n : nl;
      type = 'comment';
    } else if (c === 47 && next === 42 && at(i + 2) !== 33 && at(i + 2) !== 43) {
      const close = sql.indexOf('*/', i + 2); // /* comment */
      i = close === -1 ? n : close + 2;
      type = 'comment';
    } else if (c === 47 && next === 42) {
      // /*! executable comment or /*+ optimizer hint: its opener is a comment, its content is SQL.
      i += 3;
      while (isDigit(at(i))) i++;
      type = 'comment';
    } else if (c === 42 && next === 47) {
      i += 2;
      type = 'comment';
    } else if (isDigit(c) || (c === 46 && isDigit(next) && !afterName(sql, tokens.at(-1)))) {
      // `.5` is a number, except after a name (`t.5col`): decided by the token before, not by its
      // last character, so that a redacted number (`1.5` -> `?.5`) reads the same way again.
      i = endOfNumber(sql, i);
      type = 'number';
      if (isWordChar(at(i))) {
        // `1abc` is an identifier: MySQL names may start with digits.
        while (isWordChar(at(i))) i++;
        type = 'word';
      }
    } else if (isWordChar(c)) {
      while (isWordChar(at(i))) i++;
      type = 'word';
    } else {
      i++;
      type = 'punct';
    }
    tokens.push({ type, start, end: i });
  }
  return tokens;
}

/**
 * Whether a token is a name, or the `?` that stands for one: a secret name redacted
 * (`PASSWORD = pw.5` -> `PASSWORD = ?.5`) keeps what follows it reading as it did.
 */
function afterName(sql: string, t: Token | undefined): boolean {
  return t !== undefined && (t.type === 'word' || (t.type === 'punct' && sql[t.start] === LITERAL));
}

/** End of a quoted string or identifier; backslash escapes and doubled quotes continue it. */
function endOfQuoted(sql: string, start: number, quote: number): number {
  const n = sql.length;
  let i = start + 1;
  while (i < n) {
    const c = sql.charCodeAt(i);
    // A backslash escapes the next character, except in `identifiers`.
    if (c === 92 && quote !== 96) i += 2;
    else if (c === quote && sql.charCodeAt(i + 1) === quote) i += 2;
    else if (c === quote) return i + 1;
    else i++;
  }
  return n;
}

const NUMBER = /0[xX][0-9a-fA-F]+|0[bB][01]+|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/y;

/** Called on a digit, or on a `.` before one: NUMBER always matches there. */
function endOfNumber(sql: string, start: number): number {
  NUMBER.lastIndex = start;
  NUMBER.exec(sql);
  return NUMBER.lastIndex;
}
