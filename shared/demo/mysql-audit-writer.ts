// Raw MySQL Enterprise audit records for one DB system, written in the
// on-disk shape (`[`, one event per line with a trailing comma, no closing bracket while the log
// is active) or as collector records, one per line.
//
// Sessions are planned first (who connects when, as which account); this module gives them
// connection ids in connect order, expands them into connect / statement / disconnect records,
// sorts the records by time and numbers them (`id` restarts at 0 every second, so that
// `timestamp` + `id` is unique per server).
import { closeSync, openSync, writeSync } from 'node:fs';
import type { GapRecord } from '../../schemas/envelopes.js';
import { Memo } from '../memo.js';
import type { DbSystem, Person } from './fleet.js';
import { MINUTE } from './fleet.js';
import type { ExpectationKind } from './ground-truth.js';
import { Rng } from './rng.js';

export type Account = { user: string; host: string };
export type Login = { user: string; os: string; ip: string; proxy: string };
export type TableOp = 'read' | 'insert' | 'update' | 'delete';

/** One SQL statement; `tables` become table_access records before the statement's status record. */
export type Statement = {
  at: number;
  sqlCommand: string;
  query: string;
  status?: number;
  tables?: [table: string, op: TableOp][];
};

export type Workload = 'app' | 'batch' | 'monitor' | 'developer' | 'analyst' | 'dba' | 'admin' | 'scripted';

export type SessionPlan = {
  db: DbSystem;
  start: number;
  /** Disconnect time; past the end of the window the session stays open. */
  end: number;
  account: Account;
  login: Login;
  /** Connect status: 0, or the errno of a failed login (only the connect record is written). */
  status: number;
  program: string;
  workload: Workload;
  /** Statements per minute for app sessions (before the time-of-day curve). */
  rate?: number;
  /** Statements that must appear (incidents, DBA changes), in addition to the workload's own. */
  statements: Statement[];
  /** Seeds the session's own Rng, so a session expands the same whatever else is generated. */
  key: string;
  /** History: connect and disconnect only, without the workload's statements. */
  quiet?: boolean;
  /** The person really behind the session, when a person is. */
  person?: Person;
  /** Why the session happens, when it is part of an incident or of churn (normal work otherwise). */
  purpose?: { kind: ExpectationKind; story: string };
  /** The session is itself an access.after-revocation or access.identity-mismatch finding. */
  finding?: boolean;
};

export const PROXY_LOGIN = "''@'%'";

/** Relative activity by UTC hour: a working day with a lunch dip and a quiet night. */
const HOURLY = [
  0.15, 0.15, 0.15, 0.15, 0.15, 0.15, 0.3, 0.8, 1, 1, 1, 1, 0.8, 1, 1, 1, 1, 0.8, 0.5, 0.5, 0.5, 0.3, 0.3,
  0.3,
];

function hourlyLoad(ts: number): number {
  return HOURLY[new Date(ts).getUTCHours()]!;
}

type Line = { ts: number; seq: number; rest: string };

const secondText = new Memo(200_000, (sec: number) =>
  new Date(sec * 1000).toISOString().slice(0, 19).replace('T', ' '),
);
/** `YYYY-MM-DD hh:mm:ss` (UTC), cached per second. */
function auditTimestamp(ts: number): string {
  return secondText.get(Math.floor(ts / 1000));
}

/** The records of one DB system, expanded from session plans and written in time order. */
export class DbAuditLog {
  private lines: Line[] = [];
  private seq = 0;
  readonly counts = { events: 0, sessions: 0, failedLogins: 0 };

  constructor(
    readonly db: DbSystem,
    private readonly seed: number,
    private readonly windowEnd: number,
  ) {}

  /** Expands every plan (connection ids in connect order; they restart after a server restart). */
  addSessions(plans: SessionPlan[]): void {
    const sorted = [...plans].sort(
      (a, b) => a.start - b.start || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
    );
    let next = 11;
    let restarted = this.db.restartTs === undefined;
    for (const plan of sorted) {
      if (!restarted && plan.start > this.db.restartTs!) {
        restarted = true;
        next = 8;
      }
      this.expand(plan, next++);
    }
    if (this.db.restartTs !== undefined) this.restart(this.db.restartTs);
  }

