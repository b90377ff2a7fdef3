// A MySQL-protocol server that stands in for one HeatWave DB system instance in tests: real TCP,
// real TLS, real mysql_native_password, and the audit log read functions with the semantics the
// MySQL manual documents (audit-log.ts). It answers the statements the collector, `doctor` and
// `sync` send (and only those: anything else is ER_PARSE_ERROR, so a new statement in the product
// fails a test until this server learns it), from a catalogue that a test sets: version, server
// UUID, audit log plugin or component and its variables, filters, accounts, grants.
// test/sources/collector.test.ts shows how tests use it.
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import { AuditLog, type ReadSequence } from './audit-log.js';
import { authenticateOci, type IamDirectory, type OciVerdict } from './oci-auth.js';
import {
  type Authenticator,
  type Cell,
  COLUMN_TYPE,
  type Column,
  nativePasswordMatches,
  PacketChannel,
  parseCommand,
} from './protocol.js';

/** How the audit log is installed: the 8.0/8.4 plugin, the 9.x component, or not at all. */
export type AuditFlavor = 'plugin' | 'component' | 'none';

export type TestAccount = {
  user: string;
  host?: string;
  /** For mysql_native_password logins; accounts with another plugin cannot log in here. */
  password?: string;
  plugin?: string;
  authenticationString?: string;
  locked?: boolean;
  /**
   * Global privileges (`AUDIT_ADMIN`, `SELECT`, `ALL PRIVILEGES`, `GRANT OPTION`, ...) and table
   * grants (`SELECT ON mysql.user`).
   */
  grants?: string[];
  /** Roles granted to the account (`role_name@host`, host `%` when omitted). */
  roles?: string[];
  /** Partial revokes (`partial_revokes`): global privileges taken back on a database. */
  restrictions?: { database: string; privileges: string[] }[];
};

export type ServerCatalogue = {
  version: string;
  serverUuid: string;
  flavor: AuditFlavor;
  /** Audit log variables without their prefix (`format`, `read_buffer_size`, `database`, ...). */
  auditVariables: Record<string, string>;
  /** Filter definitions (`mysql.audit_log_filter`) and their assignments (`mysql.audit_log_user`). */
  filters: { name: string; filter: unknown }[];
  filterUsers: { user: string; host: string; filter: string }[];
  accounts: TestAccount[];
  /** Server plugins reported by information_schema.PLUGINS besides the audit log. */
  plugins: { name: string; status: string }[];
  /** `max_error_count`: how many messages of a statement a session keeps (it counts them all). */
  maxErrorCount: number;
  /**
   * What `SELECT @@max_error_count` answers: the value (`reported`, as MySQL does), NULL (`null`),
   * or error 1193 Unknown system variable (`unknown`, a server without it). The session keeps
   * `maxErrorCount` messages all the same.
   */
  maxErrorCountVariable: 'reported' | 'null' | 'unknown';
  /**
   * What `SHOW COUNT(*) WARNINGS` answers: the count of the last statement's warnings (`counted`,
   * as MySQL does), NULL (`null`), a value that is not a number (`text`), or 1 (`one`: fewer than
   * the messages kept, when it kept more than one).
   */
  warningCountAnswer: 'counted' | 'null' | 'text' | 'one';
};

export type TestServerOptions = Partial<ServerCatalogue> & {
  audit?: AuditLog;
  /** PEM key and certificate: the server offers TLS. */
  tls?: { key: string; cert: string };
  /** Replaces mysql_native_password (tests of client authentication plugins). */
  authenticate?: Authenticator;
  /** What IAM knows, for `authentication_oci` accounts (oci-auth.ts); without it they cannot log in. */
  iam?: IamDirectory;
};

type SessionState = {
  id: number;
  user: TestAccount;
  tls: boolean;
  sequence?: ReadSequence | undefined;
  readBufferSize: number;
  maxErrorCount: number;
  /** The messages of the last statement that raised any, the first `maxErrorCount` of them. */
  warnings: { level: string; code: number; message: string }[];
  /** How many it raised (`@@warning_count`). */
  warningCount: number;
};

