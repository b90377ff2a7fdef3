// A MySQL-protocol server that stands in for one HeatWave DB system instance in tests: real TCP,
// real TLS, real mysql_native_password, and the audit log read functions with the semantics the
// MySQL manual documents (audit-log.ts). It answers the statements the collector, `doctor` and
// `sync` send (and only those: anything else is ER_PARSE_ERROR, so a new statement in the product
// fails a test until this server learns it), from a catalogue that a test sets: version, server
// UUID, audit log plugin or component and its variables, filters, accounts, grants.
// README.md in this folder shows how tests use it.
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import { AuditLog, type ReadSequence } from './audit-log.js';
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
  /** Global privileges (`AUDIT_ADMIN`, `SELECT`, `ALL PRIVILEGES`, ...) and table grants (`SELECT ON mysql.user`). */
  grants?: string[];
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
};

export type TestServerOptions = Partial<ServerCatalogue> & {
  audit?: AuditLog;
  /** PEM key and certificate: the server offers TLS. */
  tls?: { key: string; cert: string };
  /** Replaces mysql_native_password (tests of client authentication plugins). */
  authenticate?: Authenticator;
};

type SessionState = {
  id: number;
  user: TestAccount;
  tls: boolean;
  sequence?: ReadSequence | undefined;
  readBufferSize: number;
  warnings: { level: string; code: number; message: string }[];
};

const PREFIX: Record<AuditFlavor, string> = { plugin: 'audit_log_', component: 'audit_log.', none: '' };