  private restart(ts: number): void {
    this.push(ts, `"class":"audit","event":"shutdown","connection_id":0,"shutdown_data":{"server_id":1}`);
    this.push(
      ts + 45_000,
      `"class":"audit","event":"startup","connection_id":0,"startup_data":{"server_id":1,"os_version":"x86_64-Linux","mysql_version":"9.1.2-u1-cloud","args":["/usr/sbin/mysqld","--defaults-file=/etc/my.cnf"]}`,
    );
  }

  private push(ts: number, rest: string): void {
    if (ts >= this.windowEnd) return;
    this.lines.push({ ts, seq: this.seq++, rest });
  }

  private expand(plan: SessionPlan, conn: number): void {
    const rng = new Rng(this.seed).fork(plan.key);
    const who = `"connection_id":${conn},"account":${JSON.stringify(plan.account)},"login":${JSON.stringify(plan.login)}`;
    const attrs = connectionAttributes(plan, rng);
    const type = plan.workload === 'monitor' ? 'tcp/ip' : 'ssl';
    this.push(
      plan.start,
      `"class":"connection","event":"connect",${who},"connection_data":{"connection_type":"${type}","status":${plan.status},"db":"${plan.status === 0 ? this.db.schema : ''}","connection_attributes":${attrs}}`,
    );
    if (plan.status !== 0) {
      this.counts.failedLogins++;
      return;
    }
    this.counts.sessions++;
    const own = plan.quiet ? [] : workloadStatements(plan, rng);
    const statements = [...plan.statements, ...own].sort((a, b) => a.at - b.at);
    for (const st of statements) {
      if (st.at >= plan.end) continue;
      for (const [table, op] of st.tables ?? []) {
        this.push(
          st.at,
          `"class":"table_access","event":"${op}",${who},"table_access_data":{"db":"${this.db.schema}","table":"${table}","query":${JSON.stringify(st.query)},"sql_command":"${st.sqlCommand}"}`,
        );
      }
      const status = st.status ?? 0;
      const rows = st.tables?.length ? rng.int(0, 40) : 0;
      this.push(
        st.at,
        `"class":"general","event":"status",${who},"general_data":{"command":"Query","sql_command":"${st.sqlCommand}","query":${JSON.stringify(st.query)},"status":${status}},"query_statistics":{"query_time":${(rng.next() * 0.02).toFixed(6)},"rows_sent":${rows},"rows_examined":${rows * rng.int(1, 30)},"bytes_received":${st.query.length + 5},"bytes_sent":${64 + rows * 90}}`,
      );
    }
    this.push(
      plan.end,
      `"class":"connection","event":"disconnect",${who},"connection_data":{"connection_type":"${type}"}`,
    );
  }

  /** Sorts and numbers the records; returns them as JSON texts (without separators). */
  private *records(): Generator<string> {
    this.lines.sort((a, b) => a.ts - b.ts || a.seq - b.seq);
    let lastSecond = -1;
    let id = 0;
    for (const line of this.lines) {
      const sec = Math.floor(line.ts / 1000);
      id = sec === lastSecond ? id + 1 : 0;
      lastSecond = sec;
      yield `{"timestamp":"${auditTimestamp(line.ts)}","id":${id},${line.rest}}`;
    }
    this.counts.events = this.lines.length;
    this.lines = [];
  }

  /**
   * Writes the log to `path`; returns the bytes written. A collector stream also carries the
   * `gaps` the collector reported, each in its place by time.
   */
  writeTo(path: string, gaps: readonly GapRecord[] = []): number {
    const fd = openSync(path, 'w');
    let bytes = 0;
    let buffer = '';
    const flush = () => {
      bytes += writeSync(fd, buffer);
      buffer = '';
    };
    try {
      if (this.db.format === 'file') {
        buffer = '[\n';
        for (const rec of this.records()) {
          buffer += `${rec},\n`;
          if (buffer.length > 1 << 20) flush();
        }
      } else {
        const head = `{"source":"mysql-audit","dbSystemId":"${this.db.id}","dbSystemName":"${this.db.name}","event":`;
        const pending = [...gaps].sort((a, b) => Date.parse(a.to ?? a.from) - Date.parse(b.to ?? b.from));
        for (const rec of this.records()) {
          const ts = Date.parse(`${rec.slice(14, 33).replace(' ', 'T')}Z`);
          while (pending.length > 0 && Date.parse(pending[0]!.to ?? pending[0]!.from) < ts)
            buffer += `${JSON.stringify(pending.shift())}\n`;
          buffer += `${head}${rec}}\n`;
          if (buffer.length > 1 << 20) flush();
        }
        for (const gap of pending) buffer += `${JSON.stringify(gap)}\n`;
      }
      flush();
    } finally {
      closeSync(fd);
    }
    return bytes;
  }
}