type Warning = SessionState['warnings'][number];

/** Records the warnings of a statement as MySQL does: all counted, the first `max_error_count` kept. */
function warn(session: SessionState, warnings: readonly Warning[]): void {
  session.warningCount = warnings.length;
  session.warnings = warnings.slice(0, session.maxErrorCount);
}

const PREFIX: Record<AuditFlavor, string> = { plugin: 'audit_log_', component: 'audit_log.', none: '' };

export const DEFAULT_AUDIT_VARIABLES: Record<string, string> = {
  format: 'JSON',
  disable: 'OFF',
  read_buffer_size: '32768',
  file: 'audit.log',
  database: 'mysql',
};

export const LOG_ALL_FILTER = { filter: { log: true } };

/** A MySQL string literal as mysql2 escapes values (backslash escapes, doubled quotes). */
function unquote(literal: string): string {
  const body = literal.slice(1, -1);
  const escapes: Record<string, string> = { '0': '\0', b: '\b', n: '\n', r: '\r', t: '\t', Z: '\x1a' };
  return body.replace(/\\(.)|''/gs, (m, c: string | undefined) =>
    m === "''" ? "'" : c === undefined ? m : (escapes[c] ?? c),
  );
}

const STRING = String.raw`'(?:[^'\\]|\\.|'')*'`;

type Answer =
  | { columns: Column[]; rows: Cell[][] }
  | { ok: true }
  | { error: { code: number; state: string; message: string } }
  | undefined;

type Route = {
  pattern: RegExp;
  handle(m: RegExpExecArray, session: SessionState, channel: PacketChannel): Answer;
};

