// {"action":"report"} in the function host: the reports of the period are written to Object
// Storage and one Notifications message names them, both through the real SDK clients against the
// signed local endpoint; a retried call overwrites the same objects and publishes nothing more.
import { join } from 'node:path';
import * as common from 'oci-common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FunctionError, FunctionHost, type InvocationSummary } from '../../functions/function-host.js';
import { ReportDocumentSchema } from '../../schemas/report.js';
import { T0 } from '../../shared/detect/timeline.js';
import { createOciClient } from '../../shared/oci/clients.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { fleetConfigJson, removeTempDirs, tempDir } from '../helpers/fdk-harness.js';
import { Lines } from '../helpers/host-batches.js';
import { type NotificationsService, notificationsService } from '../oci-endpoint/notifications.js';
import { type ObjectStorageService, objectStorageService } from '../oci-endpoint/object-storage.js';
import { type OciEndpoint, startOciEndpoint } from '../oci-endpoint/server.js';
import { createTestPrincipal, type TestPrincipal } from '../oci-endpoint/signature.js';
import { incidentTimeline } from '../scenarios/scenario-fleet.js';
import { runPipeline } from '../state/store-fixtures.js';

const BUCKET = 'audit-reports';
const TOPIC = 'ocid1.onstopic.oc1.iad.reports';
const NAMESPACE = 'acmecorp';
const DAY = 86_400_000;

let principal: TestPrincipal;
let endpoint: OciEndpoint;
let objects: ObjectStorageService;
let ons: NotificationsService;
let statePath: string;

beforeAll(async () => {
  principal = createTestPrincipal();
  objects = objectStorageService({ namespace: NAMESPACE, buckets: [BUCKET] });
  ons = notificationsService({ knownTopics: [TOPIC] });
  endpoint = await startOciEndpoint({
    ...principal.endpointOptions,
    handlers: [objects.handler, ons.handler],
  });
  statePath = join(tempDir('hwaudit-report-'), 'state.sqlite');
  const store = SqliteStore.open(statePath, { scope: 'function' });
  await runPipeline(store, [incidentTimeline()], { config: { lateness: 'PT1M' } });
  await store.close();
});
afterAll(async () => {
  await endpoint?.close();
  principal?.cleanup();
  removeTempDirs();
});

function host(env: Record<string, string> = {}, now = T0 + 2 * DAY + 3_600_000): FunctionHost {
  const endpoints = {
    HWAUDIT_OCI_ENDPOINT_OBJECTSTORAGE: endpoint.url,
    HWAUDIT_OCI_ENDPOINT_NOTIFICATIONS: endpoint.url,
  };
  const auth = () =>
    new common.ConfigFileAuthenticationDetailsProvider(principal.configFile, principal.profile);
  return new FunctionHost({
    env: {
      HWAUDIT_CONFIG: fleetConfigJson(),
      HWAUDIT_STATE: statePath,
      HWAUDIT_REPORT_BUCKET: BUCKET,
      HWAUDIT_REPORT_TOPIC_ID: TOPIC,
      ...endpoints,
      ...env,
    },
    now: () => now,
    stdout: new Lines(),
    stderr: new Lines(),
    ociClients: {
      objectStorage: () => createOciClient('objectstorage', { auth: auth(), env: endpoints }),
      notifications: () => createOciClient('notifications', { auth: auth(), env: endpoints }),
    },
    ociRetry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2, sleep: async () => undefined },
  });
}

const bucket = () => objects.buckets.get(`${NAMESPACE}/${BUCKET}`)!;
const call = (h: FunctionHost, body: unknown) => h.invoke(JSON.stringify(body));

