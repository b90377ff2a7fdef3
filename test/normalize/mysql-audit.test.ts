import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DeadLetter } from '../../schemas/dead-letter.js';
import { type DbEvent, DbEventSchema } from '../../schemas/events.js';
import type { DbRef } from '../../shared/decode/classify.js';
import { MysqlEvent, normalizeMysqlAudit, parseAuditTimestamp } from '../../shared/normalize/mysql-audit.js';
import { runs } from '../helpers/property.js';
import { runTimeline } from '../helpers/run-timeline.js';

// biome-ignore lint/suspicious/noExplicitAny: samples are mutated freely to build variants
type Json = any;

const DB = { id: 'ocid1.mysqldbsystem.oc1..prod1', name: 'prod-orders' };
const LOC = { source: 'audit.log', line: 4 };
const ALL: Json[] = JSON.parse(
  readFileSync(new URL('../events/mysql-audit/all-classes.pretty.json', import.meta.url), 'utf8'),
);
const PERCONA: Json[] = JSON.parse(
  readFileSync(new URL('../events/mysql-audit/percona-classes.json', import.meta.url), 'utf8'),
);

/** A fresh copy of the sample event at `index` of all-classes.pretty.json. */
const sample = (index: number): Json => structuredClone(ALL[index]);

/**
 * The event normalized from `raw`, in its plain form (what JSON and other threads carry: the key
 * joined, in its place), which the schema takes unchanged.
 */
function normalize(raw: unknown, db: DbRef = DB): DbEvent {
  const outcome = normalizeMysqlAudit(raw, db, LOC);
  if (!outcome.ok) throw new Error(`unexpected dead letter: ${outcome.dead.message}`);
  if (!(outcome.value instanceof MysqlEvent)) throw new Error('expected a MysqlEvent');
  const plain = outcome.value.toJSON();
  expect(DbEventSchema.parse(plain)).toEqual(plain);
  expect(JSON.stringify(outcome.value)).toBe(JSON.stringify(plain));
  return plain;
}

function reject(raw: unknown): DeadLetter {
  const outcome = normalizeMysqlAudit(raw, DB, LOC);
  if (outcome.ok) throw new Error('expected a dead letter');
  return outcome.dead;
}

const ALICE_LOGIN = { user: 'alice', os: 'alice@example.com', ip: '198.51.100.7', proxy: "''@'%'" };
const PROXY_ACCOUNT = { user: 'dba_proxy', host: '%' };

