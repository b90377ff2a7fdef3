// The collect command end to end, as users run it: the built CLI reading a demo fleet from
// MySQL-protocol servers (test/mysql-server), killed with SIGKILL at random points and run again,
// gives the alerts and session ledger that replaying the same audit files gives.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { Alert } from '../../schemas/alert.js';
import { generateDemo } from '../../shared/demo/generate-demo.js';
import { CLI, runCli, runCliKilledAfter, stateOf } from '../helpers/cli-process.js';
import { AuditLog } from '../mysql-server/audit-log.js';
import { minutes, RawLog } from '../mysql-server/raw-events.js';
import { HeatWaveTestServer } from '../mysql-server/server.js';
import { tlsMaterial } from '../mysql-server/tls.js';
import { createTestPrincipal, generateTestKeyPair } from '../oci-endpoint/signature.js';

const PASSWORD = 'Demo-c0llector-pw';
const ENV = { ...process.env, HWAUDIT_TEST_DB_PASSWORD: PASSWORD };
const dir = mkdtempSync(join(tmpdir(), 'hwaudit-collect-'));
const servers: HeatWaveTestServer[] = [];
/** Collector settings for the plaintext test servers of the smaller cases. */
const PLAIN_COLLECTOR = {
  user: 'c',
  password: { env: 'HWAUDIT_TEST_DB_PASSWORD' },
  tls: 'disabled',
  allowPlaintext: true,
};

/**
 * Raw audit events of a demo input: an on-disk audit file, or collector records (the gap record
 * the demo's collector stream carries is the demo's, not the server's: it is left out).
 */
function rawEvents(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l.replace(/,$/, '')) as Record<string, unknown>)
    .filter((r) => r.source !== 'audit-gap')
    .map((r) => (r.source === 'mysql-audit' ? (r.event as Record<string, unknown>) : r));
}

let demo: ReturnType<typeof generateDemo>;
let collectConfig: string;
let mysqlInputs: string[];

beforeAll(async () => {
  const tls = await tlsMaterial();
  demo = generateDemo({ out: join(dir, 'demo'), seed: 5, scale: 0.1, appRate: 0.3 });
  mkdirSync(join(dir, 'inputs'));
  // What each server holds, as raw audit records: the reference replay reads the same.
  mysqlInputs = demo.inputs
    .filter((p) => !p.includes('/iam/'))
    .map((p) => {
      // Named after the DB system, which is how replay tells a raw audit file's DB system.
      const copy = join(dir, 'inputs', `${p.split('/').at(-1)!.split('.')[0]}.audit.log`);
      writeFileSync(
        copy,
        `[\n${rawEvents(p)
          .map((e) => JSON.stringify(e))
          .join(',\n')}\n`,
      );
      return copy;
    });
  const config = parse(readFileSync(demo.config, 'utf8')) as {
    dbSystems: { id: string; name: string; endpoints?: unknown[] }[];
    collector?: unknown;
  };
  for (const db of config.dbSystems) {
    const input = mysqlInputs.find((p) => p.endsWith(`/${db.name}.audit.log`))!;
    const server = await HeatWaveTestServer.start({
      accounts: [{ user: 'hwaudit_collector', password: PASSWORD, grants: ['AUDIT_ADMIN'] }],
      tls: { key: tls.key, cert: tls.cert },
      audit: new AuditLog(rawEvents(input)),
    });
    servers.push(server);
    db.endpoints = [{ host: '127.0.0.1', port: server.address.port }];
  }
  config.collector = {
    user: 'hwaudit_collector',
    password: { env: 'HWAUDIT_TEST_DB_PASSWORD' },
    batchSize: 500,
  };
  collectConfig = join(dir, 'collect.yaml');
  writeFileSync(collectConfig, stringify(config));
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  rmSync(dir, { recursive: true, force: true });
});

