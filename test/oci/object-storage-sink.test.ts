// ObjectStorageSink through the real oci-objectstorage client and the local signed endpoint.
import { gunzipSync } from 'node:zlib';
import * as common from 'oci-common';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Alert } from '../../schemas/alert.js';
import { formatAlert } from '../../shared/emit/formats/format.js';
import { alertObjectName, ObjectStorageSink } from '../../shared/emit/object-storage-sink.js';
import { ObjectStorageWriter } from '../../shared/emit/object-storage-writer.js';
import { createOciClient } from '../../shared/oci/clients.js';
import { type ObjectStorageService, objectStorageService } from '../oci-endpoint/object-storage.js';
import { type OciEndpoint, startOciEndpoint } from '../oci-endpoint/server.js';
import { createTestPrincipal, type TestPrincipal } from '../oci-endpoint/signature.js';

const T0 = Date.parse('2026-11-02T09:00:00Z');
const BUCKET = 'siem-alerts';
const retry = { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 4, sleep: async () => undefined };

let principal: TestPrincipal;
let endpoint: OciEndpoint;
let os: ObjectStorageService;
let client: Awaited<ReturnType<typeof createOciClient<'objectstorage'>>>;
let writer: ObjectStorageWriter;

function makeAlert(i: number, minutes: number): Alert {
  return {
    id: i.toString(16).padStart(32, '0'),
    rule: 'access.local-account',
    severity: 'high',
    time: new Date(T0 + minutes * 60_000).toISOString(),
    title: `Local account admin@% logged in (${i})`,
    identity: null,
    dbSystem: { id: 'ocid1.mysqldbsystem.oc1..prod1', name: 'prod-orders' },
    evidence: [`ocid1.mysqldbsystem.oc1..prod1:2026-11-02 09:00:00:${i}`],
    mysqlAccount: 'admin@%',
    status: 'open',
  };
}

/** The object's lines, or undefined when it does not exist. */
function objectLines(name: string): string[] | undefined {
  const obj = os.buckets.get(`acmecorp/${BUCKET}`)?.get(name);
  return obj === undefined ? undefined : gunzipSync(obj.data).toString('utf8').trimEnd().split('\n');
}

const puts = () => endpoint.requestsTo('objectstorage.putObject').length;

beforeAll(async () => {
  principal = createTestPrincipal();
  os = objectStorageService({ namespace: 'acmecorp', buckets: [BUCKET] });
  endpoint = await startOciEndpoint({ ...principal.endpointOptions, handlers: [os.handler] });
  const auth = new common.ConfigFileAuthenticationDetailsProvider(principal.configFile, principal.profile);
  client = await createOciClient('objectstorage', {
    auth,
    env: { HWAUDIT_OCI_ENDPOINT_OBJECTSTORAGE: endpoint.url },
  });
  writer = new ObjectStorageWriter({ client, bucket: BUCKET, retry });
});

afterAll(async () => {
  await endpoint.close();
  principal.cleanup();
});

beforeEach(() => {
  vi.spyOn(console, 'warn').mockImplementation(() => undefined); // the SDK's notes on 404s and retries
});

afterEach(() => {
  vi.restoreAllMocks();
  endpoint.faults.clear();
  os.buckets.get(`acmecorp/${BUCKET}`)!.clear();
});

describe('ObjectStorageSink', () => {
  it('names objects by format and hour of the alert time', () => {
    expect(alertObjectName('alerts/', 'ocsf', '2026-11-02T09:59:59.999Z')).toBe(
      'alerts/ocsf/2026/11/02/09.jsonl.gz',
    );
    expect(alertObjectName('x/', 'cef', '2026-12-31T23:00:00.000Z')).toBe('x/cef/2026/12/31/23.log.gz');
  });

  it('writes one gzipped object per hour and format, one alert per line, and says where each went', async () => {
    const located: [string, string][] = [];
    const sink = new ObjectStorageSink({
      writer,
      format: 'ocsf',
      located: (a, object) => located.push([a.id, object]),
    });
    const alerts = [makeAlert(1, 5), makeAlert(2, 50), makeAlert(3, 61)];
    await sink.send(alerts);
    expect(located).toEqual([
      [alerts[0]!.id, 'alerts/ocsf/2026/11/02/09.jsonl.gz'],
      [alerts[1]!.id, 'alerts/ocsf/2026/11/02/09.jsonl.gz'],
      [alerts[2]!.id, 'alerts/ocsf/2026/11/02/10.jsonl.gz'],
    ]);
    expect(objectLines('alerts/ocsf/2026/11/02/09.jsonl.gz')).toEqual(
      alerts.slice(0, 2).map((a) => formatAlert('ocsf', a)),
    );
    expect(objectLines('alerts/ocsf/2026/11/02/10.jsonl.gz')).toEqual([formatAlert('ocsf', alerts[2]!)]);
    expect(os.buckets.get(`acmecorp/${BUCKET}`)!.get('alerts/ocsf/2026/11/02/10.jsonl.gz')?.contentType).toBe(
      'application/gzip',
    );
    expect(sink.name).toBe('oci-object-storage:ocsf');
  });

  it('a retry overwrites nothing and duplicates nothing; a late alert joins its hour', async () => {
    const sink = new ObjectStorageSink({ writer, format: 'jsonl' });
    const first = [makeAlert(1, 5), makeAlert(2, 10)];
    await sink.send(first);
    const before = puts();
    await sink.send(first); // the same batch delivered again
    expect(puts()).toBe(before);
    await sink.send([makeAlert(2, 10), makeAlert(3, 7)]); // one already there, one late
    expect(objectLines('alerts/jsonl/2026/11/02/09.jsonl.gz')).toEqual(
      [makeAlert(1, 5), makeAlert(2, 10), makeAlert(3, 7)].map((a) => JSON.stringify(a)),
    );
    expect(puts()).toBe(before + 1);
  });

  it('two writers of one hour keep each other’s lines (conditional writes)', async () => {
    const a = new ObjectStorageSink({ writer, format: 'jsonl' });
    const b = new ObjectStorageSink({ writer, format: 'jsonl' });
    await Promise.all([a.send([makeAlert(1, 1)]), b.send([makeAlert(2, 2)])]);
    expect(objectLines('alerts/jsonl/2026/11/02/09.jsonl.gz')?.sort()).toEqual(
      [makeAlert(1, 1), makeAlert(2, 2)].map((x) => JSON.stringify(x)).sort(),
    );
    expect(endpoint.requestsTo('objectstorage.putObject').some((r) => r.status === 412)).toBe(true);
  });

  it('retries 503s and fails with SINK_FAILED naming the object otherwise', async () => {
    const sink = new ObjectStorageSink({ writer, format: 'ecs' });
    endpoint.faults.failNext('objectstorage.putObject', 2, 503);
    await sink.send([makeAlert(1, 1)]);
    expect(objectLines('alerts/ecs/2026/11/02/09.jsonl.gz')).toHaveLength(1);

    const located = vi.fn();
    const missing = new ObjectStorageSink({
      writer: new ObjectStorageWriter({ client, bucket: 'no-such-bucket', namespace: 'acmecorp', retry }),
      format: 'ecs',
      located,
    });
    await expect(missing.send([makeAlert(2, 1)])).rejects.toMatchObject({
      code: 'SINK_FAILED',
      details: { object: 'alerts/ecs/2026/11/02/09.jsonl.gz', status: 404 },
    });
    expect(located).not.toHaveBeenCalled();
  });
});