describe('normalizeMysqlAudit: every class and event', () => {
  it('maps each sample event onto its kind', () => {
    expect(ALL.map((raw) => normalize(raw).kind)).toEqual([
      'server_start',
      'connect',
      'query',
      'table_access',
      'table_access',
      'table_access',
      'table_access',
      'change_user',
      'connect',
      'disconnect',
      'server_stop',
    ]);
  });

  it('audit/startup: server id and version, no login or account', () => {
    expect(normalize(sample(0))).toEqual({
      source: 'mysql',
      kind: 'server_start',
      key: `${DB.id}:2026-11-01 09:59:58:0:0`,
      time: '2026-11-01T09:59:58.000Z',
      ts: Date.UTC(2026, 10, 1, 9, 59, 58),
      dbSystemId: DB.id,
      dbSystemName: DB.name,
      recordId: 0,
      connectionId: 0,
      class: 'audit',
      event: 'startup',
      login: null,
      account: null,
      status: 0,
      server: { serverId: 1, version: '8.4.3-u2-cloud' },
    });
  });

  it('audit/shutdown: server id', () => {
    expect(normalize(sample(10))).toMatchObject({
      kind: 'server_stop',
      server: { serverId: 1 },
      login: null,
    });
  });

  it('connection/connect: login with proxy, account, db, connection type and attributes as strings', () => {
    expect(normalize(sample(1))).toEqual({
      source: 'mysql',
      kind: 'connect',
      key: `${DB.id}:2026-11-01 10:00:00:0:17`,
      time: '2026-11-01T10:00:00.000Z',
      ts: Date.UTC(2026, 10, 1, 10, 0, 0),
      dbSystemId: DB.id,
      dbSystemName: DB.name,
      recordId: 0,
      connectionId: 17,
      class: 'connection',
      event: 'connect',
      login: ALICE_LOGIN,
      account: PROXY_ACCOUNT,
      status: 0,
      db: 'orders',
      connectionType: 'ssl',
      attributes: { _client_name: 'libmysql', _client_version: '8.4.3', _pid: '4242', program_name: 'mysql' },
    });
  });

  it('connection/connect that failed: the errno is the status; an empty db is left out', () => {
    const event = normalize(sample(8));
    expect(event).toMatchObject({ kind: 'connect', status: 1045, connectionType: 'tcp/ip' });
    expect(event).not.toHaveProperty('db');
  });

  it('connection/change_user and connection/disconnect', () => {
    expect(normalize(sample(7))).toMatchObject({
      kind: 'change_user',
      db: 'reports',
      account: { user: 'report_ro' },
    });
    const disconnect = normalize(sample(9));
    expect(disconnect).toMatchObject({ kind: 'disconnect', status: 0, connectionType: 'ssl' });
    expect(disconnect).not.toHaveProperty('attributes');
  });

  it('general/status: sql and query statistics; a routine statement keeps no login or account', () => {
    expect(normalize(sample(2))).toMatchObject({
      kind: 'query',
      status: 0,
      login: null,
      account: null,
      sql: {
        command: 'Query',
        sqlCommand: 'select',
        text: 'SELECT id, total FROM orders WHERE customer_id = 42',
        status: 0,
      },
      stats: { queryTime: 0.000412, rowsSent: 3, rowsExamined: 120, bytesReceived: 51, bytesSent: 210 },
    });
  });

  it('a statement the rules read keeps its login and account', () => {
    const grant = sample(2);
    grant.general_data.sql_command = 'grant';
    grant.general_data.query = 'GRANT SELECT ON shop.* TO app@`%`';
    expect(normalize(grant)).toMatchObject({ login: ALICE_LOGIN, account: PROXY_ACCOUNT });
    // A SELECT can tamper with the audit log; failed, it changes nothing.
    const tamper = sample(2);
    tamper.general_data.query = "SELECT audit_log_filter_remove_user('%')";
    expect(normalize(tamper)).toMatchObject({ login: ALICE_LOGIN, account: PROXY_ACCOUNT });
    tamper.general_data.status = 1142;
    expect(normalize(tamper)).toMatchObject({ login: null, account: null });
  });

  it('a statement held in a user variable: its facts are kept before the value is redacted, never its text', async () => {
    let id = 100;
    const held = (query: string, sqlCommand = 'set_option'): DbEvent => {
      const raw = sample(2);
      raw.id = id++;
      raw.general_data.sql_command = sqlCommand;
      raw.general_data.query = query;
      return normalize(raw);
    };
    const grant = held("SET @q = CONCAT('GRANT ALL ON *.* TO ', '''mallory''@''%'' WITH GRANT OPTION')");
    expect(grant.sql).toEqual({
      command: 'Query',
      sqlCommand: 'set_option',
      text: "SET @q = CONCAT('<redacted>', '<redacted>')",
      status: 0,
      held: { privilege: { verb: 'GRANT', targets: [{ user: 'mallory', host: '%' }], administrative: true } },
    });
    const tamper = held("SET @n = 1, @r = CONCAT('SELECT audit_log_filter_', 'remove_user(''%'')')");
    expect(tamper.sql?.held).toEqual({ auditTamper: { action: 'filter-removed' } });
    expect(JSON.stringify([grant, tamper])).not.toMatch(/OPTION|remove_user|audit_log_filter_/);
    const body = held(
      "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO BEGIN SET @s = CONCAT('SELECT audit_log_filter_', 'remove_filter(''log_all'')'); PREPARE st FROM @s; EXECUTE st; END",
      'create_event',
    );
    expect(body.sql?.held).toEqual({ auditTamper: { action: 'filter-removed' } });
    expect(held("SELECT CONCAT('GRANT ALL ON *.* TO ', @u)", 'select').sql).not.toHaveProperty('held');
    for (const prose of [
      "SET @note = 'Grant us access to the reports'",
      "SET @k = 'user'",
      'SET @c = @c + 1',
    ])
      expect(held(prose).sql).not.toHaveProperty('held');

    const { alerts } = await runTimeline([grant, tamper]);
    const byRule = [...alerts].sort((a, b) => b.rule.localeCompare(a.rule));
    expect(byRule.map((a) => [a.rule, a.severity, a.details])).toMatchObject([
      [
        'privilege.change',
        'high',
        { verb: 'GRANT', targets: ['mallory@%'], sql: 'SET @q = CONCAT(?, ?)', via: 'user variable' },
      ],
      [
        'audit.tamper',
        'critical',
        { action: 'filter-removed', sql: 'SET @n = ?, @r = CONCAT(?, ?)', via: 'user variable' },
      ],
    ]);
  });

  it('general/status without a query keeps command and status only', () => {
    const raw = sample(2);
    delete raw.general_data.query;
    delete raw.query_statistics;
    raw.general_data.status = 1142;
    const event = normalize(raw);
    expect(event.sql).toEqual({ command: 'Query', sqlCommand: 'select', status: 1142 });
    expect(event.status).toBe(1142);
    expect(event).not.toHaveProperty('stats');
  });

  it.each([
    [3, 'read', 'orders'],
    [4, 'insert', 'order_notes'],
    [5, 'update', 'orders'],
    [6, 'delete', 'order_notes'],
  ])(
    'table_access/%s: table and operation, not the statement (its general record has it)',
    (index, op, table) => {
      const raw = sample(index);
      const event = normalize(raw);
      expect(event).toMatchObject({ kind: 'table_access', event: op, table: { db: 'orders', table, op } });
      expect(raw.table_access_data.query).toBeTruthy();
      expect(event).not.toHaveProperty('sql');
    },
  );

  it('names the DB system only when its name is known', () => {
    expect(normalize(sample(1), { id: 'db-only' })).not.toHaveProperty('dbSystemName');
    expect(normalize(sample(1), { id: 'db-only' }).key).toBe('db-only:2026-11-01 10:00:00:0:17');
  });

  it("keys an instance's record by DB system and instance: the logs of a DB system's instances never collide", () => {
    const ev = normalize(sample(1), { id: 'db-1', instance: 'replica-2' });
    expect(ev.key).toBe('db-1/replica-2:2026-11-01 10:00:00:0:17');
    expect(ev.instance).toBe('replica-2');
  });
});

