// What the report tests share: the incident scenario with attacker-controlled text injected where a
// client or a record can put it (a login name, SQL, a table name), run through the pipeline into a
// store, and the reports of its day.

import type { CanonicalEvent, DbEvent } from '../../schemas/events.js';
import type { ReportDocument, Section } from '../../schemas/report.js';
import { at, db, T0 } from '../../shared/detect/timeline.js';
import { REPORTS } from '../../shared/report/registry.js';
import { runReports } from '../../shared/report/run-reports.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import type { StateStore } from '../../shared/state/state-store.js';
import { incidentTimeline } from '../scenarios/scenario-fleet.js';
import { runPipeline } from '../state/store-fixtures.js';

/** Markup that would run script if a report did not escape it. */
export const HOSTILE = `<img src=x onerror="window.__pwned=1;document.title='pwned'">`;
/** A spreadsheet formula as a login name. */
export const FORMULA = '=HYPERLINK("http://attacker.example/","open")';

function tableAccess(s: {
  at: number;
  conn: number;
  account: string;
  schema: string;
  table: string;
}): DbEvent {
  const q = db.query({ at: s.at, conn: s.conn, account: s.account, sqlCommand: 'select', sql: '' });
  const { sql: _sql, ...rest } = q;
  return {
    ...rest,
    kind: 'table_access',
    class: 'table_access',
    event: 'read',
    table: { db: s.schema, table: s.table, op: 'read' },
  };
}

export function hostileTimeline(): CanonicalEvent[] {
  return [
    // bob's client, under break-glass, names itself with markup.
    ...incidentTimeline().map((e) =>
      e.source === 'mysql' && e.kind === 'connect' && e.connectionId === 2
        ? { ...e, attributes: { program_name: HOSTILE, _client_name: 'libmysql', _client_version: '8.4.3' } }
        : e,
    ),
    // bob, under break-glass, runs statements and reads a table whose names carry markup.
    db.query({
      at: at(16),
      conn: 2,
      account: 'emergency_admin',
      sqlCommand: 'select',
      sql: `SELECT 1 /* ${HOSTILE} */`,
    }),
    tableAccess({
      at: at(17),
      conn: 2,
      account: 'emergency_admin',
      schema: 'shop',
      table: '<script>window.__pwned=2</script>',
    }),
    // A group login whose client sent markup as its user name: nobody can be named.
    db.connect({ at: at(70), conn: 30, account: 'dba_proxy', user: HOSTILE, ip: '10.9.9.9', proxy: true }),
    // Failed logins whose login name is a formula.
    db.connect({ at: at(71), conn: 31, account: FORMULA, status: 1045, ip: '198.51.100.7' }),
  ];
}

/** The scenario's day: from an hour before T0 to a day after. */
export const DAY_PERIOD = { from: T0 - 3_600_000, to: T0 + 23 * 3_600_000 };

export async function scenarioStore(events: CanonicalEvent[] = hostileTimeline()): Promise<StateStore> {
  const store = SqliteStore.open(':memory:');
  await runPipeline(store, [events]);
  return store;
}

export async function allReports(
  store: StateStore,
  period = DAY_PERIOD,
  dbSystem?: string,
): Promise<ReportDocument[]> {
  return runReports(store, {
    reports: REPORTS.map((r) => r.id),
    period,
    ...(dbSystem === undefined ? {} : { dbSystem }),
    generatedAt: T0 + 24 * 3_600_000,
  });
}

export function sectionOf(doc: ReportDocument, id: string): Section {
  const s = doc.sections.find((x) => x.id === id);
  if (s === undefined) throw new Error(`${doc.report} has no section ${id}`);
  return s;
}

/** A section's rows as objects keyed by column id. */
export function rowsOf(doc: ReportDocument, id: string): Record<string, unknown>[] {
  const s = sectionOf(doc, id);
  return s.table.rows.map((r) => Object.fromEntries(s.table.columns.map((c, i) => [c.id, r[i]])));
}

export function figure(doc: ReportDocument, label: string): unknown {
  const f = doc.figures.find((x) => x.label === label);
  if (f === undefined) throw new Error(`${doc.report} has no figure ${label}`);
  return f.value;
}
