// {"action":"collect"} in the function host: reads the configured instances within Fn-Deadline,
// commits what it read, leaves the rest for the next call; the password comes from OCI Vault and
// the records also go to a stream (both through the real SDK clients against the signed local
// endpoint); the DB system is a MySQL-protocol server with HeatWave's audit_log_read().
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FunctionHost, type InvocationSummary } from '../../functions/function-host.js';
import { baseConfig } from '../../shared/detect/timeline.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { removeTempDirs, tempDir } from '../helpers/fdk-harness.js';
import { Lines } from '../helpers/host-batches.js';
import { AuditLog } from '../mysql-server/audit-log.js';
import { RawLog } from '../mysql-server/raw-events.js';
import { HeatWaveTestServer } from '../mysql-server/server.js';
import { type SecretsService, secretsService } from '../oci-endpoint/secrets.js';
import { type OciEndpoint, startOciEndpoint } from '../oci-endpoint/server.js';
import {
  craftSecurityToken,
  createTestPrincipal,
  generateTestKeyPair,
  type TestPrincipal,
} from '../oci-endpoint/signature.js';
import { type StreamingService, streamingService } from '../oci-endpoint/streaming.js';

const SECRET = 'ocid1.vaultsecret.oc1.iad.collector';
const STREAM = 'ocid1.stream.oc1.iad.collected';
const PASSWORD = 'v4ult-held-pw';

let principal: TestPrincipal;
let endpoint: OciEndpoint;
let streaming: StreamingService;
let vault: SecretsService;
/** The collector's account on the server: a test rotates its password. */
const collectorAccount = { user: 'hwaudit', password: PASSWORD, grants: ['AUDIT_ADMIN'] };
let server: HeatWaveTestServer;
let log: RawLog;

beforeAll(async () => {
  principal = createTestPrincipal();
  streaming = streamingService({ streams: [{ id: STREAM, partitions: 1 }] });
  vault = secretsService({ [SECRET]: PASSWORD });
  endpoint = await startOciEndpoint({
    ...principal.endpointOptions,
    handlers: [streaming.handler, vault.handler],
  });
  // Recent events: the function's sweep and watermark follow the clock.
  const now = Math.floor(Date.now() / 1000) * 1000;
  log = new RawLog();
  for (let i = 0; i < 300; i++)
    log.session({ at: now - 3_600_000 + i * 5000, conn: 100 + i, user: 'intruder', queries: 3 });
  server = await HeatWaveTestServer.start({
    accounts: [collectorAccount],
    audit: new AuditLog(log.events),
  });
});
afterAll(async () => {
  await server?.stop();
  await endpoint?.close();
  principal?.cleanup();
  removeTempDirs();
});

/**
 * The host's clock: a millisecond more at every reading, from the real time it starts at, so
 * that how far a call with a deadline gets depends on the work done, not on how busy the machine is.
 */
function steppingClock(): () => number {
  const start = Date.now();
  let readings = 0;
  return () => start + ++readings;
}

function host(stdout: Lines, statePath: string, now: () => number = Date.now): FunctionHost {
  const base = baseConfig();
  const config = {
    ...base,
    lateness: 'PT1M',
    dbSystems: [{ ...base.dbSystems![0]!, endpoints: [{ host: '127.0.0.1', port: server.address.port }] }],
    collector: {
      user: 'hwaudit',
      password: { secret: SECRET },
      tls: 'disabled',
      allowPlaintext: true,
      batchSize: 100,
    },
  };
  return new FunctionHost({
    env: {
      HWAUDIT_CONFIG: JSON.stringify(config),
      HWAUDIT_STATE: statePath,
      HWAUDIT_COLLECT_STREAM_ID: STREAM,
      HWAUDIT_OCI_AUTH: 'config-file',
      HWAUDIT_OCI_CONFIG_FILE: principal.configFile,
      HWAUDIT_OCI_ENDPOINT: endpoint.url,
    },
    stdout,
    stderr: new Lines(),
    now,
  });
}