export class HeatWaveTestServer {
  readonly catalogue: ServerCatalogue;
  audit: AuditLog;
  /** Every statement received, in order (for assertions about what the client sent). */
  readonly statements: string[] = [];
  /** Number of connections accepted (authenticated or not). */
  connections = 0;
  /** The verdict of every `authentication_oci` login, in order. */
  readonly iamLogins: OciVerdict[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly channels = new Set<PacketChannel>();
  private readonly tls: SecureContext | undefined;
  private readonly authenticate: Authenticator;
  private nextConnectionId = 1;
  private port = 0;
  private faults: { dropOnRead?: number; failQuery?: { pattern: RegExp; code: number; message: string } } =
    {};
  private reads = 0;

  private constructor(opts: TestServerOptions) {
    this.catalogue = {
      version: opts.version ?? '8.4.3-u2-cloud',
      serverUuid: opts.serverUuid ?? '3e11fa47-71ca-11e1-9e33-c80aa9429562',
      flavor: opts.flavor ?? 'plugin',
      auditVariables: { ...DEFAULT_AUDIT_VARIABLES, ...opts.auditVariables },
      filters: opts.filters ?? [{ name: 'log_all', filter: LOG_ALL_FILTER }],
      filterUsers: opts.filterUsers ?? [{ user: '%', host: '', filter: 'log_all' }],
      accounts: opts.accounts ?? [],
      plugins: opts.plugins ?? [{ name: 'authentication_oci', status: 'ACTIVE' }],
      maxErrorCount: opts.maxErrorCount ?? 1024,
      maxErrorCountVariable: opts.maxErrorCountVariable ?? 'reported',
      warningCountAnswer: opts.warningCountAnswer ?? 'counted',
    };
    this.audit = opts.audit ?? new AuditLog();
    this.tls = opts.tls ? createSecureContext({ key: opts.tls.key, cert: opts.tls.cert }) : undefined;
    this.authenticate =
      opts.authenticate ??
      (async (hello, exchange) => {
        // As MySQL matches accounts: the user's own, else the anonymous one.
        const account = this.account(hello.user) ?? this.account('');
        if (account?.plugin === 'authentication_oci' && opts.iam && !account.locked) {
          const verdict = await authenticateOci(
            hello,
            account.authenticationString ?? '{}',
            exchange,
            opts.iam,
          );
          this.iamLogins.push(verdict);
          return verdict.ok
            ? verdict.account
              ? { ok: true, account: verdict.account }
              : { ok: true }
            : verdict;
        }
        const ok =
          account?.password !== undefined &&
          !account.locked &&
          hello.authPlugin === 'mysql_native_password' &&
          nativePasswordMatches(exchange.scramble, hello.authResponse, account.password);
        return ok
          ? { ok: true }
          : {
              ok: false,
              message: `Access denied for user '${hello.user}'@'127.0.0.1' (using password: ${hello.authResponse.length > 0 ? 'YES' : 'NO'})`,
            };
      });
    this.server = createServer((socket) => this.accept(socket));
  }

  static async start(opts: TestServerOptions = {}): Promise<HeatWaveTestServer> {
    const s = new HeatWaveTestServer(opts);
    await s.listen(0);
    return s;
  }

  get address(): { host: string; port: number } {
    return { host: '127.0.0.1', port: this.port };
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        const address = this.server.address();
        if (address && typeof address === 'object') this.port = address.port;
        resolve();
      });
    });
  }

  /** Stops accepting and drops every connection (an instance that went down). */
  async stop(): Promise<void> {
    for (const c of this.channels) c.close(true);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Starts again on the same port (an instance that came back). */
  async restart(): Promise<void> {
    await this.listen(this.port);
  }

  /** Drops the connection in the middle of the `n`th audit_log_read from now (a network failure). */
  dropOnRead(n: number): void {
    this.reads = 0;
    this.faults.dropOnRead = n;
  }

  /** Statements matching `pattern` fail with this error (a privilege missing, say). */
  failQuery(pattern: RegExp, code: number, message: string): void {
    this.faults.failQuery = { pattern, code, message };
  }

  private account(user: string): TestAccount | undefined {
    return this.catalogue.accounts.find((a) => a.user === user);
  }

  private async accept(socket: Socket): Promise<void> {
    this.connections++;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const channel = new PacketChannel(socket);
    this.channels.add(channel);
    try {
      const id = this.nextConnectionId++;
      const hello = await channel.handshake({
        serverVersion: this.catalogue.version,
        connectionId: id,
        ...(this.tls ? { tls: this.tls } : {}),
        authenticate: this.authenticate,
      });
      if (!hello) return;
      const user = this.account(hello.account ?? hello.user) ?? { user: hello.user };
      const session: SessionState = {
        id,
        user,
        tls: hello.tls,
        readBufferSize: Number(this.catalogue.auditVariables.read_buffer_size ?? 32768),
        maxErrorCount: this.catalogue.maxErrorCount,
        warnings: [],
        warningCount: 0,
      };
      for (;;) {
        const packet = await channel.next();
        const command = parseCommand(packet);
        if (command.type === 'quit') {
          channel.close();
          return;
        }
        if (command.type === 'ping' || command.type === 'init-db') channel.ok();
        else if (command.type === 'query') this.query(channel, session, command.sql);
        else channel.error(1047, '08S01', 'Unknown command');
      }
    } catch {
      // The client went away.
    } finally {
      this.channels.delete(channel);
    }
  }

  private query(channel: PacketChannel, session: SessionState, raw: string): void {
    const sql = raw.trim().replace(/\s+/g, ' ').replace(/;$/, '');
    this.statements.push(sql);
    const fault = this.faults.failQuery;
    if (fault?.pattern.test(sql)) {
      channel.error(fault.code, '42000', fault.message);
      return;
    }
    // Diagnostic statements: they leave the messages of the last statement as they are.
    if (/^SHOW WARNINGS$/i.test(sql)) {
      channel.resultSet(
        [{ name: 'Level' }, { name: 'Code', type: COLUMN_TYPE.LONGLONG }, { name: 'Message' }],
        session.warnings.map((w) => [w.level, w.code, w.message]),
      );
      return;
    }
    if (/^SHOW COUNT\(\*\) WARNINGS$/i.test(sql)) {
      const answer = this.catalogue.warningCountAnswer;
      channel.resultSet(
        [
          {
            name: '@@session.warning_count',
            type: answer === 'text' ? COLUMN_TYPE.VAR_STRING : COLUMN_TYPE.LONGLONG,
          },
        ],
        [[{ counted: session.warningCount, null: null, text: 'n/a', one: 1 }[answer]]],
      );
      return;
    }
    warn(session, []);
    const answer = this.answer(channel, session, sql);
    if (answer === undefined) return;
    // The OK and EOF packets carry the count in two bytes.
    const warnings = Math.min(session.warningCount, 0xffff);
    if ('error' in answer) channel.error(answer.error.code, answer.error.state, answer.error.message);
    else if ('ok' in answer) channel.ok({ warnings });
    else channel.resultSet(answer.columns, answer.rows, warnings);
  }

  /** The statements this server understands, in the order they are tried. */
  private readonly routes: Route[] = [
    {
      pattern: /^SELECT (@@[\w.]+(?: AS \w+)?(?:, @@[\w.]+(?: AS \w+)?)*)$/i,
      handle: (m, session) => {
        const items = m[1]!.split(', ').map((part) => /^(@@[\w.]+)(?: AS (\w+))?$/i.exec(part)!);
        const reported = this.catalogue.maxErrorCountVariable;
        if (reported === 'unknown' && items.some((i) => i[1]!.toLowerCase() === '@@max_error_count'))
          return {
            error: { code: 1193, state: 'HY000', message: "Unknown system variable 'max_error_count'" },
          };
        const values: Record<string, Cell> = {
          '@@max_error_count': reported === 'reported' ? session.maxErrorCount : null,
          '@@version': this.catalogue.version,
          '@@server_uuid': this.catalogue.serverUuid,
          '@@hostname': 'hw-instance',
          '@@version_comment': 'MySQL Enterprise - Cloud',
        };
        return {
          columns: items.map((i) => ({ name: i[2] ?? i[1]! })),
          rows: [items.map((i) => values[i[1]!.toLowerCase()] ?? null)],
        };
      },
    },
    {
      pattern: /^SHOW (?:GLOBAL |SESSION )?VARIABLES LIKE '([^']*)'$/i,
      handle: (m, session) => {
        const { flavor, auditVariables } = this.catalogue;
        const like = likePattern(m[1]!);
        const rows: Cell[][] =
          flavor === 'none'
            ? []
            : Object.entries(auditVariables)
                .map(([k, v]): Cell[] => [
                  `${PREFIX[flavor]}${k}`,
                  k === 'read_buffer_size' ? String(session.readBufferSize) : v,
                ])
                .filter((r) => like.test(String(r[0])));
        return { columns: [{ name: 'Variable_name' }, { name: 'Value' }], rows };
      },
    },
    {
      pattern: /^SET (?:SESSION |@@SESSION\.)?`?([\w.]+)`? = (\d+)$/i,
      handle: (m, session) => {
        const { flavor } = this.catalogue;
        const name = `${PREFIX[flavor]}read_buffer_size`;
        if (flavor !== 'none' && m[1]!.toLowerCase() === name) {
          // As MySQL sets a variable out of its range: cut to the range, with a warning.
          const value = Number(m[2]);
          session.readBufferSize = Math.min(Math.max(value, 32_768), 4_194_304);
          if (session.readBufferSize !== value)
            warn(session, [
              { level: 'Warning', code: 1292, message: `Truncated incorrect ${name} value: '${value}'` },
            ]);
          return { ok: true };
        }
        return { error: { code: 1193, state: 'HY000', message: `Unknown system variable '${m[1]}'` } };
      },
    },
    {
      pattern: /^SELECT CURRENT_USER\(\)(?: AS (\w+))?$/i,
      handle: (m, session) => ({
        columns: [{ name: m[1] ?? 'CURRENT_USER()' }],
        rows: [[`${session.user.user}@${session.user.host ?? '%'}`]],
      }),
    },
    {
      pattern: /^SHOW SESSION STATUS LIKE 'Ssl_version'$/i,
      handle: (_m, session) => ({
        columns: [{ name: 'Variable_name' }, { name: 'Value' }],
        rows: [['Ssl_version', session.tls ? 'TLSv1.3' : '']],
      }),
    },
    {
      pattern: /^SELECT audit_log_read_bookmark\(\)(?: AS \w+)?$/i,
      handle: (_m, session) =>
        this.auditFunction('audit_log_read_bookmark', session) ?? {
          columns: [{ name: 'bookmark' }],
          rows: [[this.audit.bookmark()]],
        },
    },
    {
      pattern: new RegExp(`^SELECT audit_log_read\\((${STRING})?\\)(?: AS \\w+)?$`, 'is'),
      handle: (m, session, channel) => {
        const refused = this.auditFunction('audit_log_read', session);
        if (refused) return refused;
        if (this.faults.dropOnRead !== undefined && ++this.reads >= this.faults.dropOnRead) {
          delete this.faults.dropOnRead;
          channel.close(true);
          return undefined;
        }
        if (this.catalogue.auditVariables.format !== 'JSON')
          return {
            error: {
              code: 3200,
              state: 'HY000',
              message: 'audit_log_read UDF failed; Not supported for non-JSON log format.',
            },
          };
        const arg = m[1] === undefined ? undefined : unquote(m[1]);
        const result = this.audit.read(session, arg, session.readBufferSize);
        if (!result.ok) return { error: { code: result.code, state: 'HY000', message: result.message } };
        warn(
          session,
          result.warnings.map((w) => ({ level: 'Warning', ...w })),
        );
        return { columns: [{ name: 'events' }], rows: [[result.value]] };
      },
    },
    {
      pattern:
        /^SELECT PLUGIN_NAME, PLUGIN_STATUS FROM information_schema\.PLUGINS WHERE PLUGIN_NAME IN \(.*\)$/i,
      handle: () => {
        const rows: Cell[][] = this.catalogue.plugins.map((p) => [p.name, p.status]);
        if (this.catalogue.flavor === 'plugin') rows.unshift(['audit_log', 'ACTIVE']);
        return { columns: [{ name: 'PLUGIN_NAME' }, { name: 'PLUGIN_STATUS' }], rows };
      },
    },
    {
      pattern: /^SELECT component_urn FROM mysql\.component$/i,
      handle: (_m, session) =>
        this.has(session.user, 'SELECT ON mysql.component')
          ? {
              columns: [{ name: 'component_urn' }],
              rows: this.catalogue.flavor === 'component' ? [['file://component_audit_log']] : [],
            }
          : denied('SELECT'),
    },
    {
      pattern: /^SELECT NAME, FILTER FROM `?(\w+)`?\.audit_log_filter$/i,
      handle: (m, session) =>
        this.has(session.user, `SELECT ON ${m[1]}.audit_log_filter`)
          ? {
              columns: [{ name: 'NAME' }, { name: 'FILTER', type: COLUMN_TYPE.JSON }],
              rows: this.catalogue.filters.map((f) => [f.name, JSON.stringify(f.filter)]),
            }
          : denied('SELECT'),
    },
    {
      pattern: /^SELECT USER, HOST, FILTERNAME FROM `?(\w+)`?\.audit_log_user$/i,
      handle: (m, session) =>
        this.has(session.user, `SELECT ON ${m[1]}.audit_log_user`)
          ? {
              columns: [{ name: 'USER' }, { name: 'HOST' }, { name: 'FILTERNAME' }],
              rows: this.catalogue.filterUsers.map((f) => [f.user, f.host, f.filter]),
            }
          : denied('SELECT'),
    },
    {
      pattern: /^SELECT User, Host, plugin, authentication_string, account_locked FROM mysql\.user$/i,
      handle: (_m, session) =>
        this.has(session.user, 'SELECT ON mysql.user')
          ? {
              columns: ['User', 'Host', 'plugin', 'authentication_string', 'account_locked'].map((name) => ({
                name,
              })),
              rows: this.catalogue.accounts.map((a) => userRow(a).slice(0, 5)),
            }
          : denied('SELECT'),
    },
    {
      // As in MySQL 8.0: the static global privileges are Y/N columns, CREATE/DROP ROLE after account_locked.
      pattern: /^SELECT \* FROM mysql\.user$/i,
      handle: (_m, session) =>
        this.has(session.user, 'SELECT ON mysql.user')
          ? {
              columns: [
                'User',
                'Host',
                'plugin',
                'authentication_string',
                'account_locked',
                ...USER_PRIVILEGE_COLUMNS.map(([column]) => column),
              ]
                .map((name): Column => ({ name }))
                .concat({ name: 'User_attributes', type: COLUMN_TYPE.JSON }),
              rows: this.catalogue.accounts.map(userRow),
            }
          : denied('SELECT'),
    },
    {
      pattern: /^SELECT USER, HOST, PRIV, WITH_GRANT_OPTION FROM mysql\.global_grants$/i,
      handle: (_m, session) =>
        this.has(session.user, 'SELECT ON mysql.global_grants')
          ? {
              columns: ['USER', 'HOST', 'PRIV', 'WITH_GRANT_OPTION'].map((name) => ({ name })),
              rows: this.catalogue.accounts.flatMap((a) =>
                globalPrivileges(a)
                  .filter((p) => DYNAMIC.test(p))
                  .map((p): Cell[] => [
                    a.user,
                    a.host ?? '%',
                    p,
                    (a.grants ?? []).includes('GRANT OPTION') ? 'Y' : 'N',
                  ]),
              ),
            }
          : denied('SELECT'),
    },
    {
      pattern: /^SELECT \* FROM mysql\.db$/i,
      handle: (_m, session) =>
        this.has(session.user, 'SELECT ON mysql.db')
          ? {
              columns: ['Host', 'Db', 'User', ...DB_PRIVILEGE_COLUMNS.map(([column]) => column)].map(
                (name) => ({
                  name,
                }),
              ),
              rows: this.catalogue.accounts.flatMap((a) =>
                scopedGrants(a)
                  .filter((g) => g.table === '*')
                  .map((g): Cell[] => [
                    a.host ?? '%',
                    g.db,
                    a.user,
                    ...DB_PRIVILEGE_COLUMNS.map(([, p]) =>
                      g.privileges.has(p) || g.privileges.has('ALL') ? 'Y' : 'N',
                    ),
                  ]),
              ),
            }
          : denied('SELECT'),
    },
    {
      pattern: /^SELECT Host, Db, User, Table_name, Table_priv FROM mysql\.tables_priv$/i,
      handle: (_m, session) =>
        this.has(session.user, 'SELECT ON mysql.tables_priv')
          ? {
              columns: ['Host', 'Db', 'User', 'Table_name', 'Table_priv'].map((name) => ({ name })),
              rows: this.catalogue.accounts.flatMap((a) =>
                scopedGrants(a)
                  .filter((g) => g.table !== '*')
                  .map((g): Cell[] => [
                    a.host ?? '%',
                    g.db,
                    a.user,
                    g.table,
                    // The SET's words, as MySQL writes them (`Select,Show view,Grant`).
                    [...g.privileges]
                      .map((p) => (p === 'GRANT OPTION' ? 'Grant' : p[0] + p.slice(1).toLowerCase()))
                      .join(','),
                  ]),
              ),
            }
          : denied('SELECT'),
    },
    {
      pattern: /^SELECT FROM_USER, FROM_HOST, TO_USER, TO_HOST FROM mysql\.role_edges$/i,
      handle: (_m, session) =>
        this.has(session.user, 'SELECT ON mysql.role_edges')
          ? {
              columns: ['FROM_USER', 'FROM_HOST', 'TO_USER', 'TO_HOST'].map((name) => ({ name })),
              rows: this.catalogue.accounts.flatMap((a) =>
                (a.roles ?? []).map((r): Cell[] => {
                  const [user, host = '%'] = r.split('@') as [string, string?];
                  return [user, host, a.user, a.host ?? '%'];
                }),
              ),
            }
          : denied('SELECT'),
    },
  ];

  private answer(channel: PacketChannel, session: SessionState, sql: string): Answer {
    for (const route of this.routes) {
      const m = route.pattern.exec(sql);
      if (m) return route.handle(m, session, channel);
    }
    return {
      error: {
        code: 1064,
        state: '42000',
        message: 'You have an error in your SQL syntax (statement unknown to the test server)',
      },
    };
  }

  /** Why an audit log function call is refused (not installed, privilege missing), if it is. */
  private auditFunction(name: string, session: SessionState): Answer | undefined {
    if (this.catalogue.flavor === 'none')
      return { error: { code: 1305, state: '42000', message: `FUNCTION ${name} does not exist` } };
    if (!this.has(session.user, 'AUDIT_ADMIN')) return denied('AUDIT_ADMIN');
    return undefined;
  }

  /** Whether `account` holds a global privilege, or `PRIV ON db.table` (through `PRIV ON db.*` too). */
  private has(account: TestAccount, privilege: string): boolean {
    const grants = account.grants ?? [];
    if (grants.includes('ALL PRIVILEGES')) return true;
    const [priv, on] = privilege.split(' ON ') as [string, string?];
    if (on === undefined) return grants.includes(priv);
    if (grants.includes(priv)) return true;
    const [db, table] = on.split('.') as [string, string];
    return scopedGrants(account).some(
      (g) =>
        g.db.toLowerCase() === db.toLowerCase() &&
        (g.table === '*' || g.table.toLowerCase() === table.toLowerCase()) &&
        (g.privileges.has(priv.toUpperCase()) || g.privileges.has('ALL')),
    );
  }
}

