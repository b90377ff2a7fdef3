// FunctionHost in-process (no FDK): routing, summaries, refusals, deadline, store and sink
// failures, settings, the shared-store reload and the OCI sinks (with fake SDK clients; the real
// clients against the signed local endpoint are in fdk-contract.test.ts, which runs the same
// behaviour over the real FDK).
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  FunctionError,
  FunctionHost,
  type InvocationSummary,
  type OciSinkClients,
  toFunctionError,
} from '../../functions/function-host.js';
import type { NotificationPublisher } from '../../shared/emit/notifications-sink.js';
import type { StreamPutter } from '../../shared/emit/stream-sink.js';
import { AuditError, errnoSuffix } from '../../shared/errors.js';
import type { RetryPolicy } from '../../shared/oci/clients.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import type { StateStore } from '../../shared/state/state-store.js';
import { collect } from '../helpers/collect.js';
import {
  ago,
  DB,
  fleetConfigJson,
  mysql,
  oci as ociEvents,
  removeTempDirs,
  tempDir,
} from '../helpers/fdk-harness.js';
import { Lines, loggingBatch, N, streamBatch } from '../helpers/host-batches.js';

afterAll(() => removeTempDirs());

/** Hosts made by the test, closed after it: their stores and alerts files (open handles). */
const hosts: FunctionHost[] = [];
afterEach(async () => {
  for (const host of hosts.splice(0)) await host.close();
});

const LATENESS_MS = 60_000;

type Harness = {
  host: FunctionHost;
  stdout: Lines;
  stderr: Lines;
  opened: () => number;
  clock: { now: number };
  statePath: string;
};

const FAST_RETRY: RetryPolicy = { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 };

function makeHost(
  opts: {
    env?: Record<string, string>;
    wrapStore?: (store: SqliteStore) => StateStore;
    statePath?: string;
    /** Open this SQLite file whatever HWAUDIT_STATE says (a stand-in for a shared mysql:// store). */
    sharedFile?: string;
    ociClients?: OciSinkClients;
    ociRetry?: RetryPolicy;
  } = {},
): Harness {
  const dir = tempDir('hwaudit-host-');
  const statePath = opts.sharedFile ?? opts.statePath ?? join(dir, 'state.sqlite');
  const stdout = new Lines();
  const stderr = new Lines();
  const clock = { now: N };
  let opened = 0;
  const host = new FunctionHost({
    env: { HWAUDIT_CONFIG: fleetConfigJson(), HWAUDIT_STATE: statePath, ...opts.env },
    now: () => clock.now,
    stdout,
    stderr,
    openStore: async (spec, { scope }) => {
      opened++;
      const store = SqliteStore.open(opts.sharedFile ?? spec, { scope });
      return opts.wrapStore ? opts.wrapStore(store) : store;
    },
    ...(opts.ociClients ? { ociClients: opts.ociClients, ociRetry: opts.ociRetry ?? FAST_RETRY } : {}),
  });
  hosts.push(host);
  return { host, stdout, stderr, opened: () => opened, clock, statePath };
}

/** A store whose next commit fails (once per `failures.commit`), like a full disk. */
function flaky(store: SqliteStore, failures: { commit: number }): StateStore {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'commit' && failures.commit > 0) {
        return async () => {
          failures.commit--;
          const cause = Object.assign(new Error("disk I/O error writing 'bob@example.com'"), {
            code: 'SQLITE_IOERR',
          });
          throw new AuditError('STORE_FAILED', 'state store commit failed', { cause });
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

async function rejection(promise: Promise<unknown>): Promise<FunctionError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(FunctionError);
    return error as FunctionError;
  }
  throw new Error('expected the invocation to fail');
}

function expectSummaryShape(s: InvocationSummary): void {
  expect(s).toBeTypeOf('object');
  for (const key of ['received', 'processed', 'duplicates', 'ignored', 'late', 'alerts'] as const)
    expect(s[key]).toBeTypeOf('number');
  expect(s.deadLetters).toBeTypeOf('object');
  expect(s.watermark === null || typeof s.watermark === 'string').toBe(true);
}

/** A raw MySQL audit connect of admin, naming no DB system (it needs HWAUDIT_DB_SYSTEM or one configured). */
function rawAdminConnect(): Record<string, unknown> {
  return mysql.connect({
    at: ago.hours(4, N),
    id: 9,
    conn: 9,
    account: 'admin',
    user: 'admin',
    ip: '192.0.2.9',
  });
}