describe('{"action":"collect"}', () => {
  it('reads until close to Fn-Deadline, commits, and the next call goes on: every record once, in the store and on the stream', async () => {
    const statePath = `${tempDir('hwaudit-collect-fn-')}/state.sqlite`;
    const stdout = new Lines();
    const now = steppingClock();
    const fn = host(stdout, statePath, now);
    const body = JSON.stringify({ action: 'collect' });
    // A deadline that leaves 400 clock readings past the margin: the call stops early and says so.
    const first = await fn.invoke(body, { deadline: new Date(now() + 2000 + 400) });
    expect(first.action).toBe('collect');
    expect(first.instances).toHaveLength(1);
    const [early] = first.instances!;
    expect(early!.caughtUp).toBe(false);
    expect(early!.records).toBeGreaterThan(0);
    expect(early!.records).toBeLessThan(log.events.length);

    const rest: InvocationSummary[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await fn.invoke(body, { deadline: new Date(now() + 60_000) });
      rest.push(r);
      if (r.instances![0]!.caughtUp) break;
    }
    const all = [first, ...rest];
    const read = all.reduce((n, s) => n + s.instances![0]!.records, 0);
    expect(read).toBe(log.events.length);
    expect(all.reduce((n, s) => n + s.duplicates, 0)).toBe(0);
    expect(rest.at(-1)!.instances![0]).toMatchObject({ caughtUp: true });

    // The records went to the stream too, once each, keyed by the DB system.
    const messages = streaming.messages(STREAM, 0);
    expect(messages).toHaveLength(log.events.length);
    const first0 = JSON.parse(Buffer.from(messages[0]!.value, 'base64').toString('utf8')) as Record<
      string,
      unknown
    >;
    expect(first0).toMatchObject({ source: 'mysql-audit', dbSystemId: baseConfig().dbSystems![0]!.id });
    expect(Buffer.from(messages[0]!.key!, 'base64').toString('utf8')).toBe(baseConfig().dbSystems![0]!.id);

    // The Vault secret was read once for all these calls.
    expect(endpoint.requestsTo('secrets.getSecretBundle')).toHaveLength(1);

    // Nothing new: a call reads nothing. A sweep then releases what waits and alerts fire.
    const again = await fn.invoke(body);
    expect(again.instances![0]).toMatchObject({ records: 0, caughtUp: true });
    await fn.invoke(JSON.stringify({ action: 'sweep' }));
    const store = SqliteStore.open(statePath);
    let sessions = 0;
    for await (const _ of store.sessions()) sessions++;
    await store.close();
    expect(sessions).toBe(300);
    expect(stdout.lines.some((l) => l.includes('access.local-account'))).toBe(true);
  });

  it("auth: iam logs in as the function's resource principal: no password, no Vault call", async () => {
    const issuer = generateTestKeyPair();
    const key = generateTestKeyPair();
    const fn = 'ocid1.fnfunc.oc1..audit';
    const iamServer = await HeatWaveTestServer.start({
      iam: { issuerPublicKeyPem: issuer.publicKeyPem, apiKeys: [] },
      accounts: [
        {
          user: 'hwaudit_fn',
          plugin: 'authentication_oci',
          authenticationString: JSON.stringify({ tenancy: principal.tenancy, user: fn }),
          grants: ['AUDIT_ADMIN'],
        },
      ],
      audit: new AuditLog(log.events.slice(0, 40)),
    });
    vi.stubEnv('OCI_RESOURCE_PRINCIPAL_VERSION', '2.2');
    vi.stubEnv(
      'OCI_RESOURCE_PRINCIPAL_RPST',
      craftSecurityToken({
        issuerPrivateKeyPem: issuer.privateKeyPem,
        sessionPublicKeyPem: key.publicKeyPem,
        subject: fn,
        tenancy: principal.tenancy,
        expiresAt: new Date(Date.now() + 3_600_000),
      }),
    );
    vi.stubEnv('OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM', key.privateKeyPem);
    vi.stubEnv('OCI_RESOURCE_PRINCIPAL_REGION', 'iad');
    try {
      const base = baseConfig();
      const secretReads = endpoint.requestsTo('secrets.getSecretBundle').length;
      const host = new FunctionHost({
        env: {
          HWAUDIT_CONFIG: JSON.stringify({
            ...base,
            dbSystems: [
              { ...base.dbSystems![0]!, endpoints: [{ host: '127.0.0.1', port: iamServer.address.port }] },
            ],
            collector: { user: 'hwaudit_fn', auth: 'iam', tls: 'disabled', allowPlaintext: true },
          }),
          HWAUDIT_STATE: `${tempDir('hwaudit-collect-fn-')}/state.sqlite`,
          OCI_RESOURCE_PRINCIPAL_VERSION: '2.2',
        },
        stdout: new Lines(),
        stderr: new Lines(),
      });
      const r = await host.invoke(JSON.stringify({ action: 'collect' }));
      expect(r.instances).toEqual([expect.objectContaining({ records: 40, caughtUp: true })]);
      expect(iamServer.iamLogins).toEqual([{ ok: true, principal: fn }]);
      expect(endpoint.requestsTo('secrets.getSecretBundle')).toHaveLength(secretReads);
    } finally {
      vi.unstubAllEnvs();
      await iamServer.stop();
    }
  });

  it('a password rotated in Vault is read again when the login is refused, not 15 minutes later', async () => {
    const fn = host(new Lines(), `${tempDir('hwaudit-collect-fn-')}/state.sqlite`);
    const instanceErrors = (r: InvocationSummary) => r.instances!.map((i) => i.error);
    expect(instanceErrors(await fn.invoke(JSON.stringify({ action: 'collect' })))).toEqual([undefined]);
    const reads = endpoint.requestsTo('secrets.getSecretBundle').length;
    try {
      collectorAccount.password = 'r0tated-pw';
      vault.secrets.set(SECRET, 'r0tated-pw');
      const after = await fn.invoke(JSON.stringify({ action: 'collect' }));
      expect(instanceErrors(after)).toEqual([undefined]);
      // The cached value was refused: one more read of the secret, and the login worked.
      expect(endpoint.requestsTo('secrets.getSecretBundle')).toHaveLength(reads + 1);
    } finally {
      collectorAccount.password = PASSWORD;
      vault.secrets.set(SECRET, PASSWORD);
    }
  });

  it("one call reads every DB system into one pipeline: a login user's failures on two of them make a fleet-wide burst", async () => {
    // admin fails an hour ago at minutes 0, 2, 4 on prod-orders and 1, 3 on prod-billing, each from its own address.
    const start = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
    const failures = (ms: number[]) => {
      const l = new RawLog();
      for (const m of ms)
        l.connect({
          at: start + m * 60_000,
          conn: 10 + m,
          user: 'admin',
          ip: `198.51.100.${m + 1}`,
          status: 1045,
        });
      return new AuditLog(l.events);
    };
    const [orders, billing] = await Promise.all(
      [failures([0, 2, 4]), failures([1, 3])].map((audit) =>
        HeatWaveTestServer.start({ accounts: [collectorAccount], audit }),
      ),
    );
    try {
      const base = baseConfig();
      const endpoints = (s: HeatWaveTestServer) => [{ host: '127.0.0.1', port: s.address.port }];
      const statePath = `${tempDir('hwaudit-collect-fn-')}/state.sqlite`;
      const fn = new FunctionHost({
        env: {
          HWAUDIT_CONFIG: JSON.stringify({
            ...base,
            lateness: 'PT1M',
            dbSystems: [
              { ...base.dbSystems![0]!, endpoints: endpoints(orders!) },
              { id: 'ocid1.mysqldbsystem.oc1..prod2', name: 'prod-billing', endpoints: endpoints(billing!) },
            ],
            collector: { user: 'hwaudit', password: { env: 'PW' }, tls: 'disabled', allowPlaintext: true },
          }),
          HWAUDIT_STATE: statePath,
          PW: PASSWORD,
        },
        stdout: new Lines(),
        stderr: new Lines(),
      });
      const r = await fn.invoke(JSON.stringify({ action: 'collect' }));
      expect(r.instances!.map((i) => [i.dbSystem, i.records, i.caughtUp])).toEqual([
        ['prod-orders', 3, true],
        ['prod-billing', 2, true],
      ]);
      await fn.invoke(JSON.stringify({ action: 'sweep' }));
      const store = SqliteStore.open(statePath);
      const bursts = [];
      for await (const a of store.alerts()) if (a.rule === 'auth.failure-burst') bursts.push(a);
      await store.close();
      expect(bursts.map((a) => [a.title, a.dbSystem, a.details?.dbSystems])).toEqual([
        ['5 failed logins for login user admin on 2 DB systems', null, ['prod-billing', 'prod-orders']],
      ]);
    } finally {
      await Promise.all([orders?.stop(), billing?.stop()]);
    }
  });

  it("an instance it could not read makes the invocation's log line a warning, for log alarms", async () => {
    const base = baseConfig();
    const log = new Lines();
    const fn = new FunctionHost({
      env: {
        HWAUDIT_CONFIG: JSON.stringify({
          ...base,
          // Nothing listens on port 1.
          dbSystems: [{ ...base.dbSystems![0]!, endpoints: [{ host: '127.0.0.1', port: 1 }] }],
          collector: { user: 'hwaudit', password: { env: 'PW' }, tls: 'disabled', allowPlaintext: true },
        }),
        HWAUDIT_STATE: `${tempDir('hwaudit-collect-fn-')}/state.sqlite`,
        PW: PASSWORD,
      },
      stdout: new Lines(),
      stderr: log,
    });
    const r = await fn.invoke(JSON.stringify({ action: 'collect' }));
    expect(r.instances![0]!.error).toMatch(/cannot reach 127\.0\.0\.1:1 \(ECONNREFUSED\)/);
    expect(log.json().at(-1)).toMatchObject({ level: 'warn', msg: 'invocation', action: 'collect' });
    // A sweep that went well is information.
    await fn.invoke(JSON.stringify({ action: 'sweep' }));
    expect(log.json().at(-1)).toMatchObject({ level: 'info', msg: 'invocation', action: 'sweep' });
  });

  it('with no DB system endpoints, configured or discovered by a sync, the call fails and says so', async () => {
    const base = baseConfig();
    const fn = new FunctionHost({
      env: {
        HWAUDIT_CONFIG: JSON.stringify({
          ...base,
          collector: { user: 'hwaudit', password: { secret: SECRET } },
        }),
        HWAUDIT_STATE: `${tempDir('hwaudit-collect-fn-')}/state.sqlite`,
      },
      stdout: new Lines(),
      stderr: new Lines(),
    });
    await expect(fn.invoke(JSON.stringify({ action: 'collect' }))).rejects.toThrow(
      'CONFIG_INVALID: collect: no DB system has endpoints: list them in dbSystems[].endpoints, or run sync to discover them (a DB system set collect: false is not read)',
    );
  });

  it('an unknown collect body is refused; other control messages are named', async () => {
    const fn = host(new Lines(), `${tempDir('hwaudit-collect-fn-')}/state.sqlite`);
    const r = await fn.invoke(JSON.stringify({ action: 'collect', now: true }));
    expect(r.action).toBe('collect');
    expect(r.error).toMatchObject({
      status: 400,
      message:
        'unknown control message: send {"action":"sweep"}, {"action":"collect"}, {"action":"sync"} or {"action":"report",...}',
    });
  });
});