function denied(what: string): Answer {
  return {
    error: {
      code: 1227,
      state: '42000',
      message: `Access denied; you need (at least one of) the ${what} privilege(s) for this operation`,
    },
  };
}

/** Dynamic privileges are named like AUDIT_ADMIN; static ones are words (SELECT, CREATE USER). */
const DYNAMIC = /^[A-Z0-9]+(?:_[A-Z0-9]+)+$/;

/** mysql.user's static privilege columns in MySQL 8.0 (in its order) and the privilege of each. */
const USER_PRIVILEGE_COLUMNS: [string, string][] = [
  ['Select_priv', 'SELECT'],
  ['Insert_priv', 'INSERT'],
  ['Update_priv', 'UPDATE'],
  ['Delete_priv', 'DELETE'],
  ['Create_priv', 'CREATE'],
  ['Drop_priv', 'DROP'],
  ['Reload_priv', 'RELOAD'],
  ['Shutdown_priv', 'SHUTDOWN'],
  ['Process_priv', 'PROCESS'],
  ['File_priv', 'FILE'],
  ['Grant_priv', 'GRANT OPTION'],
  ['References_priv', 'REFERENCES'],
  ['Index_priv', 'INDEX'],
  ['Alter_priv', 'ALTER'],
  ['Show_db_priv', 'SHOW DATABASES'],
  ['Super_priv', 'SUPER'],
  ['Create_tmp_table_priv', 'CREATE TEMPORARY TABLES'],
  ['Lock_tables_priv', 'LOCK TABLES'],
  ['Execute_priv', 'EXECUTE'],
  ['Repl_slave_priv', 'REPLICATION SLAVE'],
  ['Repl_client_priv', 'REPLICATION CLIENT'],
  ['Create_view_priv', 'CREATE VIEW'],
  ['Show_view_priv', 'SHOW VIEW'],
  ['Create_routine_priv', 'CREATE ROUTINE'],
  ['Alter_routine_priv', 'ALTER ROUTINE'],
  ['Create_user_priv', 'CREATE USER'],
  ['Event_priv', 'EVENT'],
  ['Trigger_priv', 'TRIGGER'],
  ['Create_tablespace_priv', 'CREATE TABLESPACE'],
  ['Create_role_priv', 'CREATE ROLE'],
  ['Drop_role_priv', 'DROP ROLE'],
];