describe('{"action":"report"}', () => {
  it('writes the period reports under a name of the period, and publishes one message naming them, once', async () => {
    bucket().clear();
    const before = ons.published.length;
    const body = { action: 'report', reports: ['all'], period: 'P2D', formats: ['html', 'json', 'csv'] };
    const first = await call(host(), body);
    // The period ends at the start of the current UTC day: 2026-11-04, two days back from there.
    expect(first.report?.period).toEqual({
      from: '2026-11-02T00:00:00.000Z',
      to: '2026-11-04T00:00:00.000Z',
    });
    const folder = 'reports/20261102T000000Z_20261104T000000Z/';
    expect(first.report?.folder).toBe(folder);
    expect(first.report?.published).toBe(true);
    const names = first.report!.objects;
    expect(names).toContain(`${folder}access-review.html`);
    expect(names).toContain(`${folder}break-glass-log.json`);
    expect(names).toContain(`${folder}csv/failed-access.failed-logins.csv`);
    const manifests = [...bucket().keys()].filter((k) => !names.includes(k));
    expect(manifests).toEqual([
      expect.stringMatching(/^reports\/20261102T000000Z_20261104T000000Z\/manifest-[0-9a-f]{8}\.json$/),
    ]);
    const html = bucket().get(`${folder}access-review.html`)!;
    expect(html.contentType).toBe('text/html; charset=utf-8');
    expect(html.data.toString('utf8')).toContain('<h1>Access review</h1>');
    const doc = ReportDocumentSchema.parse(
      JSON.parse(bucket().get(`${folder}break-glass-log.json`)!.data.toString()),
    );
    expect(doc.sections[0]!.table.rows).toHaveLength(1);

    const sent = ons.published.slice(before);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.topicId).toBe(TOPIC);
    expect(sent[0]!.title).toContain('6 compliance report(s)');
    for (const name of names) expect(sent[0]!.body).toContain(name);
    expect(sent[0]!.body).toContain('Break-glass log:');
    expect(sent[0]!.body).not.toContain('Nothing to report');

    // A retry (the same schedule firing again, or a redelivery): same objects, no second message.
    const etags = new Map([...bucket()].map(([k, v]) => [k, v.etag]));
    const again = await call(host({}, T0 + 2 * DAY + 5 * 3_600_000), body);
    expect(again.report).toEqual({ ...first.report, published: false });
    expect(ons.published.length).toBe(before + 1);
    expect([...bucket().keys()].sort()).toEqual([...etags.keys()].sort());
    for (const name of names) expect(bucket().get(name)!.etag).not.toBe(etags.get(name));
  });

  it('says in its message when the state holds nothing in the period (audit events may have stopped)', async () => {
    bucket().clear();
    const before = ons.published.length;
    const body = { action: 'report', reports: ['alert-summary'], period: 'P1D', to: '2026-12-01T00:00:00Z' };
    expect((await call(host(), body)).report?.published).toBe(true);
    const [sent] = ons.published.slice(before);
    expect(sent!.body).toContain(
      "! Nothing to report: the state holds no session and no alert in this period; check that the fleet's audit events reach the pipeline.",
    );
  });

  it('publishes on the retry when the message failed, and only then writes the manifest', async () => {
    bucket().clear();
    const before = ons.published.length;
    const body = { action: 'report', reports: ['alert-summary'], period: 'P1D', to: '2026-11-03T00:00:00Z' };
    endpoint.faults.failNext('ons.publishMessage', 2, 500);
    const error = await call(host(), body).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(FunctionError);
    expect((error as FunctionError).code).toBe('OCI_REQUEST_FAILED');
    const folder = 'reports/20261102T000000Z_20261103T000000Z/';
    expect(bucket().has(`${folder}alert-summary.html`)).toBe(true);
    const manifest = () => [...bucket().keys()].some((k) => k.startsWith(`${folder}manifest-`));
    expect(manifest()).toBe(false);
    expect(ons.published.length).toBe(before);

    const retry = await call(host(), body);
    expect(retry.report?.published).toBe(true);
    expect(ons.published.length).toBe(before + 1);
    expect(manifest()).toBe(true);
  });

  it('limits the reports to a DB system by name, in a folder of its own', async () => {
    const s = await call(host(), {
      action: 'report',
      reports: ['failed-access'],
      period: 'P1D',
      to: '2026-11-03T00:00:00Z',
      dbSystem: 'prod-orders',
    });
    expect(s.report?.folder).toMatch(
      /^reports\/20261102T000000Z_20261103T000000Z\/prod-orders~[0-9a-f]{8}\/$/,
    );
  });

  it('writes the objects without a message when no topic is configured', async () => {
    const before = ons.published.length;
    const s = await call(host({ HWAUDIT_REPORT_TOPIC_ID: '', HWAUDIT_REPORT_PREFIX: 'weekly/' }), {
      action: 'report',
      reports: ['access-review'],
      period: 'P7D',
    });
    expect(s.report?.published).toBe(false);
    expect(s.report?.objects).toEqual([
      'weekly/20261028T000000Z_20261104T000000Z/access-review.html',
      'weekly/20261028T000000Z_20261104T000000Z/access-review.json',
    ]);
    expect(ons.published.length).toBe(before);
  });

  it.each([
    [{ action: 'report', reports: ['nope'], period: 'P7D' }, /reports\.0/],
    [{ action: 'report', reports: [], period: 'P7D' }, /reports/],
    [{ action: 'report', reports: ['all'], period: 'seven days' }, /period/],
    [{ action: 'report', reports: ['all'], period: 'PT5M' }, /period/],
    [{ action: 'report', reports: ['all'], period: 'P7D', extra: 1 }, /extra|unrecognized/i],
    [{ action: 'report', reports: ['all'], period: 'P7D', formats: ['pdf'] }, /formats/],
  ])('refuses %j with a 400 summary (a retry cannot fix it)', async (body, message) => {
    const s: InvocationSummary = await call(host(), body);
    expect(s.action).toBe('report');
    expect(s.error?.status).toBe(400);
    expect(s.error?.message).toMatch(message);
    expect(s.report).toBeUndefined();
  });

  it('fails with CONFIG_INVALID naming HWAUDIT_REPORT_BUCKET when no bucket is set', async () => {
    const error = await call(host({ HWAUDIT_REPORT_BUCKET: '' }), {
      action: 'report',
      reports: ['all'],
      period: 'P7D',
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(FunctionError);
    expect((error as FunctionError).message).toMatch(/CONFIG_INVALID.*HWAUDIT_REPORT_BUCKET/);
  });
});
