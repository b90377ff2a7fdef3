// Contract tests: dist/func.cjs under the real @fnproject/fdk, over its unix socket, as Fn runs it
// (FN_FORMAT=http-stream, FN_LISTENER=unix:..., POST /call with Fn-Call-Id, Fn-Deadline and
// Content-Type). `npm test` builds dist/ before vitest runs. Also: the function's OCI sinks with
// the real SDK clients and a resource principal against the signed local endpoint, and two
// function processes sharing a MySQL store (TEST_MYSQL_URL, see test/helpers/mysql-server.ts).

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ago,
  collectorRecord,
  DB,
  type FnProcess,
  type FnResponse,
  fleetConfigJson,
  GROUPS,
  mysql,
  oci,
  removeTempDirs,
  resourcePrincipal,
  startFunction,
  streamingBatch,
  tempDir,
  USERS,
  wholeSecond,
} from '../helpers/fdk-harness.js';
import { describeMySql } from '../helpers/mysql-server.js';
import { notificationsService } from '../oci-endpoint/notifications.js';
import { type OciEndpoint, startOciEndpoint } from '../oci-endpoint/server.js';
import { createTestPrincipal, generateTestKeyPair, type TestPrincipal } from '../oci-endpoint/signature.js';
import { type StreamingService, streamingService } from '../oci-endpoint/streaming.js';

const running: FnProcess[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((fn) => fn.stop()));
});

afterAll(() => removeTempDirs());

type Setup = { fn: FnProcess; dir: string; alertsFile: string; statePath: string };

async function start(env: Record<string, string> = {}, dir = tempDir()): Promise<Setup> {
  const alertsFile = join(dir, 'alerts.jsonl');
  const statePath = join(dir, 'state.sqlite');
  const fn = await startFunction({
    dir,
    env: {
      HWAUDIT_CONFIG: fleetConfigJson(),
      HWAUDIT_STATE: statePath,
      HWAUDIT_ALERTS_FILE: alertsFile,
      ...env,
    },
  });
  running.push(fn);
  return { fn, dir, alertsFile, statePath };
}

/** Times relative to now: the sweep advances the watermark to the wall clock. */
function timeline() {
  const now = wholeSecond();
  const bob = { conn: 7, account: 'emergency_admin', user: 'bob', ip: '203.0.113.7', proxy: true };
  const logging = JSON.stringify([
    oci.addUserToGroup({ id: `add-bob-bg-${now}`, at: ago.hours(5, now), user: USERS.bob, group: GROUPS.bg }),
    oci.interactiveLogin({
      id: `login-bob-${now}`,
      at: ago.minutes(298, now),
      user: USERS.bob,
      name: 'bob@example.com',
      ip: bob.ip,
      mfa: 'PUSH',
    }),
  ]);
  const streaming = JSON.stringify(
    streamingBatch([
      collectorRecord(mysql.connect({ ...bob, at: ago.minutes(290, now), id: 1 })),
      collectorRecord(mysql.disconnect({ ...bob, at: ago.minutes(280, now), id: 2 })),
    ]),
  );
  return { logging, streaming };
}

function summary(res: FnResponse): Record<string, unknown> {
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toBe('application/json');
  expect(res.json).toBeTypeOf('object');
  return res.json as Record<string, unknown>;
}

/** The FDK's 502 body: {message, detail: error.toString()}. */
function failure(res: FnResponse): string {
  expect(res.status).toBe(502);
  const body = res.json as { message: string; detail: string };
  expect(body.message).toBe('Exception in function, consult logs for details');
  return body.detail;
}

function alertLines(file: string): { id: string; rule: string }[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { id: string; rule: string });
}

