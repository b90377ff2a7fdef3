// ObjectStorageWriter round trips through the real oci-objectstorage client and the local endpoint.
import * as common from 'oci-common';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ObjectStorageWriter } from '../../shared/emit/object-storage-writer.js';
import { createOciClient } from '../../shared/oci/clients.js';
import { type ObjectStorageService, objectStorageService } from '../oci-endpoint/object-storage.js';
import { type OciEndpoint, startOciEndpoint } from '../oci-endpoint/server.js';
import { createTestPrincipal, parseAuthorization, type TestPrincipal } from '../oci-endpoint/signature.js';

let principal: TestPrincipal;
let endpoint: OciEndpoint;
let os: ObjectStorageService;
let client: Awaited<ReturnType<typeof createOciClient<'objectstorage'>>>;

const retry = { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 4, sleep: async () => undefined };

beforeAll(async () => {
  principal = createTestPrincipal();
  os = objectStorageService({ namespace: 'acmecorp', buckets: ['audit-reports'] });
  endpoint = await startOciEndpoint({ ...principal.endpointOptions, handlers: [os.handler] });
  const auth = new common.ConfigFileAuthenticationDetailsProvider(principal.configFile, principal.profile);
  client = await createOciClient('objectstorage', {
    auth,
    env: { HWAUDIT_OCI_ENDPOINT_OBJECTSTORAGE: endpoint.url },
  });
});

afterAll(async () => {
  await endpoint.close();
  principal.cleanup();
});

afterEach(() => {
  endpoint.faults.clear();
  vi.restoreAllMocks();
});