describe('collect', () => {
  it('killed with SIGKILL at random points and run again: the same alerts and ledger as a replay, none lost or twice', async () => {
    const reference = join(dir, 'replay.sqlite');
    const replay = await runCli([
      'replay',
      '--config',
      demo.config,
      '--state',
      reference,
      '--out',
      join(dir, 'replay.jsonl'),
      ...mysqlInputs,
    ]);
    expect(replay.code, replay.stderr).toBe(0);
    const expected = await stateOf(reference);
    expect(expected.alerts.length).toBeGreaterThan(5);

    const state = join(dir, 'collect.sqlite');
    const args = ['collect', '--config', collectConfig, '--state', state, '--out', join(dir, 'alerts.jsonl')];
    // A fixed sequence of kill times (ms after start), from before the first batch to late in the run.
    const kills = [450, 900, 700, 1300, 600, 1800, 1000];
    let killed = 0;
    for (const ms of kills) {
      const r = await runCliKilledAfter(args, ms, ENV);
      if (r.signal === 'SIGKILL') killed++;
      else expect(r.code, r.stderr).toBe(0);
    }
    expect(killed).toBeGreaterThan(2);
    const last = await runCli([...args, '--sessions', join(dir, 'sessions.jsonl')], ENV);
    expect(last.code, last.stderr).toBe(0);
    const got = await stateOf(state);
    expect(got.alerts.map((a) => a.id)).toEqual(expected.alerts.map((a) => a.id));
    expect(got.alerts).toEqual(expected.alerts);
    expect(got.sessions).toEqual(expected.sessions);
    const ledger = readFileSync(join(dir, 'sessions.jsonl'), 'utf8').trim().split('\n');
    expect(ledger).toHaveLength(expected.sessions.length);
    // Every line of the alerts file is a whole alert of the expected set.
    const lines = readFileSync(join(dir, 'alerts.jsonl'), 'utf8').split('\n').filter(Boolean);
    const ids = new Set(expected.alerts.map((a) => a.id));
    for (const line of lines.slice(0, -1)) expect(ids.has((JSON.parse(line) as Alert).id)).toBe(true);
  }, 120_000);

  it('an output that fails ends the run with its summary, then the error: exit 1', async () => {
    // Every write to /dev/full fails (ENOSPC): the first batch with alerts stores them, and fails.
    const r = await runCli(['collect', '--config', collectConfig, '--out', '/dev/full'], ENV);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /\ncollect: \d+ instance\(s\), [\d.]+ s; the first pass did not end\n {2}processed [1-9][\d,]*, duplicates 0, late 0, dead letters 0\n/,
    );
    expect(r.stderr).toMatch(/\n {2}alerts [1-9]\d*\n/);
    expect(r.stderr).toMatch(
      /\ncollect: failed after the work above; the error follows\nheatwave-iam-audit: cannot write alerts to \/dev\/full \(ENOSPC\)\n$/,
    );
  });

  it('one instance down: the others are read, the summary names it, exit 3', async () => {
    const up = await HeatWaveTestServer.start({
      accounts: [{ user: 'c', password: PASSWORD, grants: ['AUDIT_ADMIN'] }],
      audit: new AuditLog(
        new RawLog().session({ at: minutes(0), conn: 5, user: 'admin', queries: 2 }).events,
      ),
    });
    const down = await HeatWaveTestServer.start({});
    servers.push(up);
    await down.stop();
    const config = join(dir, 'partial.yaml');
    writeFileSync(
      config,
      stringify({
        collector: PLAIN_COLLECTOR,
        dbSystems: [
          {
            id: 'ocid1.mysqldbsystem.oc1..a',
            name: 'db-a',
            endpoints: [{ host: '127.0.0.1', port: up.address.port }],
          },
          {
            id: 'ocid1.mysqldbsystem.oc1..b',
            name: 'db-b',
            endpoints: [{ host: '127.0.0.1', port: down.address.port, name: 'primary' }],
          },
        ],
      }),
    );
    const r = await runCli(['collect', '--config', config], ENV);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /db-a\/127\.0\.0\.1:\d+ \(127\.0\.0\.1:\d+, MySQL 8\.4\.3-u2-cloud, audit log plugin\): 4 records, caught up/,
    );
    expect(r.stderr).toMatch(
      /db-b\/primary \(127\.0\.0\.1:\d+\): 0 records, NOT READ: db-b\/primary: cannot reach 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/,
    );

    const wrong = await runCli(['collect', '--config', config, '--db-system', 'db-a'], {
      ...ENV,
      HWAUDIT_TEST_DB_PASSWORD: 'not-the-password',
    });
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toContain(
      'access denied for the collector user c (check the password source: environment variable HWAUDIT_TEST_DB_PASSWORD)',
    );
    expect(wrong.stderr + wrong.stdout).not.toContain('not-the-password');
    expect(wrong.stderr + wrong.stdout).not.toContain(PASSWORD);

    const unknown = await runCli(['collect', '--config', config, '--db-system', 'nosuch'], ENV);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--db-system nosuch: no configured DB system has this id or name');
  });

  it('a read buffer larger than the server allows is a configuration error naming the key, exit 2', async () => {
    const config = join(dir, 'big-buffer.yaml');
    writeFileSync(
      config,
      stringify({
        collector: { ...PLAIN_COLLECTOR, readBufferSize: 8_388_608 },
        dbSystems: [
          { id: 'ocid1.mysqldbsystem.oc1..a', name: 'db-a', endpoints: [{ host: '127.0.0.1', port: 1 }] },
        ],
      }),
    );
    for (const command of ['collect', 'doctor']) {
      const r = await runCli([command, '--config', config], ENV);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('collector.readBufferSize');
    }
  });

  it('--interval without --follow is refused, not ignored', async () => {
    const r = await runCli(['collect', '--config', join(dir, 'not-read.yaml'), '--interval', 'PT2S'], ENV);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--interval is the pause between passes of --follow');
  });

  it('a password variable that is not set is a configuration error naming each key that reads it, exit 2', async () => {
    const config = join(dir, 'unset-password.yaml');
    const endpoint = (port: number) => [{ host: '127.0.0.1', port }];
    writeFileSync(
      config,
      stringify({
        collector: { user: 'hwaudit', password: { env: 'HWAUDIT_TEST_UNSET_A' } },
        dbSystems: [
          { id: 'ocid1.mysqldbsystem.oc1..a', name: 'db-a', endpoints: endpoint(1) },
          {
            id: 'ocid1.mysqldbsystem.oc1..b',
            name: 'db-b',
            endpoints: endpoint(2),
            collector: { password: { env: 'HWAUDIT_TEST_UNSET_B' } },
          },
        ],
      }),
    );
    for (const command of ['collect', 'doctor']) {
      const r = await runCli([command, '--config', config], ENV);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('collector.password: the variable HWAUDIT_TEST_UNSET_A is not set');
      expect(r.stderr).toContain(
        'dbSystems[1].collector.password: the variable HWAUDIT_TEST_UNSET_B is not set',
      );
    }
  });

  it('auth: iam logs in with the API key of the HWAUDIT_OCI_* profile, no password anywhere; stdout holds alerts only', async () => {
    const principal = createTestPrincipal({ profile: 'COLLECTOR' });
    try {
      const { tenancy, user, fingerprint, publicKeyPem } = principal;
      const s = await HeatWaveTestServer.start({
        iam: {
          issuerPublicKeyPem: generateTestKeyPair().publicKeyPem,
          apiKeys: [{ tenancy, user, fingerprint, publicKeyPem }],
        },
        accounts: [
          {
            user: 'hwaudit_collector',
            plugin: 'authentication_oci',
            authenticationString: JSON.stringify({ tenancy, user }),
            grants: ['AUDIT_ADMIN'],
          },
        ],
        audit: new AuditLog(
          new RawLog().session({ at: minutes(0), conn: 5, user: 'admin', queries: 2 }).events,
        ),
      });
      servers.push(s);
      const config = join(dir, 'iam.yaml');
      writeFileSync(
        config,
        stringify({
          collector: { user: 'hwaudit_collector', auth: 'iam', tls: 'disabled', allowPlaintext: true },
          dbSystems: [
            {
              id: 'ocid1.mysqldbsystem.oc1..iam',
              name: 'db-iam',
              iamOnly: true,
              endpoints: [{ host: '127.0.0.1', port: s.address.port }],
            },
          ],
        }),
      );
      const env = {
        PATH: process.env.PATH,
        HWAUDIT_OCI_AUTH: 'config-file',
        HWAUDIT_OCI_CONFIG_FILE: principal.configFile,
        HWAUDIT_OCI_PROFILE: 'COLLECTOR',
      };
      const r = await runCli(['collect', '--config', config], env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(
        /db-iam\/127\.0\.0\.1:\d+ \(127\.0\.0\.1:\d+, MySQL [^)]*\): 4 records, caught up/,
      );
      const lines = r.stdout.trim().split('\n');
      expect(lines.map((l) => (JSON.parse(l) as Alert).rule)).toEqual(['access.local-account']);
      expect(s.iamLogins).toEqual([{ ok: true, principal: user }]);

      // Another key for the same profile name: refused, and the summary names the principal.
      const stranger = createTestPrincipal({ profile: 'COLLECTOR' });
      const denied = await runCli(['collect', '--config', config], {
        ...env,
        HWAUDIT_OCI_CONFIG_FILE: stranger.configFile,
      });
      stranger.cleanup();
      expect(denied.code).toBe(3);
      expect(denied.stderr).toContain(
        `access denied for the collector user hwaudit_collector (IAM login as API key of ${stranger.user} (fingerprint ${stranger.fingerprint})`,
      );
      expect(denied.stderr + denied.stdout).not.toMatch(/PRIVATE KEY|"signature"/);
    } finally {
      principal.cleanup();
    }
  });

  it('--follow reads new events as they are written and stops cleanly on SIGTERM', async () => {
    // Events of the last minutes: the watermark follows the clock between passes.
    const now = Math.floor(Date.now() / 1000) * 1000;
    const log = new RawLog().session({ at: now - 120_000, conn: 5, user: 'admin', queries: 1 });
    const s = await HeatWaveTestServer.start({
      accounts: [{ user: 'c', password: PASSWORD, grants: ['AUDIT_ADMIN'] }],
      audit: new AuditLog(log.events),
    });
    servers.push(s);
    const config = join(dir, 'follow.yaml');
    writeFileSync(
      config,
      stringify({
        lateness: 'PT10S',
        collector: PLAIN_COLLECTOR,
        dbSystems: [
          {
            id: 'ocid1.mysqldbsystem.oc1..f',
            name: 'db-f',
            iamOnly: true,
            endpoints: [{ host: '127.0.0.1', port: s.address.port }],
          },
        ],
      }),
    );
    const child = spawn(
      process.execPath,
      [
        CLI,
        'collect',
        '--config',
        config,
        '--state',
        join(dir, 'follow.sqlite'),
        '--follow',
        '--interval',
        'PT0.2S',
      ],
      { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    const until = async (pred: () => boolean) => {
      for (let i = 0; i < 200 && !pred(); i++) await new Promise((r) => setTimeout(r, 50));
      expect(pred(), `stdout:\n${stdout}\nstderr:\n${stderr}`).toBe(true);
    };
    await until(() => stdout.includes('access.local-account'));
    const more = new RawLog();
    (more as unknown as { id: number }).id = 100;
    s.audit.append(more.session({ at: now - 60_000, conn: 6, user: 'intruder', queries: 0 }).events);
    await until(() => stdout.includes('intruder'));
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code).toBe(0);
    expect(stderr).toContain('SIGTERM received');
    expect(stdout.trim().split('\n')).toHaveLength(2);
  });
});
