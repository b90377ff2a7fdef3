// StreamSink against the local endpoint with the real oci-streaming client. The PutMessages
// handler here is a minimal stand-in (the full Streaming emulator lives in
// test/oci-endpoint/streaming.ts): it enforces the 1 MB limits and honours the shared
// putMessagesFailures hook.
import * as common from 'oci-common';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Alert } from '../../schemas/alert.js';
import { StreamSink } from '../../shared/emit/stream-sink.js';
import { AuditError } from '../../shared/errors.js';
import { createOciClient, type RetryPolicy } from '../../shared/oci/clients.js';
import { FAULT_HOOKS, type PutMessagesFailureSpec } from '../oci-endpoint/faults.js';
import { type OciEndpoint, ociError, type ServiceHandler, startOciEndpoint } from '../oci-endpoint/server.js';
import { createTestPrincipal, parseAuthorization, type TestPrincipal } from '../oci-endpoint/signature.js';
import { failedIndexes } from '../oci-endpoint/streaming.js';

const STREAM = 'ocid1.stream.oc1..alerts';
const DB_ID = 'ocid1.mysqldbsystem.oc1..prod';
const ONE_MB = 1024 * 1024;

interface Stored {
  key: string | null;
  value: string;
  offset: number;
}

const stored: Stored[] = [];

const putMessagesStub: ServiceHandler = {
  name: 'streaming',
  basePath: '/20180418',
  routes: [
    {
      name: 'putMessages',
      method: 'POST',
      pattern: '/streams/{streamId}/messages',
      unsignedBody: true,
      handle(req, ctx) {
        if (req.rawBody.length > ONE_MB) return ociError(400, 'InvalidParameter', 'Request exceeds 1 MB.');
        const messages = (req.body as { messages?: { key?: string; value: string }[] }).messages ?? [];
        if (messages.some((m) => m.value.length + (m.key?.length ?? 0) > ONE_MB)) {
          return ociError(400, 'InvalidParameter', 'Message exceeds 1 MB.');
        }
        const failing = failedIndexes(
          ctx.faults.take<PutMessagesFailureSpec>(req.route, FAULT_HOOKS.putMessagesFailures),
          messages.length,
        );
        let failures = 0;
        const entries = messages.map((m, i) => {
          if (failing.indexes.has(i)) {
            failures++;
            return { error: failing.errorCode, errorMessage: 'injected' };
          }
          stored.push({ key: m.key ?? null, value: m.value, offset: stored.length });
          return { partition: '0', offset: stored.length - 1, timestamp: new Date(ctx.now()).toISOString() };
        });
        return { status: 200, body: { failures, entries } };
      },
    },
  ],
};

let principal: TestPrincipal;
let endpoint: OciEndpoint;
let client: Awaited<ReturnType<typeof createOciClient<'streaming'>>>;

beforeAll(async () => {
  principal = createTestPrincipal();
  endpoint = await startOciEndpoint({ ...principal.endpointOptions, handlers: [putMessagesStub] });
  const auth = new common.ConfigFileAuthenticationDetailsProvider(principal.configFile, principal.profile);
  client = await createOciClient('streaming', {
    auth,
    env: { HWAUDIT_OCI_ENDPOINT_STREAMING: endpoint.url },
  });
});

afterAll(async () => {
  await endpoint.close();
  principal.cleanup();
});

afterEach(() => {
  stored.length = 0;
  endpoint.requests.length = 0;
  endpoint.faults.clear();
  vi.restoreAllMocks();
});

const T0 = Date.parse('2026-11-01T00:00:00Z');

function makeAlert(i: number, extra: Partial<Alert> = {}): Alert {
  return {
    id: i.toString(16).padStart(32, '0'),
    rule: 'access.local-account',
    severity: 'high',
    time: new Date(T0 + i * 1000).toISOString(),
    title: `Local account admin@% logged in (${i})`,
    identity: { principalId: 'ocid1.user.oc1..alice', name: 'alice@example.com', attribution: null },
    dbSystem: { id: `ocid1.mysqldbsystem.oc1..prod${i % 3}`, name: `prod-${i % 3}` },
    evidence: [`ocid1.mysqldbsystem.oc1..prod${i % 3}:2026-11-01T00:00:00Z:${i}`],
    mysqlAccount: 'admin@%',
    status: 'open',
    ...extra,
  };
}

