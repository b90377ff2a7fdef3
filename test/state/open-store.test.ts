// The store factory: mysql:// URLs open the MySQL store with the password from the environment,
// anything else a SQLite file; a bad spec fails with CONFIG_INVALID and no message shows a password.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditError } from '../../shared/errors.js';
import { MySqlStore } from '../../shared/state/mysql-store.js';
import { displayStoreSpec, openStore, parseStoreSpec } from '../../shared/state/open-store.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { describeMySql } from '../helpers/mysql-server.js';
import { REPO_ROOT } from '../helpers/requirements.js';
import { batch, seenAt } from './store-fixtures.js';

const SECRET = 'hunter2-s3cr3t';

function failure(fn: () => unknown): AuditError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AuditError);
    return e as AuditError;
  }
  throw new Error('expected a failure');
}

async function rejection(p: Promise<unknown>): Promise<AuditError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(AuditError);
  return e as AuditError;
}

function leaks(e: AuditError, secret: string): boolean {
  const seen = [e.message, JSON.stringify(e.details), String(e.stack)];
  let cause: unknown = e.cause;
  while (cause instanceof Error) {
    seen.push(cause.message, JSON.stringify(cause));
    cause = cause.cause;
  }
  return seen.some((t) => t.includes(secret));
}

describe('parseStoreSpec', () => {
  it('reads a path as a SQLite file', () => {
    expect(parseStoreSpec('/tmp/state.sqlite', {})).toEqual({
      kind: 'sqlite',
      path: '/tmp/state.sqlite',
      warnings: [],
    });
    expect(parseStoreSpec(' :memory: ', {})).toEqual({ kind: 'sqlite', path: ':memory:', warnings: [] });
    expect(parseStoreSpec('relative/dir/audit.db', {})).toMatchObject({
      kind: 'sqlite',
      path: 'relative/dir/audit.db',
    });
  });

  it('reads a mysql:// URL, with the password from HWAUDIT_STATE_PASSWORD', () => {
    expect(
      parseStoreSpec('mysql://audit@heatwave.example:3307/hwaudit', { HWAUDIT_STATE_PASSWORD: SECRET }),
    ).toEqual({
      kind: 'mysql',
      connection: {
        host: 'heatwave.example',
        port: 3307,
        user: 'audit',
        database: 'hwaudit',
        password: SECRET,
        sslMode: 'required',
      },
      warnings: [],
    });
    expect(parseStoreSpec('MySQL://a%40b@10.0.0.3/audit%2Dstate', {})).toEqual({
      kind: 'mysql',
      connection: { host: '10.0.0.3', port: 3306, user: 'a@b', database: 'audit-state', sslMode: 'required' },
      warnings: [],
    });
    expect(parseStoreSpec('mysql://audit@[fd00::5]:3306/db', { HWAUDIT_STATE_PASSWORD: '' })).toMatchObject({
      connection: { host: 'fd00::5', port: 3306 },
    });
  });

  it('reads TLS and pool parameters', () => {
    expect(parseStoreSpec('mysql://u@h/db?ssl-mode=disabled', {})).toMatchObject({
      connection: { sslMode: 'disabled' },
    });
    expect(parseStoreSpec('mysql://u@h/db?ssl-mode=REQUIRED&connection-limit=8', {})).toMatchObject({
      connection: { sslMode: 'required', connectionLimit: 8 },
    });
    expect(parseStoreSpec('mysql://u@h/db?ssl-mode=verify_identity', {})).toMatchObject({
      connection: { sslMode: 'verify-identity' },
    });
    const dir = mkdtempSync(join(tmpdir(), 'hwaudit-ca-'));
    try {
      const ca = join(dir, 'ca.pem');
      writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
      expect(parseStoreSpec(`mysql://u@h/db?ssl-ca=${encodeURIComponent(ca)}`, {})).toMatchObject({
        connection: { sslMode: 'verify-identity', sslCa: expect.stringContaining('BEGIN CERTIFICATE') },
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('accepts a password in the URL but returns a warning about it', () => {
    const spec = parseStoreSpec(`mysql://audit:${encodeURIComponent(`${SECRET}:@/`)}@h:3306/db`, {});
    expect(spec).toMatchObject({ kind: 'mysql', connection: { password: `${SECRET}:@/` } });
    expect(spec.warnings).toHaveLength(1);
    expect(spec.warnings[0]).toMatch(/password.*visible in process lists.*HWAUDIT_STATE_PASSWORD/);
    expect(spec.warnings[0]).not.toContain(SECRET);

    const both = parseStoreSpec(`mysql://audit:${SECRET}@h/db`, { HWAUDIT_STATE_PASSWORD: 'from-env' });
    expect(both).toMatchObject({ connection: { password: 'from-env' } });
    expect(both.warnings[0]).toMatch(/ignored because HWAUDIT_STATE_PASSWORD is set/);
  });

  it.each([
    ['no user', `mysql://:${SECRET}@h/db`, /names no user/],
    ['no database', `mysql://u:${SECRET}@h`, /exactly one database/],
    ['two path segments', `mysql://u:${SECRET}@h/db/extra`, /exactly one database/],
    ['an unknown parameter', `mysql://u:${SECRET}@h/db?sslmode=on`, /unknown URL parameter/],
    ['a bad ssl-mode', `mysql://u:${SECRET}@h/db?ssl-mode=preferred`, /ssl-mode must be one of/],
    ['a bad connection limit', `mysql://u:${SECRET}@h/db?connection-limit=0`, /connection-limit/],
    [
      'a missing ssl-ca file',
      `mysql://u:${SECRET}@h/db?ssl-ca=/nonexistent/ca.pem`,
      /cannot read the ssl-ca file/,
    ],
    ['a port out of range', `mysql://u:${SECRET}@h:70000/db`, /not a valid mysql:\/\/ URL/],
    ['a fragment', `mysql://u:${SECRET}@h/db#x`, /fragment/],
    ['the X Protocol', `mysqlx://u:${SECRET}@h:33060/db`, /X Protocol/],
    ['another scheme', `postgres://u:${SECRET}@h/db`, /unsupported URL scheme "postgres"/],
    ['a misspelt scheme', `mysq://u:${SECRET}@h/db`, /unsupported URL scheme "mysq"/],
    ['one slash', `mysql:/u:${SECRET}@h/db`, /mistyped URL/],
    ['no colon', `mysql//u:${SECRET}@h/db`, /mistyped URL/],
    ['no slashes', `mysql:u:${SECRET}@h:3306`, /mistyped URL/],
    ['credentials without a scheme', `u:${SECRET}@h:3306/db`, /mistyped URL/],
    ['an empty path', '   ', /empty state store path/],
  ])('rejects %s with CONFIG_INVALID and no password in the error', (_, spec, message) => {
    const e = failure(() => parseStoreSpec(spec, {}));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toMatch(message);
    expect(leaks(e, SECRET)).toBe(false);
  });
});

describe('displayStoreSpec', () => {
  it('shows a path as it is and a mysql:// URL without its password', () => {
    expect(displayStoreSpec(' /var/lib/hwaudit/state.sqlite ')).toBe('/var/lib/hwaudit/state.sqlite');
    expect(displayStoreSpec('mysql://hwaudit:pw-123@db.example:3306/audit?ssl-mode=required')).toBe(
      'mysql://hwaudit@db.example:3306/audit?ssl-mode=required',
    );
    expect(displayStoreSpec('MYSQL://hwaudit@db.example/audit')).toBe('mysql://hwaudit@db.example/audit');
  });
});

describe('openStore', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hwaudit-open-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('opens a SQLite store for a path, in the scope asked for', async () => {
    const path = join(dir, 'state.sqlite');
    const a = await openStore(path, { scope: 'a', env: {} });
    const b = await openStore(path, { scope: 'b', env: {} });
    try {
      expect(a).toBeInstanceOf(SqliteStore);
      await a.commit(batch({ seen: [{ key: 'k1', ts: 1 }] }));
      expect(await a.filterSeen(seenAt(['k1'], 1))).toEqual(new Set(['k1']));
      expect(await b.filterSeen(seenAt(['k1'], 1))).toEqual(new Set());
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('hands warnings to onWarning and fails on a bad spec before opening anything', async () => {
    const warnings: string[] = [];
    const e = await rejection(
      openStore(`mysql://u:${SECRET}@127.0.0.1:1/db?bogus=1`, {
        env: {},
        onWarning: (w) => warnings.push(w),
      }),
    );
    expect(e.code).toBe('CONFIG_INVALID');
    expect(warnings).toEqual([]);
    expect(leaks(e, SECRET)).toBe(false);
  });

  it('fails with STORE_FAILED, without the password, when the server cannot be reached', async () => {
    const warnings: string[] = [];
    const e = await rejection(
      openStore(`mysql://u:${SECRET}@127.0.0.1:1/db`, { env: {}, onWarning: (w) => warnings.push(w) }),
    );
    expect(e.code).toBe('STORE_FAILED');
    expect(e.details).toMatchObject({ host: '127.0.0.1', port: 1, database: 'db', code: 'ECONNREFUSED' });
    expect(leaks(e, SECRET)).toBe(false);
    expect(warnings).toHaveLength(1);
  });
});

describeMySql('openStore on a MySQL server', (server) => {
  const password = server.connection.password ?? '';

  it('opens a MySqlStore with the password from the environment', async () => {
    const db = await server.createDatabase();
    const warnings: string[] = [];
    const store = await openStore(db.url, {
      scope: 'fn-1',
      env: { HWAUDIT_STATE_PASSWORD: password },
      onWarning: (w) => warnings.push(w),
    });
    try {
      expect(store).toBeInstanceOf(MySqlStore);
      expect(warnings).toEqual([]);
      await store.commit(batch({ seen: [{ key: 'k1', ts: 1 }] }));
      expect(await store.filterSeen(seenAt(['k1'], 1))).toEqual(new Set(['k1']));
    } finally {
      await store.close();
    }
  });

  it('opens with a password in the URL, with a warning', async () => {
    const db = await server.createDatabase();
    const url = new URL(db.url);
    url.password = encodeURIComponent(password);
    const warnings: string[] = [];
    const store = await openStore(url.href, { env: {}, onWarning: (w) => warnings.push(w) });
    await store.close();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).not.toContain(password);
  });

  it('opens a new store as a user with exactly the grant docs/mysql-store.md gives', async () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs/mysql-store.md'), 'utf8');
    const privileges = /^GRANT (.+) ON hwaudit\.\* TO 'hwaudit'@'%';$/m.exec(doc)?.[1];
    expect(privileges).toBeDefined();
    const db = await server.createDatabase();
    const user = await db.user(privileges ?? '');
    const store = await openStore(user.url, { env: { HWAUDIT_STATE_PASSWORD: user.password } });
    try {
      await store.commit(batch({ seen: [{ key: 'k1', ts: 1 }] }));
      await (await store.lockScope({ timeoutMs: 0 })).release();
    } finally {
      await store.close();
    }
  });

  it('requires TLS unless the URL says ssl-mode=disabled', async () => {
    const db = await server.createDatabase();
    const env = { HWAUDIT_STATE_PASSWORD: password };
    const url = new URL(db.url);
    const tls = url.searchParams.get('ssl-mode') !== 'disabled';
    url.searchParams.delete('ssl-mode');
    const opened = openStore(url.href, { env });
    if (tls) await (await opened).close();
    // The test server without a certificate: refused rather than spoken to in plaintext.
    else expect((await rejection(opened)).details).toMatchObject({ code: 'HANDSHAKE_NO_SSL_SUPPORT' });
    url.searchParams.set('ssl-mode', 'disabled');
    await (await openStore(url.href, { env })).close();
  });

  it('fails with STORE_FAILED on a wrong password and never shows it', async () => {
    const db = await server.createDatabase();
    const e = await rejection(openStore(db.url, { env: { HWAUDIT_STATE_PASSWORD: SECRET } }));
    expect(e.code).toBe('STORE_FAILED');
    expect(e.details).toMatchObject({ code: 'ER_ACCESS_DENIED_ERROR', errno: 1045, database: db.name });
    expect(leaks(e, SECRET)).toBe(false);
  });
});