export const DEFAULT_AUDIT_VARIABLES: Record<string, string> = {
  format: 'JSON',
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

export class HeatWaveTestServer {
  readonly catalogue: ServerCatalogue;
  audit: AuditLog;
  /** Every statement received, in order (for assertions about what the client sent). */
  readonly statements: string[] = [];
  /** Number of connections accepted (authenticated or not). */
  connections = 0;
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
    };
    this.audit = opts.audit ?? new AuditLog();
    this.tls = opts.tls ? createSecureContext({ key: opts.tls.key, cert: opts.tls.cert }) : undefined;
    this.authenticate =
      opts.authenticate ??
      (async (hello, exchange) => {
        const account = this.account(hello.user);
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
      const user = this.account(hello.user) ?? { user: hello.user };
      const session: SessionState = {
        id,
        user,
        tls: hello.tls,
        readBufferSize: Number(this.catalogue.auditVariables.read_buffer_size ?? 32768),
        warnings: [],
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
    if (/^SHOW WARNINGS$/i.test(sql)) {
      channel.resultSet(
        [{ name: 'Level' }, { name: 'Code', type: COLUMN_TYPE.LONGLONG }, { name: 'Message' }],
        session.warnings.map((w) => [w.level, w.code, w.message]),
      );
      return;
    }
    session.warnings = [];
    const answer = this.answer(channel, session, sql);
    if (answer === undefined) return;
    if ('error' in answer) channel.error(answer.error.code, answer.error.state, answer.error.message);
    else if ('ok' in answer) channel.ok();
    else channel.resultSet(answer.columns, answer.rows, session.warnings.length);
  }

  private answer(
    channel: PacketChannel,
    session: SessionState,
    sql: string,
  ):
    | { columns: Column[]; rows: Cell[][] }
    | { ok: true }
    | { error: { code: number; state: string; message: string } }
    | undefined {
    const { catalogue } = this;
    const prefix = PREFIX[catalogue.flavor];
    const denied = (what: string) => ({
      error: {
        code: 1227,
        state: '42000',
        message: `Access denied; you need (at least one of) the ${what} privilege(s) for this operation`,
      },
    });
    const auditAdmin = () => this.has(session.user, 'AUDIT_ADMIN');
    let m: RegExpExecArray | null;

    if ((m = /^SELECT (@@[\w.]+)(?: AS (\w+))?((?:, @@[\w.]+(?: AS \w+)?)*)$/i.exec(sql))) {
      const items = sql
        .slice('SELECT '.length)
        .split(', ')
        .map((part) => /^(@@[\w.]+)(?: AS (\w+))?$/i.exec(part)!);
      const values: Record<string, Cell> = {
        '@@version': catalogue.version,
        '@@server_uuid': catalogue.serverUuid,
        '@@hostname': 'hw-instance',
        '@@version_comment': 'MySQL Enterprise - Cloud',
      };
      return {
        columns: items.map((i) => ({ name: i[2] ?? i[1]! })),
        rows: [items.map((i) => values[i[1]!.toLowerCase()] ?? null)],
      };
    }
    if ((m = /^SHOW (?:GLOBAL |SESSION )?VARIABLES LIKE '([^']*)'$/i.exec(sql))) {
      const like = new RegExp(
        `^${m[1]!
          .replace(/\\_/g, '\u0001')
          .replace(/[.*+?^${}()|[\]]/g, '\\$&')
          .replace(/%/g, '.*')
          .replace(/_/g, '.')
          .replace(/\u0001/g, '_')}$`,
        'i',
      );
      const rows: Cell[][] =
        catalogue.flavor === 'none'
          ? []
          : Object.entries(catalogue.auditVariables)
              .map(([k, v]): Cell[] => [
                `${prefix}${k}`,
                k === 'read_buffer_size' ? String(session.readBufferSize) : v,
              ])
              .filter((r) => like.test(String(r[0])));
      return { columns: [{ name: 'Variable_name' }, { name: 'Value' }], rows };
    }
    if ((m = /^SET (?:SESSION |@@SESSION\.)?`?([\w.]+)`? = (\d+)$/i.exec(sql))) {
      if (catalogue.flavor !== 'none' && m[1]!.toLowerCase() === `${prefix}read_buffer_size`) {
        session.readBufferSize = Number(m[2]);
        return { ok: true };
      }
      return { error: { code: 1193, state: 'HY000', message: `Unknown system variable '${m[1]}'` } };
    }
    if (/^SHOW SESSION STATUS LIKE 'Ssl_version'$/i.test(sql)) {
      return {
        columns: [{ name: 'Variable_name' }, { name: 'Value' }],
        rows: [['Ssl_version', session.tls ? 'TLSv1.3' : '']],
      };
    }
    if (/^SELECT audit_log_read_bookmark\(\)(?: AS \w+)?$/i.test(sql)) {
      if (catalogue.flavor === 'none') return missingFunction('audit_log_read_bookmark');
      if (!auditAdmin()) return denied('AUDIT_ADMIN');
      return { columns: [{ name: 'bookmark' }], rows: [[this.audit.bookmark()]] };
    }
    if ((m = new RegExp(`^SELECT audit_log_read\\((${STRING})?\\)(?: AS \\w+)?$`, 'is').exec(sql))) {
      if (catalogue.flavor === 'none') return missingFunction('audit_log_read');
      if (!auditAdmin()) return denied('AUDIT_ADMIN');
      if (this.faults.dropOnRead !== undefined && ++this.reads >= this.faults.dropOnRead) {
        delete this.faults.dropOnRead;
        channel.close(true);
        return undefined;
      }
      if (catalogue.auditVariables.format !== 'JSON')
        return {
          error: {
            code: 3200,
            state: 'HY000',
            message: 'audit_log_read UDF failed; Not supported for non-JSON log format.',
          },
        };
      const result = this.audit.read(
        session,
        m[1] === undefined ? undefined : unquote(m[1]),
        session.readBufferSize,
      );
      if (!result.ok) return { error: { code: result.code, state: 'HY000', message: result.message } };
      session.warnings = result.warnings.map((w) => ({ level: 'Warning', ...w }));
      return { columns: [{ name: 'events' }], rows: [[result.value]] };
    }
    if (
      /^SELECT PLUGIN_NAME, PLUGIN_STATUS FROM information_schema\.PLUGINS WHERE PLUGIN_NAME IN \(.*\)$/i.test(
        sql,
      )
    ) {
      const rows: Cell[][] = catalogue.plugins.map((p) => [p.name, p.status]);
      if (catalogue.flavor === 'plugin') rows.unshift(['audit_log', 'ACTIVE']);
      return { columns: [{ name: 'PLUGIN_NAME' }, { name: 'PLUGIN_STATUS' }], rows };
    }
    if (/^SELECT component_urn FROM mysql\.component$/i.test(sql)) {
      if (!this.has(session.user, 'SELECT ON mysql.component')) return denied('SELECT');
      return {
        columns: [{ name: 'component_urn' }],
        rows: catalogue.flavor === 'component' ? [['file://component_audit_log']] : [],
      };
    }
    if ((m = /^SELECT NAME, FILTER FROM `?(\w+)`?\.audit_log_filter$/i.exec(sql))) {
      if (!this.has(session.user, `SELECT ON ${m[1]}.audit_log_filter`)) return denied('SELECT');
      return {
        columns: [{ name: 'NAME' }, { name: 'FILTER' }],
        rows: catalogue.filters.map((f) => [f.name, JSON.stringify(f.filter)]),
      };
    }
    if ((m = /^SELECT USER, HOST, FILTERNAME FROM `?(\w+)`?\.audit_log_user$/i.exec(sql))) {
      if (!this.has(session.user, `SELECT ON ${m[1]}.audit_log_user`)) return denied('SELECT');
      return {
        columns: [{ name: 'USER' }, { name: 'HOST' }, { name: 'FILTERNAME' }],
        rows: catalogue.filterUsers.map((f) => [f.user, f.host, f.filter]),
      };
    }
    if (/^SELECT User, Host, plugin, authentication_string, account_locked FROM mysql\.user$/i.test(sql)) {
      if (!this.has(session.user, 'SELECT ON mysql.user')) return denied('SELECT');
      return {
        columns: ['User', 'Host', 'plugin', 'authentication_string', 'account_locked'].map((name) => ({
          name,
        })),
        rows: catalogue.accounts.map((a) => [
          a.user,
          a.host ?? '%',
          a.plugin ?? 'mysql_native_password',
          a.authenticationString ?? '',
          a.locked ? 'Y' : 'N',
        ]),
      };
    }
    if (/^SHOW GRANTS$/i.test(sql)) {
      const u = session.user;
      const globals = (u.grants ?? []).filter((g) => !/ ON /i.test(g));
      const tables = (u.grants ?? []).filter((g) => / ON /i.test(g));
      const rows: Cell[][] = [[`GRANT USAGE ON *.* TO \`${u.user}\`@\`${u.host ?? '%'}\``]];
      if (globals.length > 0)
        rows.push([`GRANT ${globals.join(',')} ON *.* TO \`${u.user}\`@\`${u.host ?? '%'}\``]);
      for (const t of tables) {
        const [priv, on] = t.split(/ ON /i) as [string, string];
        const [db, table] = on.split('.') as [string, string];
        rows.push([`GRANT ${priv} ON \`${db}\`.\`${table}\` TO \`${u.user}\`@\`${u.host ?? '%'}\``]);
      }
      return { columns: [{ name: `Grants for ${u.user}@${u.host ?? '%'}` }], rows };
    }
    return {
      error: {
        code: 1064,
        state: '42000',
        message: 'You have an error in your SQL syntax (statement unknown to the test server)',
      },
    };
  }

  /** Whether `account` holds a global privilege or `PRIV ON db.table`. */
  private has(account: TestAccount, privilege: string): boolean {
    const grants = account.grants ?? [];
    if (grants.includes('ALL PRIVILEGES')) return true;
    const [priv] = privilege.split(' ON ');
    return grants.some(
      (g) => g.toLowerCase() === privilege.toLowerCase() || (priv !== privilege && g === priv),
    );
  }
}

function missingFunction(name: string) {
  return { error: { code: 1305, state: '42000', message: `FUNCTION ${name} does not exist` } };
}
