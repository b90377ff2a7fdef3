// Contract tests: dist/func.cjs under the real @fnproject/fdk, over its unix socket, as Fn runs it
// (FN_FORMAT=http-stream, FN_LISTENER=unix:..., POST /call with Fn-Call-Id, Fn-Deadline and
// Content-Type). `npm test` builds dist/ before vitest runs.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  ago,
  collectorRecord,
  type FnProcess,
  type FnResponse,
  fleetConfigJson,
  GROUPS,
  mysql,
  oci,
  removeTempDirs,
  startFunction,
  streamingBatch,
  tempDir,
  USERS,
  wholeSecond,
} from '../helpers/fdk-harness.js';

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

  it('fails with CONFIG_INVALID naming the key (502) and stays up', async () => {
    const { fn } = await start({ HWAUDIT_CONFIG: fleetConfigJson({ lateness: 'twenty minutes' }) });
    const detail = failure(await fn.call(timeline().logging));
    expect(detail).toMatch(
      /^FunctionError: CONFIG_INVALID: invalid configuration \(HWAUDIT_CONFIG\):\s+lateness: expected an ISO 8601 duration/,
    );
    expect(fn.alive()).toBe(true);
  });

  it('fails with "not supported yet" for a mysql:// state store, without echoing the URL', async () => {
    const { fn } = await start({ HWAUDIT_STATE: 'mysql://audit:hunter2@heatwave.example:3306/audit' });
    const detail = failure(await fn.call('{"action":"sweep"}'));
    expect(detail).toContain('HWAUDIT_STATE: a MySQL state store (mysql:// URL) is not supported yet');
    expect(detail).not.toContain('hunter2');
    expect(fn.stderr()).not.toContain('hunter2');
  });

  it('a state store that cannot be opened gives 502; once fixed, the retry succeeds', async () => {
    const dir = tempDir();
    const blocked = join(dir, 'state');
    writeFileSync(blocked, 'a file where the state folder should be');
    const { fn, alertsFile } = await start({ HWAUDIT_STATE: join(blocked, 'audit.sqlite') }, dir);
    const { logging } = timeline();
    const detail = failure(await fn.call(logging));
    expect(detail).toMatch(
      /STORE_FAILED: cannot open the SQLite state store \(SQLITE_CANTOPEN; path=.*\); the pipeline was dropped/,
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

  it('starts listening quickly (cold start: process start to socket ready)', async () => {
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const { fn } = await start();
      times.push(fn.readyMs);
      await fn.stop();
    }
    const average = times.reduce((a, b) => a + b, 0) / times.length;
    expect(average).toBeLessThan(3000);
  });
});
