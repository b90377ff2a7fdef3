// HWAUDIT_ALERT_BUCKET: the function writes its alerts into hourly gzipped objects per format,
// through the real oci-objectstorage client against the signed local endpoint.
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type FunctionError, FunctionHost } from '../../functions/function-host.js';
import { fleetConfigJson, removeTempDirs, tempDir } from '../helpers/fdk-harness.js';
import { Lines, loggingBatch, N, streamBatch } from '../helpers/host-batches.js';
import { type ObjectStorageService, objectStorageService } from '../oci-endpoint/object-storage.js';
import { type OciEndpoint, startOciEndpoint } from '../oci-endpoint/server.js';
import { createTestPrincipal, type TestPrincipal } from '../oci-endpoint/signature.js';

let principal: TestPrincipal;
let endpoint: OciEndpoint;
let os: ObjectStorageService;

beforeAll(async () => {
  principal = createTestPrincipal();
  os = objectStorageService({ namespace: 'acmecorp', buckets: ['siem'] });
  endpoint = await startOciEndpoint({ ...principal.endpointOptions, handlers: [os.handler] });
});

afterAll(async () => {
  await endpoint.close();
  principal.cleanup();
  removeTempDirs();
});

beforeEach(() => {
  os.buckets.get('acmecorp/siem')!.clear();
  vi.spyOn(console, 'warn').mockImplementation(() => undefined); // the SDK's notes on 404s
});

function host(env: Record<string, string> = {}) {
  const stdout = new Lines();
  const h = new FunctionHost({
    env: {
      HWAUDIT_CONFIG: fleetConfigJson(),
      HWAUDIT_STATE: `${tempDir('hwaudit-bucket-')}/state.sqlite`,
      HWAUDIT_ALERT_BUCKET: 'siem',
      HWAUDIT_ALERT_BUCKET_FORMATS: 'ocsf,jsonl',
      HWAUDIT_OCI_AUTH: 'config-file',
      HWAUDIT_OCI_CONFIG_FILE: principal.configFile,
      HWAUDIT_OCI_ENDPOINT_OBJECTSTORAGE: endpoint.url,
      ...env,
    },
    now: () => N,
    stdout,
    stderr: new Lines(),
    ociRetry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
  });
  return { host: h, stdout };
}

function objects(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [name, obj] of os.buckets.get('acmecorp/siem')!)
    out.set(name, gunzipSync(obj.data).toString('utf8').trimEnd().split('\n'));
  return out;
}

describe('HWAUDIT_ALERT_BUCKET', () => {
  it('writes each alert once per format into the object of its hour; a redelivery writes nothing', async () => {
    const { host: h, stdout } = host();
    await h.invoke(loggingBatch());
    await h.invoke(streamBatch());
    const alerts = stdout.json();
    expect(alerts.map((a) => a.rule)).toEqual(['iam.privileged-group-change', 'break-glass.used']);
    const written = objects();
    const hour = (a: Record<string, unknown>) => String(a.time).slice(0, 13).replace(/[-T]/g, '/');
    for (const format of ['ocsf', 'jsonl']) {
      const lines = [...written]
        .filter(([name]) => name.startsWith(`alerts/${format}/`))
        .flatMap(([, l]) => l);
      expect(lines).toHaveLength(2);
    }
    for (const a of alerts) {
      expect(written.get(`alerts/jsonl/${hour(a)}.jsonl.gz`)).toContain(JSON.stringify(a));
      const ocsf = written.get(`alerts/ocsf/${hour(a)}.jsonl.gz`)!.map((l) => JSON.parse(l));
      expect(ocsf.some((f) => f.finding_info.uid === a.id)).toBe(true);
    }
    const puts = endpoint.requestsTo('objectstorage.putObject').length;
    expect(await h.invoke(streamBatch())).toMatchObject({ duplicates: 2, alerts: 0 });
    expect(endpoint.requestsTo('objectstorage.putObject')).toHaveLength(puts);
  });

  it('a bucket that cannot be written fails the call; the retry writes what is missing', async () => {
    const { host: h } = host({ HWAUDIT_ALERT_BUCKET: 'siem-later' });
    // One output per format: each failed, and each is named with its error.
    const failure = await h.invoke(loggingBatch()).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toMatchObject({ code: 'SINK_FAILED' });
    expect((failure as FunctionError).headline).toContain(
      'sinks=oci-object-storage:ocsf,oci-object-storage:jsonl',
    );
    expect((failure as FunctionError).problems).toEqual([
      expect.stringMatching(/^oci-object-storage:ocsf: .*cannot write alerts\/ocsf\//),
      expect.stringMatching(/^oci-object-storage:jsonl: .*cannot write alerts\/jsonl\//),
    ]);
    os.buckets.set('acmecorp/siem-later', new Map());
    expect(await h.invoke(loggingBatch())).toMatchObject({ duplicates: 2, alerts: 0 });
    expect([...os.buckets.get('acmecorp/siem-later')!.keys()].map((k) => k.split('/')[1])).toEqual([
      'ocsf',
      'jsonl',
    ]);
    os.buckets.delete('acmecorp/siem-later');
  });
});