describe('normalizeMysqlAudit: Percona and unknown classes', () => {
  it('accepts an audit record without event, and the query, command and message classes', () => {
    const [audit, command, query, message] = PERCONA.map((raw) => normalize(raw));
    expect(audit).toMatchObject({
      kind: 'other',
      class: 'audit',
      event: '',
      server: { serverId: 7 },
      key: `${DB.id}:2026-11-02 08:15:00:0:-`,
    });
    expect(audit?.connectionId).toBeNull();
    expect(command).toMatchObject({ kind: 'other', class: 'command', sql: { command: 'query', status: 0 } });
    expect(query).toMatchObject({
      kind: 'other',
      class: 'query',
      event: 'query_status_end',
      sql: { sqlCommand: 'create_table', text: 'CREATE TABLE audit_probe (n INT)', status: 0 },
    });
    expect(message).toMatchObject({ kind: 'other', class: 'message', login: { user: 'ops' } });
  });

  it('never fails on the payload of an unknown or Percona class', () => {
    const odd = { timestamp: '2026-11-01 10:00:00', id: 1, event: 'x' };
    expect(normalize({ ...odd, class: 'query', query_data: 'not an object' }).kind).toBe('other');
    expect(normalize({ ...odd, class: 'query', query_data: { query: 7, status: 'bad' } })).toMatchObject({
      kind: 'other',
      status: 0,
    });
    expect(normalize({ ...odd, class: 'command', command_data: { status: '1064' } })).toMatchObject({
      status: 1064,
    });
    expect(normalize({ ...odd, class: 'stored_program', whatever: [1, 2] }).kind).toBe('other');
  });
});

