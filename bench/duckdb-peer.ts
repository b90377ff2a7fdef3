// The peer the bench compares with: DuckDB (@duckdb/node-api) reading the same input files and
// answering the batch version of our question in SQL: each proxied connect joined, as of its time,
// to the group membership of the person it names; sessions and failed logins per person; bursts of
// five failed logins per login name within ten minutes. It reads the audit files as lines of JSON
// (their `[`, trailing commas and collector envelopes included), as we do.
import type { Config } from '../schemas/config.js';

export type PeerResult = {
  ms: number;
  connects: number;
  people: number;
  bursts: number;
  memberships: number;
};

const sqlList = (paths: string[]) => `[${paths.map((p) => `'${p.replaceAll("'", "''")}'`).join(', ')}]`;

export async function duckdbPeer(inputs: string[], config: Config, threads: number): Promise<PeerResult> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const instance = await DuckDBInstance.create(':memory:', { threads: String(threads) });
  const c = await instance.connect();
  const mysql = inputs.filter((p) => !p.includes('/iam/'));
  const iam = inputs.filter((p) => p.includes('/iam/'));
  const users = config.directory.users.flatMap((u) =>
    [u.name, ...u.aliases].map((n) => [u.id, n.toLowerCase()]),
  );
  const started = performance.now();
  await c.run(`CREATE TABLE names (user_id VARCHAR, name VARCHAR)`);
  if (users.length > 0)
    await c.run(
      `INSERT INTO names VALUES ${users.map(([id, n]) => `('${id}', '${String(n).replaceAll("'", "''")}')`).join(', ')}`,
    );
  await c.run(`
    CREATE TABLE ev AS
    WITH lines AS (
      SELECT line FROM read_csv(${sqlList(mysql)}, columns = {'line': 'VARCHAR'}, header = false,
        delim = chr(1), quote = '', escape = '', auto_detect = false, max_line_size = 20000000)
      WHERE line LIKE '{%'
    ), docs AS (SELECT json(rtrim(line, ',')) AS doc FROM lines)
    SELECT coalesce(doc -> 'event', doc) AS e FROM docs WHERE (doc ->> 'source') IS NULL OR (doc ->> 'source') = 'mysql-audit'`);
  await c.run(`
    CREATE TABLE connects AS
    SELECT strptime(e ->> 'timestamp', '%Y-%m-%d %H:%M:%S') AS ts, lower(e -> 'login' ->> 'user') AS login_user,
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
  const bursts = await read(`
    SELECT count(*) FROM (SELECT login_user, time_bucket(INTERVAL 10 MINUTE, ts) AS w, count(*) AS n
                          FROM connects WHERE status <> 0 GROUP BY ALL HAVING count(*) >= 5)`);
  const memberships = await read('SELECT count(*) FROM changes');
  const ms = performance.now() - started;
  c.closeSync();
  instance.closeSync();
  return { ms, connects, people, bursts, memberships };
}