function connectionAttributes(plan: SessionPlan, rng: Rng): string {
  const pid = rng.int(1000, 65000);
  switch (plan.workload) {
    case 'app':
    case 'batch':
      return `{"_client_name":"mysql-connector-java","_client_version":"9.1.0","_runtime_vendor":"Oracle Corporation","_runtime_version":"21.0.5","_os":"Linux","_platform":"amd64","program_name":"${plan.program}"}`;
    case 'monitor':
      return `{"_client_name":"libmysql","_client_version":"8.4.3","_os":"Linux","_platform":"x86_64","_pid":"${pid}","program_name":"mysqld_exporter"}`;
    default:
      return `{"_client_name":"libmysql","_client_version":"9.1.0","_os":"${rng.pick(['Linux', 'macos14', 'Win64'])}","_platform":"x86_64","_pid":"${pid}","program_name":"${plan.program}"}`;
  }
}

// --- workloads ------------------------------------------------------------------------------------

function workloadStatements(plan: SessionPlan, rng: Rng): Statement[] {
  const out: Statement[] = [];
  const { db } = plan;
  switch (plan.workload) {
    case 'app': {
      // A Poisson stream whose rate follows the working day.
      const rate = (plan.rate ?? 1) / MINUTE;
      let t = plan.start + rng.int(50, 2000);
      while (t < plan.end) {
        out.push(appStatement(db, t, rng));
        t += rng.exp(1 / (rate * hourlyLoad(t))) + 1;
      }
      return out;
    }
    case 'batch': {
      let t = plan.start + 500;
      while (t < plan.end) {
        out.push(batchStatement(db, t, rng));
        t += rng.int(1000, 12_000);
      }
      return out;
    }
    case 'monitor': {
      for (let t = plan.start + 1000; t < plan.end; t += 2 * MINUTE) {
        out.push({
          at: t,
          sqlCommand: 'select',
          query:
            "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM performance_schema.global_status WHERE VARIABLE_NAME IN ('Threads_connected','Questions','Slow_queries','Innodb_row_lock_waits')",
        });
      }
      return out;
    }
    case 'developer':
    case 'analyst':
    case 'dba':
    case 'admin': {
      let t = plan.start + rng.int(2000, 15000);
      while (t < plan.end - 1000) {
        out.push(humanStatement(plan.workload, db, t, rng));
        t += rng.exp(45_000) + 1500;
      }
      return out;
    }
    case 'scripted':
      return out;
  }
}

const STATUSES = ['NEW', 'PAID', 'PICKING', 'SHIPPED', 'DELIVERED', 'CANCELLED'];

function appStatement(db: DbSystem, at: number, rng: Rng): Statement {
  const t = rng.pick(db.tables);
  const id = rng.int(100_000, 9_999_999);
  const kind = rng.weighted([
    ['select', 60],
    ['join', 15],
    ['insert', 12],
    ['update', 10],
    ['delete', 3],
  ] as const);
  switch (kind) {
    case 'select':
      return {
        at,
        sqlCommand: 'select',
        query: `SELECT id, status, amount, updated_at FROM ${t} WHERE account_id = ${id} ORDER BY updated_at DESC LIMIT 20`,
        tables: [[t, 'read']],
      };
    case 'join': {
      const u = rng.pick(db.tables);
      return {
        at,
        sqlCommand: 'select',
        query: `SELECT a.id, a.status, b.id AS ref_id FROM ${t} a JOIN ${u} b ON b.ref_id = a.id WHERE a.id = ${id}`,
        tables:
          t === u
            ? [[t, 'read']]
            : [
                [t, 'read'],
                [u, 'read'],
              ],
      };
    }
    case 'insert':
      return {
        at,
        sqlCommand: 'insert',
        query: `INSERT INTO ${t} (account_id, status, amount, created_at) VALUES (${id}, '${rng.pick(STATUSES)}', ${rng.int(1, 90000) / 100}, NOW())`,
        tables: [[t, 'insert']],
      };
    case 'update':
      return {
        at,
        sqlCommand: 'update',
        query: `UPDATE ${t} SET status = '${rng.pick(STATUSES)}', updated_at = NOW() WHERE id = ${id}`,
        tables: [[t, 'update']],
      };
    case 'delete':
      return {
        at,
        sqlCommand: 'delete',
        query: `DELETE FROM ${t} WHERE id = ${id} AND status = 'CANCELLED'`,
        tables: [[t, 'delete']],
      };
  }
}