describe('FunctionHost routing', () => {
  it('ingests a Logging batch and a Streaming batch, and a sweep fires the break-glass timer', async () => {
    const h = makeHost();
    const logging = await h.host.invoke(loggingBatch(), { callId: 'c1' });
    expect(logging).toMatchObject({
      action: 'ingest',
      received: 2,
      duplicates: 0,
      deadLetters: {},
      alerts: 1,
    });
    const stream = await h.host.invoke(Buffer.from(streamBatch()), { callId: 'c2' });
    expect(stream).toMatchObject({ action: 'ingest', received: 2, duplicates: 0, alerts: 1 });
    const sweep = await h.host.invoke('{"action":"sweep"}', { callId: 'c3' });
    expect(sweep).toMatchObject({
      action: 'sweep',
      received: 0,
      alerts: 1,
      watermark: new Date(N - LATENESS_MS).toISOString(),
    });
    // Alerts go to stdout as JSON lines when no alerts file is set.
    expect(h.stdout.json().map((a) => a.rule)).toEqual([
      'iam.privileged-group-change',
      'break-glass.used',
      'break-glass.stale',
    ]);
    // One log line per invocation on stderr, with the call id.
    expect(h.stderr.json().map((l) => [l.callId, l.msg])).toEqual([
      ['c1', 'invocation'],
      ['c2', 'invocation'],
      ['c3', 'invocation'],
    ]);
  });

  it('counts a redelivered batch as duplicates and emits no alert twice', async () => {
    const h = makeHost();
    await h.host.invoke(loggingBatch());
    await h.host.invoke(streamBatch());
    const again = await h.host.invoke(streamBatch());
    expect(again).toMatchObject({ received: 2, duplicates: 2, processed: 0, alerts: 0 });
    const ids = h.stdout.json().map((a) => a.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('counts the events of other services as ignored: neither applied nor kept, their time moves the watermark', async () => {
    const h = makeHost();
    const objects = [1, 2, 3].map((i) =>
      ociEvents.getObject({ id: `ev-get-${i}`, at: ago.minutes(240 - i, N) }),
    );
    const batch = JSON.stringify([...JSON.parse(loggingBatch()), ...objects]);
    const first = await h.host.invoke(batch);
    expect(first).toMatchObject({ received: 5, ignored: 3, duplicates: 0, processed: 2, deadLetters: {} });
    // The latest of them, 237 minutes before N, less the lateness.
    expect(first.watermark).toBe(new Date(ago.minutes(237, N) - LATENESS_MS).toISOString());
    // A redelivery: the events are duplicates, the others ignored again (nothing kept to know them by).
    expect(await h.host.invoke(batch)).toMatchObject({
      received: 5,
      ignored: 3,
      duplicates: 2,
      processed: 0,
    });
    // A batch of them alone is accounted for too, and every summary has the field.
    expect(await h.host.invoke(JSON.stringify(objects.slice(0, 1)))).toMatchObject({
      received: 1,
      ignored: 1,
    });
    expect(await h.host.invoke('{"action":"sweep"}')).toMatchObject({ received: 0, ignored: 0 });
  });

  it('serializes concurrent invocations (one transaction at a time)', async () => {
    const h = makeHost();
    await h.host.invoke(loggingBatch());
    const [a, b] = await Promise.all([h.host.invoke(streamBatch()), h.host.invoke(streamBatch())]);
    expect([a.duplicates, b.duplicates]).toEqual([0, 2]);
    expect(a.alerts + b.alerts).toBe(1);
  });

  it('a sweep on an idle pipeline moves the watermark to now minus the lateness, never backwards', async () => {
    const h = makeHost();
    const first = await h.host.invoke('{"action":"sweep"}');
    expect(first.watermark).toBe(new Date(N - LATENESS_MS).toISOString());
    h.clock.now = N - 3_600_000;
    const earlier = await h.host.invoke('{"action":"sweep"}');
    expect(earlier.watermark).toBe(first.watermark);
  });

  it('reads a Logging Search response object and raw MySQL audit events (DB system from the config)', async () => {
    const h = makeHost();
    const search = {
      data: {
        results: [{ data: { datetime: ago.hours(5, N), logContent: JSON.parse(loggingBatch())[0] } }],
        summary: { resultCount: 1 },
      },
    };
    expect(await h.host.invoke(JSON.stringify(search))).toMatchObject({ received: 1, deadLetters: {} });
    const raw = [rawAdminConnect()];
    expect(await h.host.invoke(JSON.stringify(raw))).toMatchObject({ received: 1, deadLetters: {} });
  });

  it('dead-letters raw MySQL events when several DB systems are configured and HWAUDIT_DB_SYSTEM is unset', async () => {
    const config = JSON.parse(fleetConfigJson()) as { dbSystems: { id: string; name: string }[] };
    config.dbSystems.push({
      ...config.dbSystems[0]!,
      id: 'ocid1.mysqldbsystem.oc1..prod2',
      name: 'prod-billing',
    });
    const raw = JSON.stringify([rawAdminConnect()]);
    const without = makeHost({ env: { HWAUDIT_CONFIG: JSON.stringify(config) } });
    expect(await without.host.invoke(raw)).toMatchObject({ received: 1, deadLetters: { NO_DB_SYSTEM: 1 } });
    const named = makeHost({
      env: { HWAUDIT_CONFIG: JSON.stringify(config), HWAUDIT_DB_SYSTEM: 'prod-billing' },
    });
    expect(await named.host.invoke(raw)).toMatchObject({ received: 1, deadLetters: {} });
  });
});

describe('FunctionHost refusals (a summary with error, never a throw)', () => {
  const cases: {
    name: string;
    body: string;
    env?: Record<string, string>;
    code: string;
    status: number;
    dead?: string;
  }[] = [
    {
      name: 'malformed JSON',
      body: '[{"specversion":"1.0","data":{"identity":{"principalName":"bob@',
      code: 'INPUT_UNREADABLE',
      status: 400,
      dead: 'JSON_INVALID',
    },
    {
      name: 'an oversized body',
      body: streamBatch(),
      env: { HWAUDIT_MAX_BODY_BYTES: '100' },
      code: 'PAYLOAD_TOO_LARGE',
      status: 413,
      dead: 'TOO_LARGE',
    },
    { name: 'an empty body', body: ' \n', code: 'INPUT_UNREADABLE', status: 400 },
    { name: 'an unknown action', body: '{"action":"purge"}', code: 'USAGE', status: 400 },
    {
      name: 'a sweep with extra keys',
      body: '{"action":"sweep","asOf":"2026-01-01T00:00:00Z"}',
      code: 'USAGE',
      status: 400,
    },
  ];
  for (const c of cases) {
    it(`refuses ${c.name} with ${c.code} (${c.status})`, async () => {
      const h = makeHost(c.env ? { env: c.env } : {});
      const s = await h.host.invoke(c.body);
      expectSummaryShape(s);
      expect(s.error).toMatchObject({ code: c.code, status: c.status });
      expect(s.deadLetters).toEqual(c.dead ? { [c.dead]: 1 } : {});
      // The refusal names sizes and codes, never the body's content.
      expect(JSON.stringify(s)).not.toContain('bob@');
      // A refusal without records does not even open the store.
      if (!c.dead) expect(h.opened()).toBe(0);
      // The host keeps working.
      expect((await h.host.invoke('{"action":"sweep"}')).error).toBeUndefined();
    });
  }

  it('stores the dead letter of a refused body', async () => {
    const h = makeHost();
    await h.host.invoke('{not json');
    const store = SqliteStore.open(h.statePath);
    expect((await collect(store.deadLetters())).length).toBe(1);
    await store.close();
  });
});

describe('FunctionHost deadline', () => {
  it('refuses to start when Fn-Deadline is closer than the margin; the store is not touched', async () => {
    const h = makeHost({ env: { HWAUDIT_DEADLINE_MARGIN_MS: '2000' } });
    const error = await rejection(h.host.invoke(streamBatch(), { deadline: new Date(N + 500) }));
    expect(error.code).toBe('DEADLINE');
    expect(error.message).toMatch(/500 ms left before Fn-Deadline.*no state was written/);
    expect(h.opened()).toBe(0);
  });

  it('refuses a decoded batch that would not finish in time, then the redelivery processes it fully', async () => {
    const h = makeHost({ env: { HWAUDIT_DEADLINE_MARGIN_MS: '1000' } });
    await h.host.invoke(loggingBatch());
    const deadline = new Date(N + 1000); // exactly the margin: no time left for 2 records
    const error = await rejection(h.host.invoke(streamBatch(), { deadline }));
    expect(error.message).toMatch(/^DEADLINE: 2 records were not ingested/);
    const retry = await h.host.invoke(streamBatch(), { deadline: new Date(N + 60_000) });
    expect(retry).toMatchObject({ received: 2, duplicates: 0, alerts: 1 });
    expect(h.opened()).toBe(1);
  });

  it('ignores a missing or unparseable Fn-Deadline', async () => {
    const h = makeHost();
    expect((await h.host.invoke(loggingBatch(), { deadline: null })).received).toBe(2);
    expect((await h.host.invoke(streamBatch(), { deadline: new Date('not a date') })).received).toBe(2);
  });
});

describe('FunctionHost failures (thrown, so the caller retries)', () => {
  it('logs where the code went wrong for an unexpected failure only, never its message', async () => {
    const failures = { commit: 1 };
    const expected = makeHost({ wrapStore: (s) => flaky(s, failures) });
    await rejection(expected.host.invoke(loggingBatch()));
    const refused = expected.stderr.json().at(-1)!;
    expect(refused).toMatchObject({ msg: 'invocation failed', code: 'STORE_FAILED' });
    expect(refused.frames).toBeUndefined();

    const unexpected = makeHost({
      wrapStore: (s) =>
        new Proxy(s, {
          get(target, prop) {
            if (prop === 'commit')
              return async () => {
                throw new TypeError("Cannot read properties of undefined (reading 'bob@example.com')");
              };
            const value = Reflect.get(target, prop, target);
            return typeof value === 'function' ? value.bind(target) : value;
          },
        }),
    });
    expect((await rejection(unexpected.host.invoke(loggingBatch()))).code).toBe('INTERNAL');
    const failed = unexpected.stderr.json().at(-1)!;
    expect(failed).toMatchObject({ msg: 'invocation failed', code: 'INTERNAL' });
    expect((failed.frames as string[])[0]).toMatch(/^at /);
    expect(unexpected.stderr.lines.join('\n')).not.toContain('bob@example.com');
  });

  it('a store failure drops the cached pipeline; the retry re-opens the store and does the work once', async () => {
    const failures = { commit: 0 };
    const h = makeHost({ wrapStore: (s) => flaky(s, failures) });
    await h.host.invoke(loggingBatch());
    failures.commit = 1;
    const error = await rejection(h.host.invoke(streamBatch()));
    expect(error.code).toBe('STORE_FAILED');
    expect(error.message).toContain('SQLITE_IOERR');
    expect(error.message).not.toContain('bob@');
    expect(h.host.warm).toBe(false);
    const retry = await h.host.invoke(streamBatch());
    expect(retry).toMatchObject({ received: 2, duplicates: 0, alerts: 1 });
    expect(h.opened()).toBe(2);
    expect(h.stdout.json().map((a) => a.rule)).toEqual(['iam.privileged-group-change', 'break-glass.used']);
  });

  it('a store that cannot be opened fails the call; the next call opens it once it is fixed', async () => {
    const dir = tempDir('hwaudit-host-');
    const blocked = join(dir, 'state');
    writeFileSync(blocked, 'not a folder');
    const h = makeHost({ statePath: join(blocked, 'audit.sqlite') });
    const error = await rejection(h.host.invoke(loggingBatch()));
    expect(error.message).toMatch(
      /^USAGE: the state file \S+audit\.sqlite cannot be opened: check that it is a file, in a folder that exists and is writable \(SQLITE_CANTOPEN\)$/,
    );
    rmSync(blocked);
    mkdirSync(blocked);
    expect(await h.host.invoke(loggingBatch())).toMatchObject({ received: 2, alerts: 1 });
  });

  it('an alerts file that cannot be opened fails the call before anything is committed; the retry does it all', async () => {
    const dir = tempDir('hwaudit-host-');
    const alertsFile = join(dir, 'out', 'alerts.jsonl');
    const h = makeHost({ env: { HWAUDIT_ALERTS_FILE: alertsFile } });
    const error = await rejection(h.host.invoke(loggingBatch()));
    expect(error.message).toMatch(/^USAGE: cannot open \S+alerts\.jsonl \(ENOENT\)/);
    mkdirSync(join(dir, 'out'));
    expect(await h.host.invoke(loggingBatch())).toMatchObject({ received: 2, duplicates: 0, alerts: 1 });
    const lines = readFileSync(alertsFile, 'utf8').trim().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { rule: string }).rule)).toEqual([
      'iam.privileged-group-change',
    ]);
  });

  it('a bad configuration is a CONFIG_INVALID error naming the key, on every call until fixed', async () => {
    const h = makeHost({
      env: { HWAUDIT_CONFIG: fleetConfigJson({ rules: { 'no.such-rule': { enabled: false } } }) },
    });
    for (let i = 0; i < 2; i++) {
      const error = await rejection(h.host.invoke(loggingBatch()));
      expect(error.code).toBe('CONFIG_INVALID');
      expect(error.message).toContain('no.such-rule');
      expect(error.message).toContain('HWAUDIT_CONFIG');
    }
    const typo = makeHost({
      env: { HWAUDIT_CONFIG: JSON.stringify({ ...JSON.parse(fleetConfigJson()), latenes: 'PT1M' }) },
    });
    expect((await rejection(typo.host.invoke(loggingBatch()))).message).toMatch(/latenes: unknown key/);
  });

  it('reads the configuration from HWAUDIT_CONFIG_FILE (YAML)', async () => {
    const dir = tempDir('hwaudit-host-');
    const file = join(dir, 'audit.yaml');
    writeFileSync(file, `# YAML is JSON's superset\n${fleetConfigJson()}\n`);
    const h = makeHost({ env: { HWAUDIT_CONFIG: '', HWAUDIT_CONFIG_FILE: file } });
    expect(await h.host.invoke(loggingBatch())).toMatchObject({ received: 2, alerts: 1 });
    const missing = makeHost({ env: { HWAUDIT_CONFIG: '', HWAUDIT_CONFIG_FILE: join(dir, 'nope.yaml') } });
    expect((await rejection(missing.host.invoke(loggingBatch()))).message).toMatch(
      /^CONFIG_INVALID: cannot read configuration file .*nope\.yaml \(ENOENT\)/,
    );
  });

  it('a mysql:// store that cannot be reached is STORE_FAILED; a password in the URL is warned about, never echoed', async () => {
    const stderr = new Lines();
    const host = new FunctionHost({
      env: { HWAUDIT_CONFIG: fleetConfigJson(), HWAUDIT_STATE: 'mysql://audit:s3cr3t-pw@127.0.0.1:1/audit' },
      stdout: new Lines(),
      stderr,
    });
    const error = await rejection(host.invoke(loggingBatch()));
    expect(error.message).toMatch(
      /^STORE_FAILED: cannot open the MySQL state store \(.*host=127\.0\.0\.1; port=1; database=audit/,
    );
    expect(stderr.json()[0]).toMatchObject({
      level: 'warn',
      msg: 'state store',
      warning: expect.stringContaining('HWAUDIT_STATE_PASSWORD'),
    });
    expect(`${error.message}${stderr.lines.join('\n')}`).not.toContain('s3cr3t-pw');
  });

  it('rejects an HWAUDIT_DB_SYSTEM that names no configured DB system', async () => {
    const h = makeHost({ env: { HWAUDIT_DB_SYSTEM: 'prod-typo' } });
    expect((await rejection(h.host.invoke(loggingBatch()))).message).toMatch(
      /^CONFIG_INVALID: HWAUDIT_DB_SYSTEM/,
    );
  });
});

describe('toFunctionError', () => {
  it('keeps only the name of an unexpected error, whose message may hold data', () => {
    const e = toFunctionError(
      new TypeError("Cannot read properties of undefined (reading 'GRANT ALL ON *.* TO bob')"),
    );
    expect(e.message).toBe('INTERNAL: unexpected TypeError; the function log has the stack');
    expect(e.cause).toBeUndefined();
  });

  it('maps a raw SQLite error to STORE_FAILED with its code only', () => {
    const e = toFunctionError(
      Object.assign(new Error('UNIQUE constraint failed: alerts.id bob'), {
        code: 'SQLITE_CONSTRAINT_PRIMARYKEY',
      }),
    );
    expect(e.code).toBe('STORE_FAILED');
    expect(e.message).toContain('SQLITE_CONSTRAINT_PRIMARYKEY');
    expect(e.message).not.toContain('bob');
  });

  it('passes an AuditError message and its safe details, not its cause', () => {
    const cause = new Error('raw cause text with a secret');
    const e = toFunctionError(
      new AuditError('OCI_REQUEST_FAILED', 'ListEvents failed', { cause, details: { status: 503 } }),
    );
    expect(e.message).toBe('OCI_REQUEST_FAILED: ListEvents failed (status=503)');
    expect(String(e)).not.toContain('secret');
  });

  it("names the cause's code once, where the message names it already", () => {
    const cause = Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
    const named = toFunctionError(
      new AuditError('CONFIG_INVALID', `cannot read x.yaml${errnoSuffix(cause)}`, { cause }),
    );
    expect(named.message).toBe('CONFIG_INVALID: cannot read x.yaml (ENOENT)');
    const unnamed = toFunctionError(new AuditError('STORE_FAILED', 'cannot open the state', { cause }));
    expect(unnamed.message).toMatch(/^STORE_FAILED: cannot open the state \(ENOENT\); /);
  });
});

/** A store that counts how often the pipeline loads its state. */
function counting(store: SqliteStore, loads: { n: number }): StateStore {
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop === 'loadEntities') loads.n++;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('FunctionHost on a shared (mysql://) store', () => {
  // Two hosts are two containers; a SQLite file stands in for the MySQL database (the real one is
  // in fdk-contract.test.ts). The mysql:// spec is what makes the host treat the store as shared.
  const SHARED = { HWAUDIT_STATE: 'mysql://hwaudit@heatwave.example:3306/hwaudit' };

  it('reloads the state at every invocation, so containers continue each other’s work', async () => {
    const file = join(tempDir('hwaudit-host-'), 'shared.sqlite');
    const loads = { n: 0 };
    const a = makeHost({ env: SHARED, sharedFile: file, wrapStore: (s) => counting(s, loads) });
    const b = makeHost({ env: SHARED, sharedFile: file });
    // B is warm (its pipeline opened) before A ingests anything.
    expect((await b.host.invoke('{not json')).deadLetters).toEqual({ JSON_INVALID: 1 });
    expect(await a.host.invoke(loggingBatch())).toMatchObject({ received: 2, alerts: 1 });
    // Bob's break-glass membership came through A: B only knows it because it reloaded.
    expect(await b.host.invoke(streamBatch())).toMatchObject({ received: 2, duplicates: 0, alerts: 1 });
    // The redelivery reaches A, which sees B's seen and pending keys.
    expect(await a.host.invoke(streamBatch())).toMatchObject({ duplicates: 2, processed: 0, alerts: 0 });
    expect(await b.host.invoke(loggingBatch())).toMatchObject({ duplicates: 2, alerts: 0 });
    expect([...a.stdout.json(), ...b.stdout.json()].map((x) => x.rule)).toEqual([
      'iam.privileged-group-change',
      'break-glass.used',
    ]);
    // Each of A's invocations loaded the state once; the store itself stayed open.
    expect(loads.n).toBe(2);
    expect(a.opened()).toBe(1);
    // The log line says how long loading took.
    expect(a.stderr.json().every((l) => typeof l.openMs === 'number')).toBe(true);
  });

  it('keeps the pipeline between invocations on a SQLite store (private to the container)', async () => {
    const loads = { n: 0 };
    const h = makeHost({ wrapStore: (s) => counting(s, loads) });
    await h.host.invoke(loggingBatch());
    await h.host.invoke(streamBatch());
    await h.host.invoke('{"action":"sweep"}');
    expect(loads.n).toBe(1);
    expect(h.stderr.json().map((l) => l.openMs === undefined)).toEqual([false, true, true]);
  });

  it('opens the store on HWAUDIT_SCOPE (default "function")', async () => {
    const scopes: string[] = [];
    for (const env of [{}, { HWAUDIT_SCOPE: 'eu-prod' }]) {
      const host = new FunctionHost({
        env: { HWAUDIT_CONFIG: fleetConfigJson(), ...env },
        now: () => N,
        stdout: new Lines(),
        stderr: new Lines(),
        openStore: (_spec, { scope }) => {
          scopes.push(scope);
          return SqliteStore.open(':memory:', { scope });
        },
      });
      await host.invoke('{"action":"sweep"}');
    }
    expect(scopes).toEqual(['function', 'eu-prod']);
  });
});

type Published = { topicId: string; title?: string; body: string };

/** Fake SDK clients: record what the sinks send; `fail` makes the next calls throw an OCI error. */
function fakeOci() {
  const messages: { key?: string; value: string }[] = [];
  const digests: Published[] = [];
  const failures = { stream: 0, ons: 0, status: 404 };
  const ociError = () =>
    Object.assign(new Error('Authorization failed or requested resource not found (bob@example.com)'), {
      statusCode: failures.status,
      serviceCode: failures.status === 404 ? 'NotAuthorizedOrNotFound' : 'InternalServerError',
    });
  const streaming = {
    async putMessages(req: { putMessagesDetails: { messages: { key?: string; value: string }[] } }) {
      if (failures.stream > 0) {
        failures.stream--;
        throw ociError();
      }
      messages.push(...req.putMessagesDetails.messages);
      const entries = req.putMessagesDetails.messages.map((_, i) => ({ partition: '0', offset: i }));
      return { putMessagesResult: { failures: 0, entries } };
    },
  } as unknown as StreamPutter;
  const notifications = {
    async publishMessage(req: { topicId: string; messageDetails: { title?: string; body: string } }) {
      if (failures.ons > 0) {
        failures.ons--;
        throw ociError();
      }
      digests.push({ topicId: req.topicId, ...req.messageDetails });
      return { publishResult: { messageId: `m${digests.length}` } };
    },
  } as unknown as NotificationPublisher;
  const clients: OciSinkClients = {
    streaming: async () => streaming,
    notifications: async () => notifications,
  };
  const values = () =>
    messages.map((m) => ({
      key: m.key === undefined ? undefined : Buffer.from(m.key, 'base64').toString('utf8'),
      value: Buffer.from(m.value, 'base64').toString('utf8'),
    }));
  return { clients, messages, values, digests, failures };
}

const STREAM_ID = 'ocid1.stream.oc1.iad.alerts';
const TOPIC_ID = 'ocid1.onstopic.oc1.iad.alerts';
const OCI_SINKS = {
  HWAUDIT_ALERT_STREAM_ID: STREAM_ID,
  HWAUDIT_OCI_ENDPOINT_STREAMING: 'https://cell-1.streaming.us-ashburn-1.oci.oraclecloud.com',
  HWAUDIT_NOTIFICATIONS_TOPIC_ID: TOPIC_ID,
};

/** Both batches in one body: two alerts of different rules in one commit. */
function bothBatches(): string {
  return JSON.stringify([...JSON.parse(loggingBatch()), ...JSON.parse(streamBatch())]);
}

function digestIds(digests: Published[]): string[] {
  return digests.flatMap((d) => /Alert ids \(\d+\): (.*)$/m.exec(d.body)?.[1]?.split(' ') ?? []);
}

describe('FunctionHost alert sinks', () => {
  it('sends every alert to the stream and a digest per rule to the topic, before answering', async () => {
    const oci = fakeOci();
    const h = makeHost({ env: OCI_SINKS, ociClients: oci.clients });
    expect(await h.host.invoke(bothBatches())).toMatchObject({ received: 4, alerts: 2 });
    const alerts = h.stdout.json();
    expect(oci.values().map((m) => JSON.parse(m.value).id)).toEqual(alerts.map((a) => a.id));
    // Keyed by DB system, so one DB system's alerts stay in order on one partition.
    const used = oci.values().find((m) => JSON.parse(m.value).rule === 'break-glass.used');
    expect(used?.key).toBe(DB.id);
    expect(oci.digests.map((d) => [d.topicId, d.title?.replace(/^\[\w+\] /, '')])).toEqual([
      [TOPIC_ID, expect.stringMatching(/: 1 alert$/)],
      [TOPIC_ID, expect.stringMatching(/: 1 alert$/)],
    ]);
    expect(digestIds(oci.digests).sort()).toEqual(alerts.map((a) => a.id as string).sort());
    // Redelivered: nothing new anywhere.
    expect(await h.host.invoke(bothBatches())).toMatchObject({ duplicates: 4, alerts: 0 });
    expect(oci.messages).toHaveLength(2);
    expect(oci.digests).toHaveLength(2);
  });

  it.each([
    ['ocsf', (line: string) => expect(JSON.parse(line)).toMatchObject({ class_uid: 2004 })],
    ['ecs', (line: string) => expect(JSON.parse(line)).toMatchObject({ event: { kind: 'alert' } })],
    ['cef', (line: string) => expect(line).toMatch(/^CEF:0\|heatwave-iam-audit\|/)],
  ] as const)('writes HWAUDIT_ALERT_FORMAT=%s to stdout and to the stream alike', async (format, check) => {
    const oci = fakeOci();
    const h = makeHost({ env: { ...OCI_SINKS, HWAUDIT_ALERT_FORMAT: format }, ociClients: oci.clients });
    await h.host.invoke(loggingBatch());
    expect(h.stdout.lines).toHaveLength(1);
    check(h.stdout.lines[0]!);
    expect(oci.values().map((m) => m.value)).toEqual(h.stdout.lines);
  });

  it('writes the chosen format to HWAUDIT_ALERTS_FILE', async () => {
    const file = join(tempDir('hwaudit-host-'), 'alerts.cef');
    const h = makeHost({ env: { HWAUDIT_ALERTS_FILE: file, HWAUDIT_ALERT_FORMAT: 'cef' } });
    await h.host.invoke(loggingBatch());
    expect(readFileSync(file, 'utf8')).toMatch(/^CEF:0\|[^\n]*iam\.privileged-group-change[^\n]*\n$/);
  });

  it('a stream failure fails the call (SINK_FAILED, sanitized) and drops the pipeline; the retry re-sends', async () => {
    const oci = fakeOci();
    const h = makeHost({ env: OCI_SINKS, ociClients: oci.clients });
    oci.failures.stream = 1;
    const error = await rejection(h.host.invoke(loggingBatch()));
    expect(error.code).toBe('SINK_FAILED');
    expect(error.message).toMatch(
      /^SINK_FAILED: oci-stream: PutMessages could not deliver 1 alert\(s\) \(status 404, NotAuthorizedOrNotFound\).*the pipeline was dropped/,
    );
    expect(error.message).not.toContain('bob@');
    expect(h.host.warm).toBe(false);
    // Written to stdout before the stream failed, and to the topic after it: a failing output
    // holds back no other.
    expect(h.stdout.lines).toHaveLength(1);
    expect(digestIds(oci.digests)).toEqual([h.stdout.json()[0]!.id]);
    // Connector Hub redelivers: the batch is a duplicate, the alert reaches the stream and the topic once.
    expect(await h.host.invoke(loggingBatch())).toMatchObject({ duplicates: 2, alerts: 0 });
    expect(oci.messages).toHaveLength(1);
    expect(digestIds(oci.digests)).toEqual([h.stdout.json()[0]!.id]);
    expect(h.stdout.lines).toHaveLength(1);
  });

  it('a stream still failing when the pipeline re-opens fails a collect that read nothing too', async () => {
    const oci = fakeOci();
    const base = JSON.parse(fleetConfigJson()) as { dbSystems: Record<string, unknown>[] };
    const config = {
      ...base,
      // Nothing listens on port 1: the collect reads nothing, and makes no pipeline call.
      dbSystems: [{ ...base.dbSystems[0]!, endpoints: [{ host: '127.0.0.1', port: 1 }] }],
      collector: { user: 'hwaudit', password: { env: 'PW' }, tls: 'disabled', allowPlaintext: true },
    };
    const h = makeHost({
      env: { ...OCI_SINKS, HWAUDIT_CONFIG: JSON.stringify(config), PW: 'pw' },
      ociClients: oci.clients,
    });
    oci.failures.stream = 2;
    expect((await rejection(h.host.invoke(loggingBatch()))).code).toBe('SINK_FAILED');
    const error = await rejection(h.host.invoke(JSON.stringify({ action: 'collect' })));
    expect(error.message).toMatch(/^SINK_FAILED: oci-stream: PutMessages could not deliver 1 alert\(s\)/);
    expect(oci.failures.stream).toBe(0);
    // The stream works again: the next call sends it what it missed.
    expect(await h.host.invoke(JSON.stringify({ action: 'sweep' }))).toMatchObject({ action: 'sweep' });
    expect(oci.values().map((m) => JSON.parse(m.value).id)).toEqual(h.stdout.json().map((a) => a.id));
  });

  it('a digest that cannot be published fails the call; the retry publishes only the groups still missing', async () => {
    const oci = fakeOci();
    const h = makeHost({ env: OCI_SINKS, ociClients: oci.clients });
    // The first digest goes out, the second is refused (404 is not retried).
    const gate = oci.clients.notifications!;
    let calls = 0;
    oci.clients.notifications = async () => {
      const real = await gate();
      return {
        publishMessage: (req: Parameters<NotificationPublisher['publishMessage']>[0]) => {
          if (++calls === 2) oci.failures.ons = 1;
          return real.publishMessage(req);
        },
      } as NotificationPublisher;
    };
    const error = await rejection(h.host.invoke(bothBatches()));
    expect(error.message).toMatch(/^SINK_FAILED: ons\.publishMessage failed \(status 404/);
    expect(error.message).not.toContain('bob@');
    expect(oci.digests).toHaveLength(1);
    const first = digestIds(oci.digests);
    expect(await h.host.invoke(bothBatches())).toMatchObject({ duplicates: 4, alerts: 0 });
    // Two digests in all, each alert in exactly one.
    expect(oci.digests).toHaveLength(2);
    const ids = digestIds(oci.digests);
    expect(ids.slice(0, 1)).toEqual(first);
    expect(new Set(ids).size).toBe(2);
    expect(ids.sort()).toEqual(
      h.stdout
        .json()
        .map((a) => a.id as string)
        .sort(),
    );
  });

  it('a digest that failed is left to the store: another container sends it, this one does not again', async () => {
    const oci = fakeOci();
    const file = join(tempDir('hwaudit-host-'), 'shared.sqlite');
    const env = { ...OCI_SINKS, HWAUDIT_STATE: 'mysql://hwaudit@heatwave.example:3306/hwaudit' };
    const a = makeHost({ env, sharedFile: file, ociClients: oci.clients });
    const b = makeHost({ env, sharedFile: file, ociClients: oci.clients });
    oci.failures.ons = 1;
    expect((await rejection(a.host.invoke(loggingBatch()))).code).toBe('SINK_FAILED');
    // B opens the store, which still holds A's alert as not delivered to the topic, and sends it.
    await b.host.invoke('{not json');
    expect(digestIds(oci.digests)).toEqual([a.stdout.json()[0]!.id]);
    // A's next digest holds only its new alert.
    expect(await a.host.invoke(streamBatch())).toMatchObject({ alerts: 1 });
    expect(digestIds(oci.digests)).toEqual(a.stdout.json().map((x) => x.id));
  });

  it('does not wait for digest rate budget past Fn-Deadline; the groups published so far count', async () => {
    const oci = fakeOci();
    // 2 a minute: a burst of 1, then one every 60 s.
    const h = makeHost({
      env: { ...OCI_SINKS, HWAUDIT_NOTIFICATIONS_PER_MINUTE: '2', HWAUDIT_DEADLINE_MARGIN_MS: '1000' },
      ociClients: oci.clients,
    });
    const error = await rejection(h.host.invoke(bothBatches(), { deadline: new Date(N + 20_000) }));
    expect(error.message).toMatch(
      /^SINK_FAILED: oci-notifications: the digest rate budget \(HWAUDIT_NOTIFICATIONS_PER_MINUTE\) needs a \d+ ms wait that would pass Fn-Deadline/,
    );
    expect(oci.digests).toHaveLength(1);
    const store = SqliteStore.open(h.statePath, { scope: 'function' });
    try {
      const missing = (await store.undelivered('oci-notifications')).map((a) => a.id);
      expect(missing).toHaveLength(1);
      expect(digestIds(oci.digests)).not.toContain(missing[0]);
      expect(await store.undelivered('oci-stream')).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('does not wait for a retry backoff past Fn-Deadline either', async () => {
    const oci = fakeOci();
    oci.failures.stream = 1;
    oci.failures.status = 503;
    const slept: number[] = [];
    const h = makeHost({
      env: { ...OCI_SINKS, HWAUDIT_DEADLINE_MARGIN_MS: '1000' },
      ociClients: oci.clients,
      ociRetry: {
        maxAttempts: 3,
        baseDelayMs: 5000,
        maxDelayMs: 5000,
        sleep: async (ms) => {
          slept.push(ms);
        },
      },
    });
    const error = await rejection(h.host.invoke(loggingBatch(), { deadline: new Date(N + 3000) }));
    expect(error.message).toMatch(
      /^SINK_FAILED: oci-stream: a \d+ ms retry backoff that would pass Fn-Deadline; the next call delivers the rest/,
    );
    expect(slept).toEqual([]);
    // With time to spare the same failure is retried and the alert delivered.
    oci.failures.stream = 1;
    expect(await h.host.invoke(loggingBatch())).toMatchObject({ duplicates: 2, alerts: 0 });
    expect(slept).toHaveLength(1);
    expect(oci.messages).toHaveLength(1);
  });

  it('creates the OCI clients once per container, on the first invocation that opens the pipeline', async () => {
    const oci = fakeOci();
    let created = 0;
    const h = makeHost({
      env: OCI_SINKS,
      ociClients: {
        streaming: async () => {
          created++;
          return oci.clients.streaming!();
        },
        notifications: async () => {
          created++;
          return oci.clients.notifications!();
        },
      },
    });
    await h.host.invoke('{"action":"purge"}');
    expect(created).toBe(0);
    await h.host.invoke(loggingBatch());
    await h.host.invoke(streamBatch());
    expect(created).toBe(2);
  });

  it('without resource principal credentials, a configured stream is CONFIG_INVALID (502) naming the auth kind', async () => {
    const h = makeHost({
      env: { ...OCI_SINKS, HWAUDIT_OCI_AUTH: 'resource-principal' },
    });
    const error = await rejection(h.host.invoke(loggingBatch()));
    expect(error.message).toMatch(/^CONFIG_INVALID: cannot build OCI resource-principal credentials/);
  });
});
