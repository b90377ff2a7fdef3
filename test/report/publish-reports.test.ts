// Scheduled reports in Object Storage: each DB system has a folder of its own, and each list of
// reports (a schedule) its own manifest, so neither one's objects nor one's message is lost to another's.
import { beforeAll, describe, expect, it } from 'vitest';
import { baseConfig, T0 } from '../../shared/detect/timeline.js';
import { type PublishDeps, publishReports, type ReportAction } from '../../shared/report/publish-reports.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { incidentTimeline } from '../scenarios/scenario-fleet.js';
import { runPipeline } from '../state/store-fixtures.js';

const DAY = 86_400_000;
const SLASHED = { id: 'ocid1.mysqldbsystem.oc1..slashed', name: 'prod/a' };
const UNDERSCORED = { id: 'ocid1.mysqldbsystem.oc1..underscored', name: 'prod_a' };

let store: SqliteStore;
beforeAll(async () => {
  store = SqliteStore.open(':memory:');
  const base = baseConfig();
  await runPipeline(store, [incidentTimeline()], {
    config: { lateness: 'PT1M', dbSystems: [...(base.dbSystems ?? []), SLASHED, UNDERSCORED] },
  });
});

function bucket() {
  const objects = new Map<string, string>();
  const messages: { title: string; body: string }[] = [];
  const deps: PublishDeps = {
    store,
    writer: {
      put: async (name, data) => {
        objects.set(name, data.toString());
        return { etag: undefined };
      },
      get: async (name) => {
        const text = objects.get(name);
        return text === undefined
          ? null
          : { data: Buffer.from(text), contentType: undefined, etag: undefined };
      },
    },
    publish: async (title, body) => {
      messages.push({ title, body });
    },
    prefix: 'reports/',
    bucket: 'audit-reports',
    now: T0 + 2 * DAY,
  };
  return { objects, messages, deps };
}

const action = (over: Partial<ReportAction>): ReportAction => ({
  action: 'report',
  reports: ['alert-summary'],
  period: 'P1D',
  to: '2026-11-03T00:00:00Z',
  ...over,
});

describe('publishReports', () => {
  it('gives DB systems whose names differ only in a replaced character folders of their own', async () => {
    const { objects, messages, deps } = bucket();
    const slashed = await publishReports(action({ dbSystem: SLASHED.id }), deps);
    const underscored = await publishReports(action({ dbSystem: UNDERSCORED.id }), deps);
    expect(slashed.folder).toMatch(/^reports\/20261102T000000Z_20261103T000000Z\/prod_a~[0-9a-f]{8}\/$/);
    expect(underscored.folder).toMatch(/^reports\/20261102T000000Z_20261103T000000Z\/prod_a~[0-9a-f]{8}\/$/);
    expect(slashed.folder).not.toBe(underscored.folder);
    // Both were told, and each folder holds its own DB system's report.
    expect([slashed.published, underscored.published]).toEqual([true, true]);
    expect(messages.map((m) => m.title)).toEqual([
      expect.stringContaining('on prod/a'),
      expect.stringContaining('on prod_a'),
    ]);
    const doc = (r: typeof slashed) => JSON.parse(objects.get(`${r.folder}alert-summary.json`)!);
    expect(doc(slashed).dbSystem).toEqual(SLASHED);
    expect(doc(underscored).dbSystem).toEqual(UNDERSCORED);
    // The same DB system gets the same folder again.
    expect((await publishReports(action({ dbSystem: SLASHED.name }), deps)).folder).toBe(slashed.folder);
  });

  it('publishes the message of a second schedule of the same period with other reports, and no retry twice', async () => {
    const { objects, messages, deps } = bucket();
    const summary = await publishReports(action({ reports: ['alert-summary'] }), deps);
    const review = await publishReports(action({ reports: ['access-review', 'failed-access'] }), deps);
    expect(review.folder).toBe(summary.folder);
    expect([summary.published, review.published]).toEqual([true, true]);
    expect(messages).toHaveLength(2);
    expect(messages[1]!.body).toContain('Access review:');
    expect(messages[1]!.body).toContain(`${review.folder}failed-access.html`);
    // Retries of either schedule (the reports in any order) publish nothing more.
    expect(
      (await publishReports(action({ reports: ['failed-access', 'access-review'] }), deps)).published,
    ).toBe(false);
    expect((await publishReports(action({ reports: ['alert-summary'] }), deps)).published).toBe(false);
    expect(messages).toHaveLength(2);
    const manifests = [...objects.keys()].filter((k) => k.includes('manifest'));
    expect(manifests).toHaveLength(2);
    expect(manifests.map((m) => JSON.parse(objects.get(m)!).reports)).toEqual(
      expect.arrayContaining([['alert-summary'], ['access-review', 'failed-access']]),
    );
  });
});