describe('normalizeMysqlAudit: a statement as Percona logs it', () => {
  const PERCONA_STATEMENT: Json[] = JSON.parse(
    readFileSync(new URL('../events/mysql-audit/percona-failed-statement.json', import.meta.url), 'utf8'),
  );

  it('is one query: the command and query steps around general/status are other, with their text', () => {
    const events = PERCONA_STATEMENT.map((raw) => normalize(raw));
    expect(events.map((e) => `${e.class}/${e.event}:${e.kind}`)).toEqual([
      'connection/connect:connect',
      'command/command_start:other',
      'general/log:other',
      'query/query_start:other',
      'query/query_status_end:other',
      'general/status:query',
      'command/command_end:other',
      'connection/disconnect:disconnect',
    ]);
    expect(events[4]).toMatchObject({
      status: 1050,
      sql: { sqlCommand: 'create_table', text: 'CREATE TABLE t1 (c1 INT)', status: 1050 },
    });
    expect(events[5]).toMatchObject({ status: 1050, sql: { text: 'CREATE TABLE t1 (c1 INT)' } });
  });

  it("reads Percona's user[priv_user] @ host [ip] form in account and login", () => {
    // general/log: the statement's text as received (general/status, a routine statement, keeps no login).
    const log = normalize(PERCONA_STATEMENT[2]);
    expect(log.account).toEqual({ user: 'root', host: 'localhost' });
    expect(log.login).toEqual({ user: 'root', os: '', ip: '', proxy: '' });
    const proxied = structuredClone(PERCONA_STATEMENT[2]);
    proxied.account = { user: 'alice[dba_proxy] @  [198.51.100.7]', host: '' };
    proxied.login = { user: 'alice[dba_proxy] @  [198.51.100.7]', os: '', ip: '', proxy: "''@'%'" };
    expect(normalize(proxied)).toMatchObject({
      account: { user: 'dba_proxy', host: '' },
      login: { user: 'alice', ip: '198.51.100.7', proxy: "''@'%'" },
    });
    // A plain name with brackets that is not the whole form stays as it is.
    const plain = structuredClone(PERCONA_STATEMENT[2]);
    plain.account = { user: 'app[1]', host: '%' };
    expect(normalize(plain).account).toEqual({ user: 'app[1]', host: '%' });
  });

  it('counts one failed statement in the session', async () => {
    const { sessions } = await runTimeline(PERCONA_STATEMENT.map((raw) => normalize(raw)));
    expect(sessions).toHaveLength(1);
    expect(sessions[0]?.counts).toEqual({ queries: 1, tableAccess: 0, changeUser: 0, failedStatements: 1 });
  });
});