function batchStatement(db: DbSystem, at: number, rng: Rng): Statement {
  const t = rng.pick(db.tables);
  return rng.chance(0.5)
    ? {
        at,
        sqlCommand: 'delete',
        query: `DELETE FROM ${t} WHERE status = 'CANCELLED' AND updated_at < NOW() - INTERVAL 90 DAY LIMIT 5000`,
        tables: [[t, 'delete']],
      }
    : {
        at,
        sqlCommand: 'insert_select',
        query: `INSERT INTO ${t}_archive SELECT * FROM ${t} WHERE updated_at < NOW() - INTERVAL 30 DAY LIMIT 5000`,
        tables: [
          [`${t}_archive`, 'insert'],
          [t, 'read'],
        ],
      };
}

function humanStatement(
  workload: 'developer' | 'analyst' | 'dba' | 'admin',
  db: DbSystem,
  at: number,
  rng: Rng,
): Statement {
  const t = rng.pick(db.tables);
  if (rng.chance(0.03)) {
    return { at, sqlCommand: 'select', query: `SELECT * FROM ${t}_old LIMIT 10`, status: 1146 };
  }
  if (workload === 'dba' || workload === 'admin') {
    return rng.weighted<Statement>([
      [{ at, sqlCommand: 'show_processlist', query: 'SHOW FULL PROCESSLIST' }, 3],
      [{ at, sqlCommand: 'show_engine_status', query: 'SHOW ENGINE INNODB STATUS' }, 1],
      [
        {
          at,
          sqlCommand: 'select',
          query:
            'SELECT DIGEST_TEXT, COUNT_STAR, SUM_TIMER_WAIT FROM performance_schema.events_statements_summary_by_digest ORDER BY SUM_TIMER_WAIT DESC LIMIT 10',
        },
        3,
      ],
      [{ at, sqlCommand: 'analyze', query: `ANALYZE TABLE ${db.schema}.${t}`, tables: [[t, 'read']] }, 1],
      [{ at, sqlCommand: 'show_grants', query: "SHOW GRANTS FOR 'dev_proxy'@'%'" }, 1],
      [{ at, sqlCommand: 'select', query: 'SELECT user, host, plugin, account_locked FROM mysql.user' }, 1],
    ]);
  }
  if (workload === 'analyst') {
    return {
      at,
      sqlCommand: 'select',
      query: `SELECT DATE(created_at) AS d, status, COUNT(*), SUM(amount) FROM ${t} WHERE created_at >= '2026-10-01' GROUP BY d, status`,
      tables: [[t, 'read']],
    };
  }
  return rng.weighted<Statement>([
    [
      {
        at,
        sqlCommand: 'select',
        query: `SELECT * FROM ${t} WHERE id = ${rng.int(1000, 99999)}`,
        tables: [[t, 'read']],
      },
      5,
    ],
    [
      {
        at,
        sqlCommand: 'select',
        query: `EXPLAIN SELECT id, status FROM ${t} WHERE status = 'NEW' AND updated_at > NOW() - INTERVAL 1 DAY`,
        tables: [[t, 'read']],
      },
      2,
    ],
    [{ at, sqlCommand: 'show_tables', query: 'SHOW TABLES' }, 1],
    [{ at, sqlCommand: 'show_create_table', query: `SHOW CREATE TABLE ${t}` }, 1],
    [{ at, sqlCommand: 'error', query: `SELEC id FROM ${t}`, status: 1064 }, 0.3],
  ]);
}