/** mysql.db's privilege columns in MySQL 8.0. */
const DB_PRIVILEGE_COLUMNS: [string, string][] = [
  ['Select_priv', 'SELECT'],
  ['Insert_priv', 'INSERT'],
  ['Update_priv', 'UPDATE'],
  ['Delete_priv', 'DELETE'],
  ['Create_priv', 'CREATE'],
  ['Drop_priv', 'DROP'],
  ['Grant_priv', 'GRANT OPTION'],
  ['References_priv', 'REFERENCES'],
  ['Index_priv', 'INDEX'],
  ['Alter_priv', 'ALTER'],
  ['Create_tmp_table_priv', 'CREATE TEMPORARY TABLES'],
  ['Lock_tables_priv', 'LOCK TABLES'],
  ['Create_view_priv', 'CREATE VIEW'],
  ['Show_view_priv', 'SHOW VIEW'],
  ['Create_routine_priv', 'CREATE ROUTINE'],
  ['Alter_routine_priv', 'ALTER ROUTINE'],
  ['Execute_priv', 'EXECUTE'],
  ['Event_priv', 'EVENT'],
  ['Trigger_priv', 'TRIGGER'],
];

/** An account's mysql.user row: the five columns the doctor reads, the privilege columns, User_attributes. */
function userRow(a: TestAccount): Cell[] {
  const global = new Set(globalPrivileges(a));
  const all = global.has('ALL PRIVILEGES');
  return [
    a.user,
    a.host ?? '%',
    a.plugin ?? 'mysql_native_password',
    a.authenticationString ?? '',
    a.locked ? 'Y' : 'N',
    ...USER_PRIVILEGE_COLUMNS.map(([, p]) =>
      (all && p !== 'GRANT OPTION') || global.has(p) || (p === 'GRANT OPTION' && (a.grants ?? []).includes(p))
        ? 'Y'
        : 'N',
    ),
    // JSON, as MySQL keeps partial revokes; NULL without any.
    a.restrictions
      ? JSON.stringify({
          Restrictions: a.restrictions.map((r) => ({ Database: r.database, Privileges: r.privileges })),
        })
      : null,
  ];
}

