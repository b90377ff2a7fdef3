// The peer the bench compares with: DuckDB (@duckdb/node-api) reading the same input files and
// answering the batch version of our question in SQL: each proxied connect joined, as of its time,
// to the group membership of the person it names; sessions and failed logins per person; bursts of
// failed logins per login name and DB system, and per source IP, within auth.failure-burst's window.
// It reads the audit files as lines of JSON (their `[`, trailing commas and collector envelopes
// included), as we do.
import type { DuckDBInstance as DuckDBInstanceType } from '@duckdb/node-api';
import type { Config } from '../schemas/config.js';
import type { ActiveRule } from '../shared/config/active-rules.js';

export type PeerResult = {
  connects: number;
  people: number;
  bursts: number;
  memberships: number;
};

const sqlList = (paths: string[]) => `[${paths.map((p) => `'${p.replaceAll("'", "''")}'`).join(', ')}]`;

/** An in-memory DuckDB with `threads` threads, ready to answer the question once (`run`, the part to time). */
export async function duckdbPeer(
  inputs: string[],
  config: Config,
  rules: readonly ActiveRule[],
  threads: number,
): Promise<{ run: () => Promise<PeerResult>; close: () => void }> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const instance = await DuckDBInstance.create(':memory:', { threads: String(threads) });
  const c = await instance.connect();
  const close = () => {
    c.closeSync();
    instance.closeSync();
  };
  return { run: () => answer(c, inputs, config, rules), close };
}

type Connection = Awaited<ReturnType<Awaited<ReturnType<typeof DuckDBInstanceType.create>>['connect']>>;

async function answer(
  c: Connection,
  inputs: string[],
  config: Config,
  rules: readonly ActiveRule[],
): Promise<PeerResult> {
  const mysql = inputs.filter((p) => !p.includes('/iam/'));
  const iam = inputs.filter((p) => p.includes('/iam/'));
  const burst = rules.find((r) => r.rule.id === 'auth.failure-burst')?.params as
    | { threshold: number; window: number }
    | undefined;
  const threshold = burst?.threshold ?? 5;
  const window = `${Math.round((burst?.window ?? 600_000) / 1000)} SECOND`;
  const users = config.directory.users.flatMap((u) =>
    [u.name, ...u.aliases].map((n) => [u.id, n.toLowerCase()]),
  );
  await c.run(`CREATE TABLE names (user_id VARCHAR, name VARCHAR)`);
  if (users.length > 0)
    await c.run(
      `INSERT INTO names VALUES ${users.map(([id, n]) => `('${id}', '${String(n).replaceAll("'", "''")}')`).join(', ')}`,
    );
  await c.run(`
    CREATE TABLE ev AS
    WITH lines AS (
      SELECT line, filename FROM read_csv(${sqlList(mysql)}, columns = {'line': 'VARCHAR'}, header = false,
        delim = chr(1), quote = '', escape = '', auto_detect = false, max_line_size = 20000000, filename = true)
      WHERE line LIKE '{%'
    ), docs AS (SELECT json(rtrim(line, ',')) AS doc, filename FROM lines)
    SELECT CASE WHEN (doc ->> 'source') = 'mysql-audit' THEN doc -> 'event' ELSE doc END AS e, coalesce(doc ->> 'dbSystemId', filename) AS db
    FROM docs WHERE (doc ->> 'source') IS NULL OR (doc ->> 'source') = 'mysql-audit'`);
  await c.run(`
    CREATE TABLE connects AS
    SELECT db, strptime(e ->> 'timestamp', '%Y-%m-%d %H:%M:%S') AS ts, lower(e -> 'login' ->> 'user') AS login_user,
           e -> 'login' ->> 'ip' AS ip,
           e -> 'login' ->> 'proxy' AS proxy, e -> 'account' ->> 'user' AS account,
           CAST(e -> 'connection_data' ->> 'status' AS INTEGER) AS status
    FROM ev WHERE (e ->> 'class') = 'connection' AND (e ->> 'event') = 'connect'`);
  await c.run(`
    CREATE TABLE iam AS
    WITH raw AS (SELECT unnest(CASE WHEN json_type(j) = 'ARRAY' THEN CAST(j AS JSON[]) ELSE CAST(j -> 'items' AS JSON[]) END) AS e
                 FROM read_json_objects(${sqlList(iam)}, format = 'auto') AS t(j))
    SELECT coalesce(try_strptime(e ->> 'time', '%Y-%m-%dT%H:%M:%S.%gZ'), try_strptime(e ->> 'eventTime', '%Y-%m-%dT%H:%M:%S.%gZ')) AS ts,
           coalesce(e ->> 'type', e ->> 'eventType') AS type,
           coalesce(e -> 'data' -> 'stateChange' -> 'current' ->> 'userId', e -> 'data' -> 'stateChange' -> 'previous' ->> 'userId') AS user_id,
           coalesce(e -> 'data' -> 'stateChange' -> 'current' ->> 'groupId', e -> 'data' -> 'stateChange' -> 'previous' ->> 'groupId') AS group_id
    FROM raw`);
  await c.run(`
    CREATE TABLE changes AS
    SELECT DISTINCT ts, user_id, group_id, type ILIKE '%AddUserToGroup' AS member
    FROM iam WHERE (type ILIKE '%AddUserToGroup' OR type ILIKE '%RemoveUserFromGroup') AND user_id IS NOT NULL`);
  const read = async (sql: string) => Number((await c.runAndReadAll(sql)).getRows()[0]?.[0] ?? 0);
  const connects = await read(`
    SELECT count(*) FROM (
      SELECT c.ts, c.login_user, ch.group_id, ch.member
      FROM (SELECT k.*, n.user_id FROM connects k LEFT JOIN names n ON n.name = k.login_user WHERE k.proxy <> '') c
      ASOF LEFT JOIN changes ch ON c.user_id = ch.user_id AND c.ts >= ch.ts)`);
  const people = await read(`
    SELECT count(*) FROM (SELECT login_user, count(*) AS sessions, count(*) FILTER (WHERE status <> 0) AS failed
                          FROM connects GROUP BY login_user)`);
  // As auth.failure-burst counts: a sliding window per login user and DB system, and per source IP.
  const bursts = await read(`
    WITH failed AS (SELECT * FROM connects WHERE status <> 0),
    w AS (
      SELECT 'user' AS kind, db || '/' || login_user AS subject,
             count(*) OVER (PARTITION BY db, login_user ORDER BY ts RANGE BETWEEN INTERVAL ${window} PRECEDING AND CURRENT ROW) AS n
      FROM failed
      UNION ALL
      SELECT 'ip', ip, count(*) OVER (PARTITION BY ip ORDER BY ts RANGE BETWEEN INTERVAL ${window} PRECEDING AND CURRENT ROW)
      FROM failed)
    SELECT count(DISTINCT (kind, subject)) FROM w WHERE n >= ${threshold}`);
  const memberships = await read('SELECT count(*) FROM changes');
  return { connects, people, bursts, memberships };
}
