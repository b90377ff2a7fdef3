// The MySQL-protocol server the MySQL adapter tests run against: TEST_MYSQL_URL names it (user,
// host, port, database), HWAUDIT_STATE_PASSWORD holds the password; .ci/run starts a MariaDB and
// sets both. Without it the tests are skipped (failed under CI=true): see requirements.ts. Each test gets a database of its own (<database>_<pid>_<n>), dropped afterwards, so
// test files running in parallel never see each other's rows.
import { randomBytes } from 'node:crypto';
import mysql, { type Connection } from 'mysql2/promise';
import { afterAll } from 'vitest';
import type { MySqlConnectionOptions } from '../../shared/state/mysql-store.js';
import { parseStoreSpec } from '../../shared/state/open-store.js';
import { describeRequiring } from './describe-requiring.js';
import { MYSQL_SERVER } from './requirements.js';

export type TestDatabase = {
  name: string;
  connection: MySqlConnectionOptions;
  /** `mysql://user@host:port/name`, without the password. */
  url: string;
  /** A plain connection to the database, for provoking locks and checking tables. */
  raw(): Promise<Connection>;
  /** A new user holding only `privileges` on this database (dropped when the test file ends). */
  user(privileges: string): Promise<TestUser>;
};

export type TestUser = {
  name: string;
  password: string;
  /** The database's URL with this user, without the password. */
  url: string;
};

export class MySqlTestServer {
  private counter = 0;
  private readonly created: string[] = [];
  private readonly users: string[] = [];

  constructor(
    readonly connection: MySqlConnectionOptions,
    private readonly baseUrl: URL,
  ) {}

  private admin(database?: string): Promise<Connection> {
    const c = this.connection;
    return mysql.createConnection({
      host: c.host,
      port: c.port,
      user: c.user,
      ...(c.password !== undefined ? { password: c.password } : {}),
      ...(database ? { database } : {}),
      charset: 'utf8mb4',
    });
  }

  /** A new empty database (utf8mb4), dropped when the test file ends. */
  async createDatabase(): Promise<TestDatabase> {
    const name = `${this.connection.database}_${process.pid}_${++this.counter}`.slice(0, 64);
    const conn = await this.admin();
    try {
      await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await conn.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
    } finally {
      await conn.end();
    }
    this.created.push(name);
    const u = new URL(this.baseUrl.href);
    u.password = '';
    u.pathname = `/${name}`;
    return {
      name,
      connection: { ...this.connection, database: name },
      url: u.href,
      raw: () => this.admin(name),
      user: (privileges) => this.createUser(name, u, privileges),
    };
  }

  private async createUser(database: string, url: URL, privileges: string): Promise<TestUser> {
    const user = {
      name: `hwaudit_u${process.pid}_${this.users.length + 1}`,
      password: randomBytes(12).toString('hex'),
    };
    const conn = await this.admin();
    try {
      await conn.query(`CREATE USER '${user.name}'@'%' IDENTIFIED BY '${user.password}'`);
      this.users.push(user.name);
      // In a GRANT, `_` in a database name is a wildcard: escaped, the grant is for this database only.
      await conn.query(
        `GRANT ${privileges} ON \`${database.replaceAll('_', '\\_')}\`.* TO '${user.name}'@'%'`,
      );
    } finally {
      await conn.end();
    }
    const withUser = new URL(url.href);
    withUser.username = user.name;
    return { ...user, url: withUser.href };
  }

  async dropAll(): Promise<void> {
    if (this.created.length === 0) return;
    const conn = await this.admin();
    try {
      for (const name of this.users.splice(0)) await conn.query(`DROP USER IF EXISTS '${name}'@'%'`);
      for (const name of this.created.splice(0)) await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
    } finally {
      await conn.end();
    }
  }
}

/** The configured server; a placeholder nothing connects to when the suite is skipped. */
function mysqlTestServer(): MySqlTestServer {
  const url = process.env.TEST_MYSQL_URL?.trim() || 'mysql://skipped@127.0.0.1:1/hwaudit_test';
  const spec = parseStoreSpec(url, process.env);
  if (spec.kind !== 'mysql') throw new Error('TEST_MYSQL_URL must be a mysql:// URL');
  return new MySqlTestServer(spec.connection, new URL(url));
}

/** Registers `body` against the configured server (skipped without one, failing under CI=true). */
export function describeMySql(name: string, body: (server: MySqlTestServer) => void): void {
  const server = mysqlTestServer();
  describeRequiring(MYSQL_SERVER, name, () => {
    afterAll(() => server.dropAll());
    body(server);
  });
}