/** An account's global privileges (static and dynamic), GRANT OPTION left out (it is a flag). */
function globalPrivileges(a: TestAccount): string[] {
  return (a.grants ?? []).filter((g) => !/ ON /i.test(g) && g !== 'GRANT OPTION');
}

/** An account's database (`table` `*`) and table grants: `SELECT, INSERT ON orders.*`. */
function scopedGrants(a: TestAccount): { db: string; table: string; privileges: Set<string> }[] {
  return (a.grants ?? [])
    .filter((g) => / ON /i.test(g))
    .map((g) => {
      const [privileges, on] = g.split(/ ON /i) as [string, string];
      const [db, table] = on.split('.') as [string, string];
      return {
        db,
        table,
        privileges: new Set(
          privileges.split(',').map((p) =>
            p
              .trim()
              .toUpperCase()
              .replace(/^ALL PRIVILEGES$/, 'ALL'),
          ),
        ),
      };
    });
}

/** A LIKE pattern (`%`, `_`, `\_` for a literal underscore) as a regular expression. */
function likePattern(like: string): RegExp {
  const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const body = like
    .split('\\_')
    .map((part) => literal(part).replace(/%/g, '.*').replace(/_/g, '.'))
    .join('_');
  return new RegExp(`^${body}$`, 'i');
}