function testRetry(maxAttempts = 6): RetryPolicy & { delays: number[] } {
  const delays: number[] = [];
  return {
    maxAttempts,
    baseDelayMs: 8,
    maxDelayMs: 64,
    random: () => 0.5,
    delays,
    sleep: async (ms) => {
      delays.push(ms);
    },
  };
}

const decode = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');
const putRequests = () => endpoint.requestsTo('streaming.putMessages');
const sentIds = (i: number) =>
  (JSON.parse(putRequests()[i]!.rawBody.toString()).messages as { value: string }[]).map(
    (m) => (JSON.parse(decode(m.value)) as Alert).id,
  );
const quietSdk = () => vi.spyOn(console, 'warn').mockImplementation(() => undefined);

describe('StreamSink over the real oci-streaming client', () => {
  it('delivers 1,000 alerts: key = DB system id, value = the alert, body left out of the signature', async () => {
    const sink = new StreamSink({ client, streamId: STREAM, retry: testRetry() });
    const alerts = Array.from({ length: 1000 }, (_, i) => makeAlert(i));
    await sink.send(alerts);

    expect(stored).toHaveLength(1000);
    const first = stored[0]!;
    expect(decode(first.key!)).toBe('ocid1.mysqldbsystem.oc1..prod0');
    expect(JSON.parse(decode(first.value))).toEqual(alerts[0]);
    expect(new Set(stored.map((s) => (JSON.parse(decode(s.value)) as Alert).id)).size).toBe(1000);

    // 500 entries per request: 2 HTTP calls per 1,000 alerts, every one signed without the body.
    expect(putRequests()).toHaveLength(2);
    expect(sink.stats).toMatchObject({
      requests: 2,
      messagesSent: 1000,
      entriesRetried: 0,
      requestErrors: 0,
    });
    for (const r of putRequests()) {
      expect(r.status).toBe(200);
      const signed = parseAuthorization(String(r.headers.authorization))!.headers.map((h) => h.toLowerCase());
      expect(signed).toEqual(['x-date', '(request-target)', 'host']);
    }
  });

  it('resends exactly the failed entries of a 200 answer until all are delivered', async () => {
    endpoint.faults
      .arm('streaming.putMessages', FAULT_HOOKS.putMessagesFailures, 1, { indexes: [1, 3, 5] })
      .arm('streaming.putMessages', FAULT_HOOKS.putMessagesFailures, 1, {
        indexes: [2],
        errorCode: 'KeyThrottled',
      });
    const retry = testRetry();
    const sink = new StreamSink({ client, streamId: STREAM, retry });
    const alerts = Array.from({ length: 8 }, (_, i) => makeAlert(i));
    await sink.send(alerts);

    const ids = alerts.map((a) => a.id);
    expect(putRequests()).toHaveLength(3);
    expect(sentIds(0)).toEqual(ids);
    expect(sentIds(1)).toEqual([ids[1], ids[3], ids[5]]);
    expect(sentIds(2)).toEqual([ids[5]]);
    // Each alert stored exactly once.
    expect(stored.map((s) => (JSON.parse(decode(s.value)) as Alert).id).sort()).toEqual([...ids].sort());
    expect(sink.stats).toMatchObject({ requests: 3, messagesSent: 8, entriesRetried: 4 });
    expect(retry.delays).toEqual([6, 12]); // equal jitter with random 0.5: 3/4 of 8, 16
  });

  it('sends the failed entries of a 200 answer before the requests after theirs, keeping the order', async () => {
    endpoint.faults.arm('streaming.putMessages', FAULT_HOOKS.putMessagesFailures, 1, { indexes: [1] });
    const sink = new StreamSink({ client, streamId: STREAM, retry: testRetry(), maxRequestEntries: 2 });
    const alerts = Array.from({ length: 4 }, (_, i) =>
      makeAlert(i, { dbSystem: { id: DB_ID, name: 'prod' } }),
    );
    await sink.send(alerts);

    const ids = alerts.map((a) => a.id);
    expect([0, 1, 2].map(sentIds)).toEqual([[ids[0], ids[1]], [ids[1], ids[2]], [ids[3]]]);
    expect(stored.map((s) => (JSON.parse(decode(s.value)) as Alert).id)).toEqual(ids);
    expect(sink.stats).toMatchObject({ requests: 3, messagesSent: 4, entriesRetried: 1 });
  });

  it('backs off through a 429 storm and then succeeds, with bounded, growing delays', async () => {
    quietSdk();
    endpoint.faults.failNext('streaming.putMessages', 4, 429);
    const retry = testRetry(6);
    const sink = new StreamSink({ client, streamId: STREAM, retry });
    await sink.send([makeAlert(1), makeAlert(2)]);

    expect(putRequests().map((r) => r.status)).toEqual([429, 429, 429, 429, 200]);
    expect(stored).toHaveLength(2);
    expect(retry.delays).toEqual([6, 12, 24, 48]);
    expect(sink.stats.requestErrors).toBe(4);
  });

  it('uses real jitter within [cap/2, cap] when none is injected', async () => {
    quietSdk();
    endpoint.faults.failNext('streaming.putMessages', 3, 503);
    const delays: number[] = [];
    const sink = new StreamSink({
      client,
      streamId: STREAM,
      retry: { maxAttempts: 5, baseDelayMs: 4, maxDelayMs: 10, sleep: async (ms) => void delays.push(ms) },
    });
    await sink.send([makeAlert(1)]);
    const caps = [4, 8, 10];
    delays.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(caps[i]! / 2);
      expect(d).toBeLessThanOrEqual(caps[i]!);
    });
  });

  it('gives up after maxAttempts with SINK_FAILED so the pipeline re-sends later', async () => {
    quietSdk();
    endpoint.faults.failNext('streaming.putMessages', Number.POSITIVE_INFINITY, 503);
    const sink = new StreamSink({ client, streamId: STREAM, retry: testRetry(4) });
    const error = await sink.send([makeAlert(1), makeAlert(2)]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuditError);
    expect(error).toMatchObject({
      code: 'SINK_FAILED',
      details: { undelivered: 2, status: 503, serviceCode: 'ServiceUnavailable' },
    });
    expect(putRequests()).toHaveLength(4);
  });

  it('gives up when entries keep failing inside 200 answers, naming how many are left', async () => {
    endpoint.faults.arm('streaming.putMessages', FAULT_HOOKS.putMessagesFailures, Number.POSITIVE_INFINITY, {
      first: 1,
    });
    const sink = new StreamSink({ client, streamId: STREAM, retry: testRetry(3) });
    const error = await sink.send([makeAlert(1), makeAlert(2), makeAlert(3)]).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'SINK_FAILED', details: { undelivered: 1, status: 200 } });
    expect(stored).toHaveLength(2);
  });

  it('does not retry a request the service refuses (400) and reports it', async () => {
    quietSdk();
    endpoint.faults.failNext('streaming.putMessages', 1, 400);
    const sink = new StreamSink({ client, streamId: STREAM, retry: testRetry() });
    const error = await sink.send([makeAlert(1)]).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'SINK_FAILED',
      details: { status: 400, serviceCode: 'InvalidParameter' },
    });
    expect(putRequests()).toHaveLength(1);
  });

  it('splits requests under 1 MB and shrinks an alert larger than one message', async () => {
    const big = (i: number, kb: number) => makeAlert(i, { details: { blob: 'x'.repeat(kb * 1024) } });
    const alerts = [big(1, 300), big(2, 300), big(3, 300), big(4, 300), big(5, 1500), makeAlert(6)];
    const sink = new StreamSink({ client, streamId: STREAM, retry: testRetry() });
    await sink.send(alerts);

    expect(putRequests().every((r) => r.status === 200 && r.rawBody.length <= 1_000_000)).toBe(true);
    // Base64 makes each 300 KB alert ~400 KB: two fit a request, a third would not.
    expect(putRequests().map((r) => JSON.parse(r.rawBody.toString()).messages.length)).toEqual([2, 4]);
    expect(stored).toHaveLength(6);
    const shrunk = stored
      .map((s) => JSON.parse(decode(s.value)) as Alert)
      .find((a) => a.id === alerts[4]!.id)!;
    expect(shrunk.details).toEqual({ truncated: true, evidenceCount: 1 });
    expect(sink.stats.truncated).toBe(1);
  });

  it('formats values with the injected function and omits the key for alerts without a DB system', async () => {
    const sink = new StreamSink({
      client,
      streamId: STREAM,
      retry: testRetry(),
      format: (a) => `ALERT ${a.id}`,
    });
    await sink.send([makeAlert(7, { dbSystem: null })]);
    expect(stored[0]).toMatchObject({ key: null });
    expect(decode(stored[0]!.value)).toBe(`ALERT ${makeAlert(7).id}`);
  });
});