describe('OCI Function over the real FDK', () => {
  it('ingests a Logging batch and a Streaming batch, then a sweep fires the stale break-glass timer', async () => {
    const { fn, alertsFile } = await start();
    const { logging, streaming } = timeline();

    const fromLogging = summary(await fn.call(logging));
    expect(fromLogging).toMatchObject({
      action: 'ingest',
      received: 2,
      duplicates: 0,
      deadLetters: {},
      alerts: 1,
    });
    const fromStream = summary(await fn.call(streaming, { contentType: 'application/octet-stream' }));
    expect(fromStream).toMatchObject({
      action: 'ingest',
      received: 2,
      duplicates: 0,
      deadLetters: {},
      alerts: 1,
    });
    const sweep = summary(await fn.call('{"action":"sweep"}'));
    expect(sweep).toMatchObject({ action: 'sweep', received: 0, alerts: 1 });
    // The watermark is now minus the lateness (PT1M).
    const lag = Date.now() - Date.parse(sweep.watermark as string);
    expect(lag).toBeGreaterThanOrEqual(60_000);
    expect(lag).toBeLessThan(90_000);

    expect(alertLines(alertsFile).map((a) => a.rule)).toEqual([
      'iam.privileged-group-change',
      'break-glass.used',
      'break-glass.stale',
    ]);
    // Every summary has every field.
    for (const s of [fromLogging, fromStream, sweep]) {
      expect(Object.keys(s).sort()).toEqual([
        'action',
        'alerts',
        'deadLetters',
        'duplicates',
        'ignored',
        'late',
        'processed',
        'received',
        'watermark',
      ]);
    }
  });

  it('a redelivered batch gives duplicates and no second alert', async () => {
    const { fn, alertsFile } = await start();
    const { logging, streaming } = timeline();
    summary(await fn.call(logging));
    summary(await fn.call(streaming));
    expect(summary(await fn.call(streaming))).toMatchObject({
      received: 2,
      duplicates: 2,
      processed: 0,
      alerts: 0,
    });
    expect(summary(await fn.call(logging))).toMatchObject({ received: 2, duplicates: 2, alerts: 0 });
    const ids = alertLines(alertsFile).map((a) => a.id);
    expect(ids).toHaveLength(2);
    expect(new Set(ids).size).toBe(2);
  });

  it('writes alerts to stdout (the function log) when no alerts file is set', async () => {
    const { fn } = await start({ HWAUDIT_ALERTS_FILE: '' });
    summary(await fn.call(timeline().logging));
    const alerts = fn
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { rule: string });
    expect(alerts.map((a) => a.rule)).toEqual(['iam.privileged-group-change']);
    // The invocation log line goes to stderr, with the call id.
    expect(fn.stderr()).toMatch(/"msg":"invocation","callId":"01/);
  });

  it('answers a malformed body with a clear error and keeps running', async () => {
    const { fn } = await start();
    const res = summary(
      await fn.call('[{"specversion":"1.0","data":{"identity":{"principalName":"bob@example.com"'),
    );
    expect(res).toMatchObject({
      received: 1,
      deadLetters: { JSON_INVALID: 1 },
      alerts: 0,
      error: {
        code: 'INPUT_UNREADABLE',
        status: 400,
        message: expect.stringMatching(/^body is not valid JSON/),
      },
    });
    expect(JSON.stringify(res)).not.toContain('bob@');
    expect(fn.alive()).toBe(true);
    expect(summary(await fn.call(timeline().logging))).toMatchObject({ received: 2, alerts: 1 });
  });

  it('refuses a body over HWAUDIT_MAX_BODY_BYTES with a 413-like result', async () => {
    const { fn } = await start({ HWAUDIT_MAX_BODY_BYTES: '1024' });
    const big = JSON.stringify(
      streamingBatch(
        Array.from({ length: 20 }, (_, i) =>
          collectorRecord(
            mysql.connect({ at: Date.now(), id: i, conn: i, account: 'app', user: 'app', ip: '192.0.2.1' }),
          ),
        ),
      ),
    );
    const res = summary(await fn.call(big));
    expect(res).toMatchObject({
      received: 1,
      deadLetters: { TOO_LARGE: 1 },
      error: { code: 'PAYLOAD_TOO_LARGE', status: 413 },
    });
    expect(fn.alive()).toBe(true);
  });

  it('stops buffering a chunked body one byte past the limit: 48 MB sent, memory stays near the limit', async () => {
    const { fn } = await start({ HWAUDIT_MAX_BODY_BYTES: String(1024 * 1024) });
    const peakKb = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${fn.pid}/status`, 'utf8'))?.[1]);
    // A first call loads the store and the pipeline; the growth measured is the big body's.
    await fn.call(timeline().logging);
    const before = peakKb();
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        {
          socketPath: fn.socket,
          path: '/call',
          method: 'POST',
          headers: { 'Fn-Call-Id': 'big', 'Fn-Deadline': new Date(Date.now() + 60_000).toISOString() },
        },
        (r) => {
          let text = '';
          r.on('data', (c: Buffer) => (text += c));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      let sent = 0;
      const more = () => {
        while (sent < 48) {
          sent++;
          if (!req.write(chunk)) return void req.once('drain', more);
        }
        req.end();
      };
      more();
    });
    expect(JSON.parse(res.text)).toMatchObject({
      deadLetters: { TOO_LARGE: 1 },
      error: { code: 'PAYLOAD_TOO_LARGE', status: 413 },
    });
    // The function's peak RSS grew by less than the 48 MB sent (buffering it all: about 100 MB).
    expect(peakKb() - before).toBeLessThan(48 * 1024);
    expect(fn.alive()).toBe(true);
  });

  it('fails with CONFIG_INVALID naming the key (502) and stays up', async () => {
    const { fn } = await start({ HWAUDIT_CONFIG: fleetConfigJson({ lateness: 'twenty minutes' }) });
    const detail = failure(await fn.call(timeline().logging));
    expect(detail).toMatch(
      /^FunctionError: CONFIG_INVALID: invalid configuration \(HWAUDIT_CONFIG\):\s+lateness: expected an ISO 8601 duration/,
    );
    expect(fn.alive()).toBe(true);
  });

  it('a state store that cannot be opened gives 502; once fixed, the retry succeeds', async () => {
    const dir = tempDir();
    const blocked = join(dir, 'state');
    writeFileSync(blocked, 'a file where the state folder should be');
    const { fn, alertsFile } = await start({ HWAUDIT_STATE: join(blocked, 'audit.sqlite') }, dir);
    const { logging } = timeline();
    const detail = failure(await fn.call(logging));
    expect(detail).toMatch(
      /USAGE: the state file \S+audit\.sqlite cannot be opened: check that it is a file, in a folder that exists and is writable \(SQLITE_CANTOPEN\)/,
    );
    expect(fn.alive()).toBe(true);
    rmSync(blocked);
    mkdirSync(blocked);
    expect(summary(await fn.call(logging))).toMatchObject({ received: 2, duplicates: 0, alerts: 1 });
    expect(alertLines(alertsFile)).toHaveLength(1);
  });

  it('a commit failure mid-run gives 502 and drops the pipeline; the retry re-opens the store and does the batch once', async () => {
    const { fn, statePath, alertsFile } = await start();
    const { logging, streaming } = timeline();
    summary(await fn.call(logging));
    // Another writer holds the SQLite write lock: the function's commit times out (busy_timeout 5 s).
    const other = new Database(statePath);
    other.exec('BEGIN IMMEDIATE');
    try {
      const detail = failure(await fn.call(streaming));
      expect(detail).toMatch(
        /^FunctionError: STORE_FAILED: state store commit failed \(SQLITE_BUSY\); the pipeline was dropped/,
      );
      expect(detail).not.toContain('bob');
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    expect(fn.alive()).toBe(true);
    // A pipeline kept after the failure would count the batch as duplicates and lose it.
    expect(summary(await fn.call(streaming))).toMatchObject({ received: 2, duplicates: 0, alerts: 1 });
    expect(summary(await fn.call(streaming))).toMatchObject({ duplicates: 2, alerts: 0 });
    expect(alertLines(alertsFile).map((a) => a.rule)).toEqual([
      'iam.privileged-group-change',
      'break-glass.used',
    ]);
  });

  it('refuses a batch too close to Fn-Deadline before touching state; the redelivery does the work', async () => {
    const { fn, statePath, alertsFile } = await start({ HWAUDIT_DEADLINE_MARGIN_MS: '1500' });
    const { logging } = timeline();
    const detail = failure(await fn.call(logging, { deadline: new Date(Date.now() + 300) }));
    expect(detail).toMatch(
      /^FunctionError: DEADLINE: the batch was not ingested: \d+ ms left before Fn-Deadline, about 1500 ms needed .*no state was written/,
    );
    expect(existsSync(statePath)).toBe(false);
    expect(fn.alive()).toBe(true);
    expect(summary(await fn.call(logging, { deadline: new Date(Date.now() + 30_000) }))).toMatchObject({
      received: 2,
      duplicates: 0,
      alerts: 1,
    });
    expect(alertLines(alertsFile)).toHaveLength(1);
  });

  it('starts afresh each time on the socket Fn gives it (cold start time is measured by npm run bench)', async () => {
    for (let i = 0; i < 2; i++) {
      const { fn } = await start();
      expect(fn.readyMs).toBeGreaterThan(0);
      expect(summary(await fn.call('{"action":"sweep"}'))).toMatchObject({ action: 'sweep', received: 0 });
      await fn.stop();
    }
  });
});

describe('OCI Function with OCI sinks (real SDK clients, resource principal, signed local endpoint)', () => {
  const STREAM = 'ocid1.stream.oc1.iad.alerts';
  const TOPIC = 'ocid1.onstopic.oc1.iad.alerts';
  const issuer = generateTestKeyPair();
  let principal: TestPrincipal;
  let streaming: StreamingService;
  let ons: ReturnType<typeof notificationsService>;
  let endpoint: OciEndpoint;

  beforeAll(async () => {
    principal = createTestPrincipal();
    streaming = streamingService({ streams: [{ id: STREAM, partitions: 1 }] });
    ons = notificationsService({ knownTopics: [TOPIC] });
    endpoint = await startOciEndpoint({
      ...principal.endpointOptions,
      tokenIssuerPublicKeyPem: issuer.publicKeyPem,
      handlers: [streaming.handler, ons.handler],
    });
  });

  afterAll(async () => {
    await endpoint?.close();
    principal?.cleanup();
  });

  function streamed(): { key: string | null; value: Record<string, unknown> }[] {
    return streaming.messages(STREAM, 0).map((m) => ({
      key: m.key === null ? null : Buffer.from(m.key, 'base64').toString('utf8'),
      value: JSON.parse(Buffer.from(m.value, 'base64').toString('utf8')) as Record<string, unknown>,
    }));
  }

  function digestIds(): string[] {
    return ons.published.flatMap((p) => /Alert ids \(\d+\): (.*)$/m.exec(p.body)?.[1]?.split(' ') ?? []);
  }

  it('publishes every alert to the stream (OCSF) and digests to the topic, signed with the RPST; a sink failure is a 502 and the retry delivers', async () => {
    const dir = tempDir();
    const rp = resourcePrincipal({ issuer, tenancy: principal.tenancy, dir });
    const { fn, alertsFile } = await start(
      {
        ...rp.env,
        HWAUDIT_ALERT_FORMAT: 'ocsf',
        HWAUDIT_ALERT_STREAM_ID: STREAM,
        HWAUDIT_NOTIFICATIONS_TOPIC_ID: TOPIC,
        HWAUDIT_OCI_ENDPOINT: endpoint.url,
      },
      dir,
    );
    const { logging, streaming: stream } = timeline();
    const before = endpoint.requests.length;

    expect(summary(await fn.call(logging))).toMatchObject({ received: 2, alerts: 1 });
    // The stream refuses the next PutMessages (404 is not retried): the invocation fails, sanitized.
    endpoint.faults.failNext('streaming.putMessages', 1, 404);
    const detail = failure(await fn.call(stream));
    expect(detail).toMatch(
      /^FunctionError: SINK_FAILED: oci-stream: PutMessages could not deliver 1 alert\(s\) \(status 404, NotAuthorizedOrNotFound\).*the pipeline was dropped/,
    );
    expect(detail).not.toContain('bob');
    expect(fn.alive()).toBe(true);
    // Connector Hub redelivers the batch: a duplicate, and the undelivered alert goes out now.
    expect(summary(await fn.call(stream))).toMatchObject({ received: 2, duplicates: 2, alerts: 0 });
    expect(summary(await fn.call('{"action":"sweep"}'))).toMatchObject({ alerts: 1 });

    // The alerts file has the same format: OCSF Detection Findings.
    const ocsf = alertLines(alertsFile) as unknown as { class_uid: number; finding_info: { uid: string } }[];
    expect(ocsf.every((a) => a.class_uid === 2004)).toBe(true);
    const ids = ocsf.map((a) => a.finding_info.uid);
    expect(new Set(ids).size).toBe(3);
    // The stream holds each alert once, in the same format, keyed by DB system when it has one
    // (the stale break-glass membership is an IAM finding: no DB system).
    const messages = streamed();
    expect(messages.map((m) => (m.value.finding_info as { uid: string }).uid)).toEqual(ids);
    expect(messages.map((m) => m.key)).toEqual([null, DB.id, null]);
    // One digest per alert here (three rules), every alert id in exactly one.
    expect(ons.published).toHaveLength(3);
    expect(digestIds().sort()).toEqual([...ids].sort());
    expect(ons.published.map((p) => p.title)).toEqual([
      expect.stringMatching(/iam\.privileged-group-change: 1 alert$/),
      expect.stringMatching(/break-glass\.used: 1 alert$/),
      expect.stringMatching(/break-glass\.stale: 1 alert$/),
    ]);
    // Every OCI request was signed with the resource principal's session key (keyId ST$<RPST>).
    const calls = endpoint.requests.slice(before);
    expect(calls.map((r) => r.route).sort()).toEqual([
      'ons.publishMessage',
      'ons.publishMessage',
      'ons.publishMessage',
      'streaming.putMessages',
      'streaming.putMessages',
      'streaming.putMessages',
      'streaming.putMessages',
    ]);
    expect(calls.every((r) => r.keyId === `ST$${rp.rpst}` && r.authFailure === undefined)).toBe(true);
    expect(calls.map((r) => r.status).filter((s) => s !== 200)).toEqual([404]);
  });

  it('a stream still failing when the next invocation opens keeps none of its batch from being processed, nor its alert from the topic', async () => {
    const dir = tempDir();
    const rp = resourcePrincipal({ issuer, tenancy: principal.tenancy, dir });
    const { fn, alertsFile } = await start(
      {
        ...rp.env,
        HWAUDIT_ALERT_STREAM_ID: STREAM,
        HWAUDIT_NOTIFICATIONS_TOPIC_ID: TOPIC,
        HWAUDIT_OCI_ENDPOINT: endpoint.url,
      },
      dir,
    );
    const streamedBefore = streamed().length;
    const publishedBefore = digestIds().length;
    const { logging } = timeline();
    // The stream is deleted (404, not retried) from the first batch on.
    endpoint.faults.failNext('streaming.putMessages', 100, 404);
    expect(failure(await fn.call(logging))).toMatch(/^FunctionError: SINK_FAILED: oci-stream: /);
    const [first] = alertLines(alertsFile);
    // The next batch holds a new incident: the pipeline re-opens with the stream's backlog failing.
    const now = wholeSecond();
    const next = JSON.stringify([
      oci.addUserToGroup({
        id: `add-carol-bg-${now}`,
        at: ago.hours(4, now),
        user: USERS.carol,
        group: GROUPS.bg,
      }),
      // Later in the audit trail: the watermark passes the membership.
      oci.interactiveLogin({
        id: `login-carol-${now}`,
        at: ago.minutes(180, now),
        user: USERS.carol,
        name: 'carol@example.com',
        ip: '203.0.113.9',
        mfa: 'PUSH',
      }),
    ]);
    const detail = failure(await fn.call(next));
    expect(detail).toMatch(
      /^FunctionError: SINK_FAILED: oci-stream: PutMessages could not deliver 1 alert\(s\)/,
    );
    expect(detail).not.toContain('carol');
    // Processed all the same: the new alert is in the alerts file and on the topic.
    const lines = alertLines(alertsFile);
    expect(lines.map((a) => a.rule)).toEqual(['iam.privileged-group-change', 'iam.privileged-group-change']);
    expect(digestIds().slice(publishedBefore)).toEqual([first!.id, lines[1]!.id]);
    expect(streamed()).toHaveLength(streamedBefore);
    // The stream is back: the redelivered batch is all duplicates, and the stream gets what it missed.
    endpoint.faults.clear();
    expect(summary(await fn.call(next))).toMatchObject({ received: 2, duplicates: 2, alerts: 0 });
    expect(
      streamed()
        .slice(streamedBefore)
        .map((m) => m.value.id),
    ).toEqual(lines.map((a) => a.id));
    expect(digestIds().slice(publishedBefore)).toHaveLength(2);
    expect(alertLines(alertsFile)).toHaveLength(2);
  });
});

describeMySql('OCI Function on a shared MySQL store', (server) => {
  it('two function processes share the state: a redelivered batch gives duplicates and no second alert', async () => {
    const db = await server.createDatabase();
    const password = process.env.HWAUDIT_STATE_PASSWORD ?? '';
    const env = { HWAUDIT_STATE: db.url, HWAUDIT_STATE_PASSWORD: password };
    // Two containers of the function: same store, same scope, each its own alerts file.
    const a = await start(env);
    const b = await start(env);
    const { logging, streaming } = timeline();

    // B's pipeline is open (warm) before A ingests anything.
    expect(summary(await b.fn.call('{not json'))).toMatchObject({ deadLetters: { JSON_INVALID: 1 } });
    expect(summary(await a.fn.call(logging))).toMatchObject({ received: 2, duplicates: 0, alerts: 1 });
    // Bob's break-glass membership arrived through A; B reloads it, so it attributes his session.
    expect(summary(await b.fn.call(streaming))).toMatchObject({ received: 2, duplicates: 0, alerts: 1 });
    // Connector Hub redelivers each batch, to the other container this time.
    expect(summary(await a.fn.call(streaming))).toMatchObject({
      received: 2,
      duplicates: 2,
      processed: 0,
      alerts: 0,
    });
    expect(summary(await b.fn.call(logging))).toMatchObject({ received: 2, duplicates: 2, alerts: 0 });
    // The stale break-glass timer fires once, in whichever container sweeps first.
    expect(summary(await a.fn.call('{"action":"sweep"}'))).toMatchObject({ alerts: 1 });
    expect(summary(await b.fn.call('{"action":"sweep"}'))).toMatchObject({ alerts: 0 });

    const all = [...alertLines(a.alertsFile), ...alertLines(b.alertsFile)];
    expect(all.map((x) => x.rule).sort()).toEqual([
      'break-glass.stale',
      'break-glass.used',
      'iam.privileged-group-change',
    ]);
    expect(new Set(all.map((x) => x.id)).size).toBe(3);
    expect(alertLines(b.alertsFile).map((x) => x.rule)).toEqual(['break-glass.used']);

    // Every invocation that needed the pipeline reloaded the state (openMs in its log line).
    const logs = [a.fn, b.fn].flatMap((f) =>
      f
        .stderr()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg: string; openMs?: number }),
    );
    expect(logs.filter((l) => l.msg === 'invocation')).toHaveLength(7);
    expect(logs.every((l) => l.msg !== 'invocation' || typeof l.openMs === 'number')).toBe(true);
    if (password !== '') {
      for (const f of [a.fn, b.fn]) expect(`${f.stdout()}${f.stderr()}`).not.toContain(password);
    }
  });
});
