// The local OCI endpoint checks signatures the way OCI does, exercised with the real SDK clients
// and with raw requests that replay (and tamper with) what the SDK sent.
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import * as common from 'oci-common';
import type * as ons from 'oci-ons';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createOciClient } from '../../shared/oci/clients.js';
import { notificationsService } from '../oci-endpoint/notifications.js';
import { objectStorageService } from '../oci-endpoint/object-storage.js';
import { type OciEndpoint, startOciEndpoint } from '../oci-endpoint/server.js';
import {
  createTestPrincipal,
  generateTestKeyPair,
  parseAuthorization,
  signHeaders,
  type TestPrincipal,
} from '../oci-endpoint/signature.js';

const TOPIC = 'ocid1.onstopic.oc1..alerts';
let principal: TestPrincipal;
let endpoint: OciEndpoint;
let client: ons.NotificationDataPlaneClient;

beforeAll(async () => {
  principal = createTestPrincipal();
  endpoint = await startOciEndpoint({
    ...principal.endpointOptions,
    handlers: [notificationsService().handler, objectStorageService({ buckets: ['reports'] }).handler],
  });
  const auth = new common.ConfigFileAuthenticationDetailsProvider(principal.configFile, principal.profile);
  client = await createOciClient('notifications', { auth, endpoint: endpoint.url });
});

afterAll(async () => {
  await endpoint.close();
  principal.cleanup();
});

afterEach(() => {
  endpoint.setClockOffset(0);
  endpoint.faults.clear();
  vi.restoreAllMocks();
});

// The SDK warns on stderr for every failed call; keep test output readable.
const quietSdk = () => vi.spyOn(console, 'warn').mockImplementation(() => undefined);

function raw(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; json: { code?: string; message?: string } }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${endpoint.url}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : {} });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The SDK's request headers, as a plain object a raw request can send again. */
function replayable(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (typeof v === 'string' && k !== 'connection' && k !== 'keep-alive') out[k] = v;
  }
  return out;
}

async function publishAndCapture(body: string) {
  const before = endpoint.requests.length;
  await client.publishMessage({ topicId: TOPIC, messageDetails: { title: 'hello', body } });
  const recorded = endpoint.requests[before]!;
  expect(recorded.status).toBe(200);
  return recorded;
}