describe('ObjectStorageWriter', () => {
  it('puts, gets and lists objects (namespace looked up once), names with slashes included', async () => {
    const writer = new ObjectStorageWriter({ client, bucket: 'audit-reports', retry });
    const report = JSON.stringify({ period: '2026-11', alerts: 3 });
    const put = await writer.put('reports/2026/11/summary.json', report, {
      contentType: 'application/json',
      meta: { run: 'r1' },
    });
    expect(put.etag).toMatch(/^etag-/);
    await writer.put('reports/2026/11/sessions.jsonl', Buffer.from('{"a":1}\n{"a":2}\n'));
    await writer.put('other/readme.txt', 'hi');

    const got = await writer.get('reports/2026/11/summary.json');
    expect(got).toEqual({ data: Buffer.from(report), contentType: 'application/json', etag: put.etag });
    expect(await writer.getText('reports/2026/11/sessions.jsonl')).toBe('{"a":1}\n{"a":2}\n');
    expect(os.buckets.get('acmecorp/audit-reports')?.get('reports/2026/11/summary.json')?.meta).toEqual({
      run: 'r1',
    });

    const listed = await writer.list('reports/');
    expect(listed.map((o) => [o.name, o.size])).toEqual([
      ['reports/2026/11/sessions.jsonl', 16],
      ['reports/2026/11/summary.json', report.length],
    ]);
    expect(listed[0]?.timeCreated).toBeInstanceOf(Date);
    expect(endpoint.requestsTo('objectstorage.getNamespace')).toHaveLength(1);

    // PutObject leaves its body out of the signature (like the SDK does); Content-MD5 guards it.
    const putReq = endpoint.requestsTo('objectstorage.putObject')[0]!;
    expect(parseAuthorization(String(putReq.headers.authorization))!.headers).toEqual([
      'x-date',
      '(request-target)',
      'host',
    ]);
    expect(putReq.headers['content-md5']).toBeTruthy();

    // Replaying that request with a changed body of the same length: the signature still holds,
    // Content-MD5 does not.
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(putReq.headers))
      if (typeof v === 'string' && k !== 'connection') headers[k] = v;
    const tampered = report.replace('3', '0');
    const res = await fetch(`${endpoint.url}${putReq.target}`, { method: 'PUT', headers, body: tampered });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'InvalidDigest' });
    expect(await writer.getText('reports/2026/11/summary.json')).toBe(report);
  });

  it('returns null for a missing object and follows list pages', async () => {
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const writer = new ObjectStorageWriter({ client, bucket: 'audit-reports', namespace: 'acmecorp', retry });
    expect(await writer.get('nope.json')).toBeNull();
    for (let i = 0; i < 1005; i++)
      os.buckets.get('acmecorp/audit-reports')!.set(`bulk/${String(i).padStart(4, '0')}`, {
        data: Buffer.from('x'),
        contentType: 'text/plain',
        etag: `e${i}`,
        md5: '',
        timeCreated: new Date(0).toISOString(),
        meta: {},
      });
    const listed = await writer.list('bulk/');
    expect(listed).toHaveLength(1005);
    expect(listed.at(-1)?.name).toBe('bulk/1004');
    expect(endpoint.requestsTo('objectstorage.getNamespace')).toHaveLength(1); // given, not looked up again
  });

  it('lists and pages names holding +, & and # (prefix and start are URL-encoded)', async () => {
    const writer = new ObjectStorageWriter({
      client,
      bucket: 'audit-reports',
      namespace: 'acmecorp',
      retry,
    });
    const bucket = os.buckets.get('acmecorp/audit-reports')!;
    const names = Array.from({ length: 1003 }, (_, i) => `a+b&c#d/${String(i).padStart(4, '0')}+x&y#z`);
    for (const name of names)
      bucket.set(name, {
        data: Buffer.from('x'),
        contentType: 'text/plain',
        etag: name,
        md5: '',
        timeCreated: new Date(0).toISOString(),
        meta: {},
      });
    bucket.set('a b&c', {
      data: Buffer.from('x'),
      contentType: 'text/plain',
      etag: 'other',
      md5: '',
      timeCreated: new Date(0).toISOString(),
      meta: {},
    });
    const listed = await writer.list('a+b&c#d/');
    expect(listed.map((o) => o.name)).toEqual(names);
    // The second page started at a name holding all three characters.
    const pages = endpoint.requestsTo('objectstorage.listObjects').slice(-2);
    expect(new URL(pages[1]!.target, endpoint.url).searchParams.get('start')).toBe(names[1000]);
  });

  it('write-once puts refuse to overwrite; deletes remove', async () => {
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const writer = new ObjectStorageWriter({ client, bucket: 'audit-reports', namespace: 'acmecorp', retry });
    await writer.put('once.txt', 'first', { ifNoneMatch: '*' });
    await expect(writer.put('once.txt', 'second', { ifNoneMatch: '*' })).rejects.toMatchObject({
      code: 'OCI_REQUEST_FAILED',
      details: { operation: 'objectstorage.putObject', status: 412 },
    });
    expect(await writer.getText('once.txt')).toBe('first');
    await writer.delete('once.txt');
    expect(await writer.get('once.txt')).toBeNull();
  });

  it('retries 503s (bounded) and reports a missing bucket without retrying', async () => {
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const writer = new ObjectStorageWriter({ client, bucket: 'audit-reports', namespace: 'acmecorp', retry });
    endpoint.faults.failNext('objectstorage.putObject', 2, 503);
    await writer.put('flaky.txt', 'ok');
    expect(
      endpoint
        .requestsTo('objectstorage.putObject')
        .slice(-3)
        .map((r) => r.status),
    ).toEqual([503, 503, 200]);

    endpoint.faults.failNext('objectstorage.getObject', Number.POSITIVE_INFINITY, 500);
    await expect(writer.get('flaky.txt')).rejects.toMatchObject({
      code: 'OCI_REQUEST_FAILED',
      details: { status: 500 },
    });
    endpoint.faults.clear();

    const before = endpoint.requests.length;
    const missing = new ObjectStorageWriter({
      client,
      bucket: 'no-such-bucket',
      namespace: 'acmecorp',
      retry,
    });
    await expect(missing.put('x', 'y')).rejects.toMatchObject({
      details: { status: 404, serviceCode: 'BucketNotFound' },
    });
    expect(endpoint.requests.length - before).toBe(1);
  });
});