describe('normalizeMysqlAudit: lenient values', () => {
  it('accepts numbers that arrive as numeric strings', () => {
    const raw = sample(2);
    raw.id = '3';
    raw.connection_id = '17';
    raw.general_data.status = '1064';
    raw.query_statistics = { query_time: '0.5', rows_sent: '2' };
    expect(normalize(raw)).toMatchObject({
      recordId: 3,
      connectionId: 17,
      status: 1064,
      stats: { queryTime: 0.5, rowsSent: 2 },
    });
  });

  it('fills absent or null login and account fields with empty strings', () => {
    const raw = sample(1);
    raw.login = { user: 'alice', os: null };
    raw.account = { user: 'alice' };
    expect(normalize(raw)).toMatchObject({
      login: { user: 'alice', os: '', ip: '', proxy: '' },
      account: { user: 'alice', host: '' },
    });
  });

  it('keeps unknown fields out of the way', () => {
    const raw = { ...sample(1), time: 1793527200, extra: { nested: true } };
    raw.connection_data.new_field = 1;
    expect(normalize(raw).kind).toBe('connect');
  });

  it.each([
    ['2026-11-01 10:00:00', Date.UTC(2026, 10, 1, 10)],
    ['2026-11-01T10:00:00Z', Date.UTC(2026, 10, 1, 10)],
    ['2026-11-01T10:00:00.123456Z', Date.UTC(2026, 10, 1, 10) + 123],
    ['2026-11-01 10:00:00.5', Date.UTC(2026, 10, 1, 10) + 500],
    ['2026-11-01T12:30:00+02:30', Date.UTC(2026, 10, 1, 10)],
    ['2026-11-01T05:00:00-0500', Date.UTC(2026, 10, 1, 10)],
    ['2024-02-29 00:00:00', Date.UTC(2024, 1, 29)],
  ])('parses the timestamp %s', (text, ms) => {
    expect(parseAuditTimestamp(text)).toBe(ms);
  });

  it('renders time as ISO with milliseconds and keeps the timestamp as written in the key', () => {
    const raw = sample(1);
    raw.timestamp = '2026-11-01T10:00:00.250Z';
    expect(normalize(raw)).toMatchObject({
      time: '2026-11-01T10:00:00.250Z',
      key: `${DB.id}:2026-11-01T10:00:00.250Z:0:17`,
    });
  });

  it('joins the key when it is first read, and writes it in JSON where it always was', () => {
    const raw = sample(1);
    const outcome = normalizeMysqlAudit(raw, { ...DB, instance: 'replica-1' }, LOC);
    if (!outcome.ok) throw new Error(outcome.dead.message);
    const event = outcome.value;
    // Not a property of its own until read: most routine statements' keys never are.
    expect(Object.keys(event)).not.toContain('key');
    expect(event.key).toBe(`${DB.id}/replica-1:${raw.timestamp}:${raw.id}:${raw.connection_id}`);
    expect(Object.keys(JSON.parse(JSON.stringify(event))).slice(0, 5)).toEqual([
      'source',
      'kind',
      'key',
      'time',
      'ts',
    ]);
  });

  it('reads a run of timestamps of one day as a full parse of each would, invalid ones included', () => {
    const pad = (n: number) => String(n).padStart(2, '0');
    const field = fc.oneof(fc.integer({ min: 0, max: 99 }).map(pad), fc.constantFrom('1a', ' 1', '-1', '٣4'));
    const clock = fc.tuple(field, field, field, fc.constantFrom('', '.5', 'Z', ':00'));
    const day = fc.constantFrom('2026-11-01', '2026-11-02', '2024-02-29', '2026-02-30');
    fc.assert(
      fc.property(fc.array(fc.tuple(day, clock), { minLength: 1, maxLength: 30 }), (times) => {
        for (const [date, [h, m, s, tail]] of times) {
          const timestamp = `${date} ${h}:${m}:${s}${tail}`;
          const ts = parseAuditTimestamp(timestamp);
          const outcome = normalizeMysqlAudit({ ...sample(1), timestamp }, DB, LOC);
          if (ts === undefined) expect(outcome.ok).toBe(false);
          else
            expect(outcome.ok && [outcome.value.ts, outcome.value.time]).toEqual([
              ts,
              new Date(ts).toISOString(),
            ]);
        }
      }),
      runs(200),
    );
  });

  it.each([
    '2026-02-30 10:00:00',
    '2026-11-01 24:00:00',
    '2026-13-01 10:00:00',
    '2026-11-01',
    'yesterday',
    '2026-11-01 10:00',
  ])('dead-letters the timestamp %s as SCHEMA_INVALID', (timestamp) => {
    expect(reject({ ...sample(1), timestamp })).toEqual({
      code: 'SCHEMA_INVALID',
      source: 'audit.log',
      line: 4,
      path: ['timestamp'],
      message: 'MySQL audit record: timestamp: expected YYYY-MM-DD hh:mm:ss (UTC)',
    });
  });
});

