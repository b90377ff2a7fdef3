// The SQL views are the documented interface (docs/sql.md): every example there runs on SQLite and
// on MySQL, and the views give the same counts as the reports over the same store.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReportDocument } from '../../schemas/report.js';
import { REPORTS } from '../../shared/report/registry.js';
import { runReports } from '../../shared/report/run-reports.js';
import { describeMySql } from '../helpers/mysql-server.js';
import {
  type Adapter,
  alert,
  type Backing,
  batch,
  mysqlAdapter,
  runPipeline,
  sqliteAdapter,
} from '../state/store-fixtures.js';
import { hostileTimeline, rowsOf } from './report-fixtures.js';

type Dialect = 'sqlite' | 'mysql';

const DOC = readFileSync(new URL('../../docs/sql.md', import.meta.url), 'utf8');
const EXAMPLES = [
  ...DOC.matchAll(/```sql\n-- example: ([\w-]+)(?: \((sqlite|mysql)\))?\n([\s\S]*?)```/g),
].map((m) => ({
  name: m[1]!,
  dialect: m[2] as Dialect | undefined,
  sql: m[3]!,
}));
/** The day the examples ask about. */
const PERIOD = { from: Date.parse('2026-11-02T00:00:00Z'), to: Date.parse('2026-11-03T00:00:00Z') };

const count = (v: unknown) => Number(v);

function views(adapter: Adapter, dialect: Dialect) {
  let backing: Backing;
  let docs: Map<string, ReportDocument>;
  const results = new Map<string, Record<string, unknown>[]>();

  beforeAll(async () => {
    backing = await adapter.create();
    const store = await backing.open();
    await runPipeline(store, [hostileTimeline()]);
    // Raised the day before and repeated on the day: the day's findings, in the views as in the summary.
    await store.commit(batch({ alerts: [alert('repeated', '2026-11-01T20:00:00.000Z')] }));
    await store.commit(
      batch({ alertUpdates: [{ id: 'repeated', occurrences: 2, lastTime: '2026-11-02T01:00:00.000Z' }] }),
    );
    const alerts: string[] = [];
    for await (const a of store.alerts()) alerts.push(a.id);
    await store.markDelivered('jsonl', alerts.slice(0, 5));
    await store.commit(
      batch({
        deadLetters: [
          { code: 'JSON_INVALID', source: 'mysql/prod.audit.log', line: 7, message: 'record truncated' },
          { code: 'JSON_INVALID', source: 'mysql/prod.audit.log', line: 9, message: 'record truncated' },
          { code: 'UNKNOWN_KIND', source: 'batch', index: 0, message: 'record is no kind we read' },
        ],
      }),
    );
    docs = new Map(
      (
        await runReports(store, { reports: REPORTS.map((r) => r.id), period: PERIOD, generatedAt: PERIOD.to })
      ).map((d) => [d.report, d]),
    );
    for (const e of EXAMPLES)
      if (e.dialect === undefined || e.dialect === dialect) results.set(e.name, await backing.sql(e.sql));
  });
  afterAll(async () => {
    await backing?.dispose();
  });

  it('runs every example of docs/sql.md', () => {
    expect(EXAMPLES.length).toBeGreaterThanOrEqual(10);
    for (const e of EXAMPLES.filter((x) => x.dialect === undefined || x.dialect === dialect))
      expect(results.get(e.name)!.length, e.name).toBeGreaterThan(0);
  });

  it('counts the dead letters by reason and input', () => {
    expect(
      results
        .get('dead-letters')!
        .map((r) => [r.code, r.source, count(r.records), r.first_stored === r.last_stored]),
    ).toEqual([
      ['JSON_INVALID', 'mysql/prod.audit.log', 2, true],
      ['UNKNOWN_KIND', 'batch', 1, true],
    ]);
  });

  it('counts shared-account sessions by method and confidence as the attribution evidence does', () => {
    const byCombo = new Map<string, number>();
    for (const r of results.get('shared-account-attribution')!) {
      const key = `${r.attribution_method}/${r.attribution_confidence}`;
      byCombo.set(key, (byCombo.get(key) ?? 0) + count(r.sessions));
    }
    const report = rowsOf(docs.get('attribution-evidence')!, 'by-method');
    expect(Object.fromEntries(byCombo)).toEqual(
      Object.fromEntries(report.map((r) => [`${r.method}/${r.confidence}`, r.sessions])),
    );
    expect(results.get('untied-sessions')!.map((r) => r.login_user)).toEqual(
      rowsOf(docs.get('attribution-evidence')!, 'not-tied').map((r) => r.login_user),
    );
  });

  it('lists the break-glass sessions and the failed logins the reports list', () => {
    expect(results.get('break-glass-sessions')!.map((r) => r.connect_time)).toEqual(
      rowsOf(docs.get('break-glass-log')!, 'sessions').map((r) => r.connected),
    );
    const failed = (rows: Record<string, unknown>[], attempts: string, db: string) =>
      rows.map((r) => [r[db], r.login_user, r.source_ip, count(r.error_code), count(r[attempts])]);
    expect(failed(results.get('failed-logins')!, 'attempts', 'db_system_name')).toEqual(
      failed(rowsOf(docs.get('failed-access')!, 'failed-logins'), 'attempts', 'db_system'),
    );
  });

  it('counts findings by rule as the alert summary does', () => {
    const byRule = new Map<string, number>();
    for (const r of results.get('findings-by-rule')!)
      byRule.set(String(r.rule), (byRule.get(String(r.rule)) ?? 0) + count(r.findings));
    const report = rowsOf(docs.get('alert-summary')!, 'by-rule');
    expect(Object.fromEntries(byRule)).toEqual(Object.fromEntries(report.map((r) => [r.rule, r.alerts])));
    expect(rowsOf(docs.get('alert-summary')!, 'alerts').map((r) => r.alert_id)).toContain('repeated');
    expect(results.get('undelivered')!.length).toBe([...byRule.values()].reduce((a, b) => a + b, 0) - 5);
  });
}

describe('docs/sql.md on SQLite', () => views(sqliteAdapter, 'sqlite'));
describeMySql('docs/sql.md on MySQL', (server) => views(mysqlAdapter(server), 'mysql'));
