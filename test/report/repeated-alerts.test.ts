// An alert keeps its first occurrence's time and, merged in, how many repeats followed and when the
// last one was: a period's alert summary counts an alert raised before it whose repeats went on
// into it, on SQLite and on MySQL.
import Database from 'better-sqlite3';
import { format } from 'mysql2';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ReportDocument } from '../../schemas/report.js';
import { holdsActivity, runReports } from '../../shared/report/run-reports.js';
import type { StateStore } from '../../shared/state/state-store.js';
import { describeMySql } from '../helpers/mysql-server.js';
import {
  type Adapter,
  alert,
  type Backing,
  batch,
  mysqlAdapter,
  sqliteAdapter,
} from '../state/store-fixtures.js';
import { figure, rowsOf } from './report-fixtures.js';

const NOVEMBER = { from: Date.parse('2026-11-01T00:00:00Z'), to: Date.parse('2026-12-01T00:00:00Z') };
const DECEMBER = { from: Date.parse('2026-12-01T00:00:00Z'), to: Date.parse('2027-01-01T00:00:00Z') };
const DECEMBER_8 = { from: Date.parse('2026-12-08T00:00:00Z'), to: Date.parse('2026-12-09T00:00:00Z') };

function repeated(adapter: Adapter, mysql = false) {
  let store: StateStore;
  let backing: Backing;
  let dispose = async () => {};

  beforeAll(async () => {
    backing = await adapter.create();
    dispose = () => backing.dispose();
    store = await backing.open();
    await store.commit(
      batch({
        alerts: [
          // Raised in September and acknowledged the next day; its repeats went on into December.
          alert('sep', '2026-09-01T10:00:00.000Z', { rule: 'auth.failure-burst', severity: 'medium' }),
          alert('sep', '2026-09-01T10:00:00.000Z', {
            rule: 'auth.failure-burst',
            severity: 'medium',
            status: 'resolved',
            resolution: {
              time: '2026-09-02T08:00:00.000Z',
              reason: 'acknowledged',
              note: 'planned',
              evidence: [],
            },
          }),
          // Repeated within October only: active in no later period.
          alert('oct', '2026-10-05T10:00:00.000Z'),
          alert('nov', '2026-11-20T09:00:59.000Z'),
          alert('dec', '2026-12-02T09:00:01.000Z'),
        ],
      }),
    );
    await store.commit(
      batch({
        alertUpdates: [
          { id: 'sep', occurrences: 40, lastTime: '2026-12-10T10:00:00.000Z' },
          { id: 'oct', occurrences: 2, lastTime: '2026-10-20T10:00:00.000Z' },
          { id: 'nov', occurrences: 3, lastTime: '2026-12-05T08:00:00.000Z' },
        ],
      }),
    );
  });
  afterAll(() => dispose());

  const summary = async (period: { from: number; to: number }): Promise<ReportDocument> =>
    (await runReports(store, { reports: ['alert-summary'], period, generatedAt: DECEMBER.to }))[0]!;
  const listed = (doc: ReportDocument) =>
    rowsOf(doc, 'alerts').map((r) => [r.alert_id, r.time, r.last_time, r.occurrences, r.resolved]);

  it("lists in December's summary the alerts raised before it and repeated in it, with their first and last time", async () => {
    const doc = await summary(DECEMBER);
    expect(listed(doc)).toEqual([
      ['sep', '2026-09-01T10:00:00.000Z', '2026-12-10T10:00:00.000Z', 40, '2026-09-02T08:00:00.000Z'],
      ['nov', '2026-11-20T09:00:59.000Z', '2026-12-05T08:00:00.000Z', 3, null],
      ['dec', '2026-12-02T09:00:01.000Z', '2026-12-02T09:00:01.000Z', 1, null],
    ]);
    expect(figure(doc, 'Alerts in the period')).toBe(3);
    expect(figure(doc, 'Of them raised before the period, repeated in it')).toBe(2);
    // Resolved in September (a record the period's reading does not reach): not open in December.
    expect(figure(doc, 'Still open at the end of the period')).toBe(2);
    expect(
      Object.fromEntries(rowsOf(doc, 'by-rule').map((r) => [r.rule, [r.alerts, r.occurrences, r.previous]])),
    ).toEqual({ 'access.local-account': [2, 4, 1], 'auth.failure-burst': [1, 40, 1] });
    expect(rowsOf(doc, 'by-day').reduce((n, r) => n + Number(r.alerts), 0)).toBe(1);
    expect(doc.sections.find((s) => s.id === 'alerts')!.description).toContain('whole life');
  });

  it("lists in December's failed access the burst raised in September and repeated into December", async () => {
    const [doc] = await runReports(store, {
      reports: ['failed-access'],
      period: DECEMBER,
      generatedAt: DECEMBER.to,
    });
    expect(rowsOf(doc!, 'failure-bursts').map((r) => [r.time, r.last_time, r.occurrences])).toEqual([
      ['2026-09-01T10:00:00.000Z', '2026-12-10T10:00:00.000Z', 40],
    ]);
  });

  it("keeps in November's summary the alerts raised in it, and those repeated into it from before", async () => {
    const doc = await summary(NOVEMBER);
    expect(listed(doc).map((r) => r[0])).toEqual(['sep', 'nov']);
    expect(figure(doc, 'Alerts in the previous period')).toBe(2);
  });

  it("counts a day within an older alert's first and last occurrence as a day with an alert", async () => {
    expect(listed(await summary(DECEMBER_8)).map((r) => r[0])).toEqual(['sep']);
    expect(await holdsActivity(store, DECEMBER_8)).toBe(true);
  });

  // Every report reads them: the alerts raised before its period are its whole history but a day.
  it('finds the alerts raised before the period and repeated into it by their last time, not by a scan of the older ones', async () => {
    type Read = { read: (what: string, sql: string, params?: unknown[]) => Promise<unknown[]> };
    const spy = mysql ? vi.spyOn(store as unknown as Read, 'read') : vi.spyOn(Database.prototype, 'prepare');
    let calls: unknown[][];
    try {
      for await (const _ of store.alerts({ ...DECEMBER, active: true }));
    } finally {
      calls = [...spy.mock.calls];
      spy.mockRestore();
    }
    const sql = calls.map((c) => (mysql ? [c[1], c[2]] : [c[0], []]) as [string, unknown[]]);
    const [text, params] = sql.find(([q]) => q.includes('last_time >= ?'))!;
    if (mysql) {
      const [plan] = await backing.sql(`EXPLAIN ${format(text, params as string[])}`);
      expect(plan!.key).toBe('alerts_last');
    } else {
      const steps = (await backing.sql(`EXPLAIN QUERY PLAN ${text.replaceAll('?', "'2026-12-01'")}`)).map(
        (r) => String(r.detail),
      );
      expect(steps).toContain('SEARCH alerts USING INDEX alerts_last (last_time>?)');
    }
  });
}