describe('normalizeMysqlAudit: schema failures', () => {
  const without = (index: number, key: string) => {
    const raw = sample(index);
    delete raw[key];
    return raw;
  };

  it.each([
    ['a missing class', without(1, 'class'), ['class']],
    ['a missing timestamp', without(1, 'timestamp'), ['timestamp']],
    ['a missing id', without(1, 'id'), ['id']],
    ['a connect without connection_data', without(1, 'connection_data'), ['connection_data']],
    ['a change_user without connection_data', without(7, 'connection_data'), ['connection_data']],
    ['a general/status without general_data', without(2, 'general_data'), ['general_data']],
    ['a table read without table_access_data', without(3, 'table_access_data'), ['table_access_data']],
    ['a startup without startup_data', without(0, 'startup_data'), ['startup_data']],
    ['an account that is not an object', { ...sample(1), account: 'SECRET-VALUE' }, ['account']],
    [
      'a status that is not a number',
      { ...sample(1), connection_data: { status: 'SECRET-VALUE' } },
      ['connection_data', 'status'],
    ],
    ['a fractional id', { ...sample(1), id: 1.5 }, ['id']],
  ])('dead-letters %s with the issue path', (_name, raw, path) => {
    const dead = reject(raw);
    expect(dead).toMatchObject({ code: 'SCHEMA_INVALID', source: 'audit.log', line: 4, path });
    expect(dead.message).toMatch(/^MySQL audit record: /);
    expect(dead.message).not.toContain('SECRET-VALUE');
  });

  it('dead-letters a value that is not an object', () => {
    expect(reject('SECRET-VALUE')).toMatchObject({ code: 'SCHEMA_INVALID', path: [] });
    expect(reject(null).message).not.toContain('SECRET');
  });
});

describe('normalizeMysqlAudit: secrets', () => {
  const failedGrant = JSON.parse(
    readFileSync(new URL('../events/mysql-audit/failed-grant-1064.log', import.meta.url), 'utf8')
      .trim()
      .replace(/,$/, ''),
  );

  it('redacts the password of a statement MySQL logged verbatim (status 1064)', () => {
    const event = normalize(failedGrant);
    expect(event).toMatchObject({ kind: 'query', status: 1064, sql: { status: 1064 } });
    expect(event.sql?.text).toBe("GRANT ALL ON *.* TO 'u'@'%' IDENTIFIED BY '<redacted>'");
    expect(JSON.stringify(event)).not.toContain('pw123');
  });

  it('redacts table_access queries too', () => {
    const raw = sample(3);
    raw.table_access_data.query = "CREATE USER 'x'@'%' IDENTIFIED BY 's3cret'";
    expect(JSON.stringify(normalize(raw))).not.toContain('s3cret');
  });

  it('keeps authentication_oci mappings verbatim for the correlator', () => {
    const raw = sample(2);
    const mapping = `{"tenancy":"ocid1.tenancy.oc1..example","group_mapping":{"ocid1.group.oc1..dba":"dba_proxy"}}`;
    raw.general_data.query = `CREATE USER ''@'%' IDENTIFIED WITH 'authentication_oci' AS '${mapping}'`;
    expect(normalize(raw).sql?.text).toBe(raw.general_data.query);
  });
});
