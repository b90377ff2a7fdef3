// Statements count in the session that was open at their time (through a change of user, a reused
// connection id, a server restart) and, under break-glass, are listed in event order, whatever the
// arrival order within the lateness, the batching, redelivery or a restart.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CanonicalEvent, DbEvent } from '../../schemas/events.js';
import { STATEMENT_SQL_MAX } from '../../schemas/session.js';
import { at, db, GROUPS, iam, USERS } from '../../shared/detect/timeline.js';
import { runs } from '../helpers/property.js';
import {
  deliveries,
  runAcrossReopen,
  runBatches,
  runTimeline,
  type TimelineResult,
} from '../helpers/run-timeline.js';

const LATENESS = 20 * 60_000;

const select = (m: number, conn: number, account: string, status = 0) =>
  db.query({
    at: at(m),
    conn,
    account,
    sqlCommand: 'select',
    sql: `SELECT * FROM shop.orders WHERE id = ${m}`,
    status,
  });

const read = (m: number, conn: number, account: string, table: string): DbEvent => ({
  ...select(m, conn, account),
  kind: 'table_access',
  class: 'table_access',
  event: 'read',
  table: { db: 'shop', table, op: 'read' },
});

const changeUser = (m: number, conn: number, account: string, user: string): DbEvent => ({
  ...db.connect({ at: at(m), conn, account, user, proxy: true }),
  kind: 'change_user',
  event: 'change_user',
});

function timeline(): CanonicalEvent[] {
  return [
    iam.added({ at: at(1), user: USERS.bob, group: GROUPS.bg }),
    // Break-glass: what the session ran is kept, in event order.
    db.connect({ at: at(2), conn: 7, account: 'emergency_admin', user: 'bob', proxy: true }),
    select(3, 7, 'emergency_admin'),
    read(3, 7, 'emergency_admin', 'orders'),
    select(4, 7, 'emergency_admin', 1146),
    db.query({
      at: at(5),
      conn: 7,
      account: 'emergency_admin',
      sqlCommand: 'grant',
      sql: "GRANT SELECT ON shop.* TO 'app'@'%'",
    }),
    select(6, 7, 'emergency_admin'),
    changeUser(7, 7, 'dba_proxy', 'alice'),
    read(8, 7, 'dba_proxy', 'customers'),
    db.disconnect({ at: at(9), conn: 7, account: 'dba_proxy' }),
    // The same connection id again: a new session.
    db.connect({ at: at(10), conn: 7, account: 'app', ip: '10.1.1.1' }),
    select(11, 7, 'app'),
    read(11, 7, 'app', 'items'),
    // A restart ends every session of the server; a statement of the old connection id is an orphan.
    db.startup({ at: at(12) }),
    select(13, 7, 'app'),
    db.connect({ at: at(14), conn: 8, account: 'app', ip: '10.1.1.2' }),
    ...[15, 16, 17, 18].map((m) => read(m, 8, 'app', `t${m}`)),
    db.disconnect({ at: at(40), conn: 8, account: 'app' }),
    iam.signOn({ at: at(80), user: USERS.dave, ip: '10.0.0.9' }),
  ];
}

const fingerprint = (r: TimelineResult) => ({
  alerts: r.alerts.map((a) => JSON.stringify(a)).sort(),
  sessions: r.sessions.map((s) => JSON.stringify(s)).sort(),
  orphans: r.pipeline.correlation.orphanEvents,
});

describe('statements and their sessions', () => {
  const events = timeline();

  it('count in the session open at their time, and under break-glass are listed in event order', async () => {
    const { sessions, pipeline } = await runTimeline(events);
    const [bg, app, app2] = sessions;
    expect(bg).toMatchObject({
      connectionId: 7,
      mysqlAccount: 'dba_proxy@%',
      counts: { queries: 4, tableAccess: 2, changeUser: 1, failedStatements: 1 },
      tables: ['shop.customers', 'shop.orders'],
    });
    expect(bg?.statements?.map((s) => [s.time.slice(11, 16), s.command, s.status])).toEqual([
      ['09:03', 'select', 0],
      ['09:04', 'select', 1146],
      ['09:05', 'grant', 0],
      ['09:06', 'select', 0],
    ]);
    expect(app).toMatchObject({
      connectionId: 7,
      counts: { queries: 1, tableAccess: 1 },
      tables: ['shop.items'],
    });
    expect(app2).toMatchObject({ connectionId: 8, counts: { queries: 0, tableAccess: 4 } });
    expect(app2?.tables).toEqual(['shop.t15', 'shop.t16', 'shop.t17', 'shop.t18']);
    expect(pipeline.correlation.orphanEvents).toBe(1);
  });

  it('a long statement is kept to STATEMENT_SQL_MAX characters, never half of one', async () => {
    // An emoji (two UTF-16 code units) across the limit: the kept SQL stops before it.
    const sql = `SELECT a FROM t /* ${'x'.repeat(STATEMENT_SQL_MAX - 20)}\u{1F600} tail */`;
    const long = db.query({ at: at(3), conn: 7, account: 'emergency_admin', sqlCommand: 'select', sql });
    const { sessions } = await runTimeline([...events.slice(0, 2), long]);
    const kept = sessions[0]?.statements?.[0]?.sql;
    expect(kept).toBe(sql.slice(0, STATEMENT_SQL_MAX - 1));
    expect(kept).not.toMatch(/[\uD800-\uDBFF]$/);
  });

  it('any arrival order within the lateness, any batches, any duplicates: same sessions and alerts', async () => {
    const baseline = fingerprint(await runTimeline(events));
    await fc.assert(
      fc.asyncProperty(deliveries(events, LATENESS), async (batches) => {
        expect(fingerprint(await runBatches(batches))).toEqual(baseline);
      }),
      runs(40),
    );
  });

  it('statements waiting when the store is closed are applied after it reopens', async () => {
    const baseline = fingerprint(await runTimeline(events));
    // Up to 09:15: everything after 08:55 still waits for the watermark; three events come again.
    const cut = events.findIndex((e) => e.ts > at(15));
    expect(fingerprint(await runAcrossReopen(events.slice(0, cut), events.slice(cut - 3)))).toEqual(baseline);
  });
});