/** A DB system's reports list the alerts about no DB system (IAM changes): they are its activity too. */
function iamOnly(adapter: Adapter) {
  it('a period with only an IAM alert holds activity for a DB system', async () => {
    const backing = await adapter.create();
    try {
      const store = await backing.open();
      await store.commit(batch({ alerts: [alert('iam', '2026-12-08T10:00:00.000Z', { dbSystem: null })] }));
      expect(await holdsActivity(store, DECEMBER_8, 'ocid1.mysqldbsystem.oc1..other')).toBe(true);
      expect(await holdsActivity(store, DECEMBER, 'ocid1.mysqldbsystem.oc1..other')).toBe(true);
      expect(await holdsActivity(store, NOVEMBER, 'ocid1.mysqldbsystem.oc1..other')).toBe(false);
      await store.close();
    } finally {
      await backing.dispose();
    }
  });
}

describe('repeated alerts in the alert summary on SQLite', () => repeated(sqliteAdapter));
describe('activity of a DB system on SQLite', () => iamOnly(sqliteAdapter));
describeMySql('activity of a DB system on MySQL', (server) => iamOnly(mysqlAdapter(server)));
describeMySql('repeated alerts in the alert summary on MySQL', (server) =>
  repeated(mysqlAdapter(server), true),
);