describe('local OCI endpoint: signatures from the real SDK', () => {
  it('accepts a signed POST with the body headers signed, and records the key id', async () => {
    const recorded = await publishAndCapture('body one');
    const sig = parseAuthorization(String(recorded.headers.authorization));
    expect(sig?.keyId).toBe(principal.keyId);
    expect(sig?.algorithm).toBe('rsa-sha256');
    expect(sig?.headers.map((h) => h.toLowerCase())).toEqual([
      'x-date',
      '(request-target)',
      'host',
      'content-type',
      'content-length',
      'x-content-sha256',
    ]);
    expect(recorded.keyId).toBe(principal.keyId);
  });

  it('accepts a signed GET (no body headers) through another client', async () => {
    const auth = new common.ConfigFileAuthenticationDetailsProvider(principal.configFile, principal.profile);
    const os = await createOciClient('objectstorage', { auth, endpoint: endpoint.url });
    const ns = await os.getNamespace({});
    expect(ns.value).toBe('testnamespace');
  });

  it('accepts the exact replay of a signed request and rejects it once the body is changed', async () => {
    const original = JSON.stringify({ title: 'hello', body: 'transfer 10' });
    const recorded = await publishAndCapture('transfer 10');
    expect(recorded.rawBody.toString()).toBe(original);
    const headers = replayable(recorded.headers);
    const path = recorded.target;

    const replay = await raw('POST', path, headers, original);
    expect(replay.status).toBe(200);

    // Same length, different content: x-content-sha256 no longer matches.
    const tampered = original.replace('10', '99');
    const rejected = await raw('POST', path, headers, tampered);
    expect(rejected).toEqual({
      status: 401,
      json: { code: 'NotAuthenticated', message: expect.any(String) },
    });
    expect(endpoint.requests.at(-1)?.authFailure).toBe('body-hash-mismatch');

    // Tampered body *and* a matching hash: the signature covers x-content-sha256, so it fails.
    const rehashed = {
      ...headers,
      'x-content-sha256': (await import('node:crypto'))
        .createHash('sha256')
        .update(tampered)
        .digest('base64'),
    };
    const forged = await raw('POST', path, rehashed, tampered);
    expect(forged.status).toBe(401);
    expect(endpoint.requests.at(-1)?.authFailure).toBe('bad-signature');

    // Another path with the same signature.
    const moved = await raw('POST', path.replace('alerts', 'other'), headers, original);
    expect(moved.status).toBe(401);
    expect(endpoint.requests.at(-1)?.authFailure).toBe('bad-signature');
  });

  it('rejects a request whose clock is more than 5 minutes off, and accepts one within', async () => {
    quietSdk();
    endpoint.setClockOffset(6 * 60_000);
    const error = await client
      .publishMessage({ topicId: TOPIC, messageDetails: { body: 'late' } })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ statusCode: 401, serviceCode: 'NotAuthenticated' });
    expect(endpoint.requests.at(-1)?.authFailure).toBe('clock-skew');

    endpoint.setClockOffset(-6 * 60_000);
    const early = await client
      .publishMessage({ topicId: TOPIC, messageDetails: { body: 'early' } })
      .catch((e: unknown) => e);
    expect(early).toMatchObject({ statusCode: 401 });

    endpoint.setClockOffset(4 * 60_000);
    const ok = await client.publishMessage({ topicId: TOPIC, messageDetails: { body: 'in time' } });
    expect(ok.publishResult.messageId).toBeTruthy();
  });

  it('rejects unsigned requests, unknown keys, wrong keys and unsigned bodies', async () => {
    const path = `/20181201/topics/${TOPIC}/messages`;
    const body = JSON.stringify({ body: 'x' });
    const url = `${endpoint.url}${path}`;
    const sign = (over: Partial<Parameters<typeof signHeaders>[0]> = {}) =>
      signHeaders({
        method: 'POST',
        url,
        keyId: principal.keyId,
        privateKeyPem: principal.privateKeyPem,
        body,
        ...over,
      });

    const unsigned = await raw('POST', path, { 'content-type': 'application/json' }, body);
    expect(unsigned).toEqual({
      status: 401,
      json: { code: 'NotAuthenticated', message: expect.any(String) },
    });
    expect(endpoint.requests.at(-1)?.authFailure).toBe('missing-authorization');

    const good = sign();
    expect((await raw('POST', path, good, body)).status).toBe(200);

    const unknown = sign({ keyId: 'ocid1.tenancy.oc1..x/ocid1.user.oc1..y/aa:bb' });
    expect((await raw('POST', path, unknown, body)).status).toBe(401);
    expect(endpoint.requests.at(-1)?.authFailure).toBe('unknown-key');

    const stranger = generateTestKeyPair();
    const wrongKey = sign({ privateKeyPem: stranger.privateKeyPem });
    expect((await raw('POST', path, wrongKey, body)).status).toBe(401);
    expect(endpoint.requests.at(-1)?.authFailure).toBe('bad-signature');

    // PublishMessage is not one of the operations that may leave the body out of the signature.
    const bodyless = sign({ excludeBody: true });
    expect((await raw('POST', path, { ...bodyless, 'content-type': 'application/json' }, body)).status).toBe(
      401,
    );
    expect(endpoint.requests.at(-1)?.authFailure).toBe('body-not-signed');

    const stale = sign({ date: new Date(Date.now() - 10 * 60_000) });
    expect((await raw('POST', path, stale, body)).status).toBe(401);
    expect(endpoint.requests.at(-1)?.authFailure).toBe('clock-skew');
  });

  it('authenticates before routing: an unsigned request to an unknown path is a 401, a signed one a 404', async () => {
    expect((await raw('GET', '/nowhere', {})).status).toBe(401);
    const signed = signHeaders({
      method: 'GET',
      url: `${endpoint.url}/nowhere`,
      keyId: principal.keyId,
      privateKeyPem: principal.privateKeyPem,
    });
    const res = await raw('GET', '/nowhere', signed);
    expect(res).toEqual({
      status: 404,
      json: { code: 'NotAuthorizedOrNotFound', message: expect.any(String) },
    });
  });

  it('injects 429 and 5xx for the next N requests of a route, then serves normally', async () => {
    quietSdk();
    endpoint.faults.failNext('ons.publishMessage', 2, 429).failNext('ons', 1, 503);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await client.publishMessage({ topicId: TOPIC, messageDetails: { body: `n${i}` } }).then(
        () => 200,
        (e: { statusCode: number }) => e.statusCode,
      );
      statuses.push(r);
    }
    expect(statuses).toEqual([429, 429, 503, 200]);
    expect(endpoint.faults.pending()).toBe(0);
    expect(endpoint.faults.applied.get('429 ons.publishMessage')).toBe(2);
  });

  it('delays responses on demand', async () => {
    endpoint.faults.delayNext('ons.publishMessage', 1, 150);
    const t0 = Date.now();
    await client.publishMessage({ topicId: TOPIC, messageDetails: { body: 'slow' } });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
  });
});
