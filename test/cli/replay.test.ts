// The replay command end to end, as users run it: the built CLI on files.
import { execFile, execFileSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../schemas/config.js';
import { validateConfig } from '../../shared/config/load-config.js';
import { RULES } from '../../shared/detect/registry.js';
import { baseConfig, GROUPS, USERS } from '../../shared/detect/timeline.js';
import { bundlePath } from '../helpers/bundle.js';
import { describeMySql } from '../helpers/mysql-server.js';

const run = promisify(execFile);
const CLI = bundlePath('cli');
const dir = mkdtempSync(join(tmpdir(), 'hwaudit-replay-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Replays with `args` (inputs last) and returns the session ledger it wrote in `format`, a record a line. */
async function ledgerOf(name: string, format: string, args: string[]): Promise<string[]> {
  const sessions = join(dir, `${name}.${format}`);
  const r = await cli('replay', '--sessions', sessions, '--sessions-format', format, ...args);
  expect(r.code, r.stderr).toBe(0);
  return readFileSync(sessions, 'utf8').trim().split('\n');
}

const login = (user: string, proxy = true) => ({
  user,
  os: '',
  ip: '10.0.0.5',
  proxy: proxy ? "''@'%'" : '',
});
const mysql = [
  {
    timestamp: '2026-11-02 09:05:00',
    id: 0,
    class: 'connection',
    event: 'connect',
    connection_id: 11,
    account: { user: 'dba_proxy', host: '%' },
    login: login('alice'),
    connection_data: { connection_type: 'ssl', status: 0, db: 'shop' },
  },
  {
    timestamp: '2026-11-02 09:06:00',
    id: 0,
    class: 'general',
    event: 'status',
    connection_id: 11,
    account: { user: 'dba_proxy', host: '%' },
    login: login('alice'),
    general_data: {
      command: 'Query',
      sql_command: 'grant',
      query: "GRANT ALL ON *.* TO 'x'@'%' IDENTIFIED BY 'Sup3rS3cret!'",
      status: 1064,
    },
  },
  {
    timestamp: '2026-11-02 09:07:00',
    id: 0,
    class: 'general',
    event: 'status',
    connection_id: 11,
    account: { user: 'dba_proxy', host: '%' },
    login: login('alice'),
    general_data: {
      command: 'Query',
      sql_command: 'grant',
      query: "GRANT SELECT ON shop.* TO 'app'@'%'",
      status: 0,
    },
  },
  {
    timestamp: '2026-11-02 09:40:00',
    id: 0,
    class: 'connection',
    event: 'connect',
    connection_id: 12,
    account: { user: 'app', host: '%' },
    login: login('app', false),
    connection_data: { connection_type: 'ssl', status: 0, db: 'shop' },
  },
];
const removal = {
  specversion: '1.0',
  type: 'com.oraclecloud.identityControlPlane.RemoveUserFromGroup',
  id: 'ev-remove-alice',
  time: '2026-11-02T09:00:00.000Z',
  source: 'IdentityProvider',
  data: {
    eventName: 'RemoveUserFromGroup',
    compartmentId: 'ocid1.tenancy.oc1..example',
    identity: { principalName: 'iam-admin', principalId: 'ocid1.user.oc1..admin', ipAddress: '192.0.2.10' },
    response: { status: '204' },
    stateChange: { previous: { userId: USERS.alice, groupId: GROUPS.dba }, current: null },
  },
};

const config = join(dir, 'config.json');
const audit = join(dir, 'prod-orders.audit.log');
const iam = join(dir, 'iam.json');
writeFileSync(config, JSON.stringify(baseConfig()));
writeFileSync(audit, `[\n${mysql.map((e) => `${JSON.stringify(e)},`).join('\n')}\n`);
writeFileSync(iam, JSON.stringify([removal]));

/** One field of each alert (a JSON object a line), sorted. */
const fieldOf = (stdout: string, field: 'rule' | 'id') =>
  stdout
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as Record<typeof field, string>)[field])
    .sort();
const rulesOf = (stdout: string) => fieldOf(stdout, 'rule');

describe('replay', () => {
  it('joins IAM and MySQL inputs into alerts; file order does not matter', async () => {
    const a = await cli('replay', '--config', config, audit, iam);
    const b = await cli('replay', '--config', config, iam, audit);
    expect(a.code).toBe(0);
    expect(rulesOf(a.stdout)).toEqual([
      'access.after-revocation',
      'access.local-account',
      'iam.privileged-group-change',
      'privilege.change',
    ]);
    expect(b.stdout).toBe(a.stdout);
    expect(a.stderr).toMatch(/alerts 4/);
    expect(a.stderr).not.toContain('--as-of');
  });

  it('--as-of after the input moves the watermark there; before the latest event, it says what it did', async () => {
    const later = await cli('replay', '--config', config, '--as-of', '2026-11-05T00:00:00Z', audit, iam);
    expect(later.code).toBe(0);
    expect(later.stderr).toContain('watermark 2026-11-05T00:00:00.000Z');
    expect(later.stderr).not.toContain('is before the latest event');
    const earlier = await cli('replay', '--config', config, '--as-of', '2026-11-02T09:00:00Z', audit, iam);
    expect(earlier.code).toBe(0);
    // Every event was applied all the same.
    expect(earlier.stdout).toBe((await cli('replay', '--config', config, audit, iam)).stdout);
    expect(earlier.stderr).toMatch(
      /\nreplay: --as-of 2026-11-02T09:00:00\.000Z is before the latest event seen \(2026-11-02T[\d:.]+Z\): every event was applied, and the watermark, which never goes back, is that event's time\n/,
    );
  });

  it('a folder stands for the files directly in it (replay and normalize); a folder of none is refused', async () => {
    const folder = join(dir, 'inputs');
    mkdirSync(join(folder, 'older'), { recursive: true });
    copyFileSync(audit, join(folder, 'prod-orders.audit.log'));
    copyFileSync(iam, join(folder, 'iam.json'));
    writeFileSync(join(folder, '.hidden.json'), 'not json');
    writeFileSync(join(folder, 'older', 'skipped.json'), 'not json');
    const files = await cli('replay', '--config', config, audit, iam);
    const inFolder = await cli('replay', '--config', config, folder);
    expect(inFolder.code).toBe(0);
    expect(inFolder.stdout).toBe(files.stdout);
    expect(inFolder.stderr).toMatch(/^replay: 2 input\(s\)/m);
    expect(inFolder.stderr).not.toMatch(/hidden|skipped/);
    expect(inFolder.stderr).toMatch(/dead letters 0\n/);
    const normalized = await cli('normalize', iam, audit); // a folder's files in name order
    expect(normalized.stdout.split('\n').length).toBeGreaterThan(mysql.length);
    expect((await cli('normalize', folder)).stdout).toBe(normalized.stdout);

    const empty = join(dir, 'empty');
    mkdirSync(join(empty, 'sub'), { recursive: true });
    writeFileSync(join(empty, '.keep'), '');
    for (const command of ['replay', 'normalize']) {
      const r = await cli(command, ...(command === 'replay' ? ['--config', config] : []), empty);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(
        `heatwave-iam-audit: ${command}: the folder holds no file to read (path: ${empty})\n`,
      );
    }
  });

  it('refuses standard input or a pipe named twice: two readers would each get some of it', async () => {
    const pipe = join(dir, 'input.pipe');
    execFileSync('mkfifo', [pipe]);
    for (const [command, input, named] of [
      ['replay', '-', '- (standard input)'],
      ['normalize', pipe, pipe],
    ]) {
      const r = await cli(
        command!,
        ...(command === 'replay' ? ['--config', config] : []),
        input!,
        audit,
        input!,
      );
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`heatwave-iam-audit: ${command}: ${named} is a stream: name it once\n`);
    }
  });

  it('reads an OCI audit export over the record size limit event by event (oci logging-search search-logs)', async () => {
    // Thousands of unrelated events around the removal, as `oci logging-search search-logs` prints
    // them: one pretty-printed object of about 5 MB.
    const filler = (i: number) => ({
      ...removal,
      type: 'com.oraclecloud.computeApi.GetInstance',
      id: `ev-filler-${i}`,
      data: {
        ...removal.data,
        eventName: 'GetInstance',
        stateChange: null,
        request: { path: 'x'.repeat(1_000) },
      },
    });
    const rows = [...Array.from({ length: 4_000 }, (_, i) => filler(i)), removal].map((logContent) => ({
      data: { datetime: 1, logContent },
    }));
    const exported = join(dir, 'search-logs.json');
    writeFileSync(
      exported,
      JSON.stringify({ data: { fields: [], results: rows, summary: { resultCount: rows.length } } }, null, 2),
    );
    expect(statSync(exported).size).toBeGreaterThan(4 * 1024 * 1024);
    const r = await cli('replay', '--config', config, audit, exported);
    expect(r.code).toBe(0);
    // The filler concerns nothing read: counted, not kept.
    expect(r.stderr).toMatch(/dead letters 0, ignored 4,000 \(/);
    expect(r.stdout).toBe((await cli('replay', '--config', config, audit, iam)).stdout);
  });

  it('alerts of DB systems in the same second come in DB system order, whatever the file order', async () => {
    // Audit times are whole seconds: events of one time are applied in DB system order (the
    // merge takes them so, and the pipeline orders what it buffers by compareEvents), and a
    // batch's alerts come out in the order they were raised. (The merge's own ranking of DB
    // systems is tested in test/replay-ranks.test.ts: its order decides only batches.)
    const [first] = baseConfig().dbSystems ?? [];
    const ids = ['b', 'c', 'a'].map((n) => `${first!.id.slice(0, -1)}${n}`);
    const tiedDbs = join(dir, 'tied-dbs.json');
    writeFileSync(
      tiedDbs,
      JSON.stringify({
        ...baseConfig(),
        dbSystems: ids.map((id, i) => ({ ...first!, id, name: `tie-${i}` })),
      }),
    );
    const files = ids.map((_, i) => {
      const path = join(dir, `tie-${i}.audit.log`);
      writeFileSync(path, `${JSON.stringify({ ...mysql[3], timestamp: '2026-11-02 09:40:00' })}\n`);
      return path;
    });
    const forward = await cli('replay', '--config', tiedDbs, ...files);
    const backward = await cli('replay', '--config', tiedDbs, ...[...files].reverse());
    const rotated = await cli('replay', '--config', tiedDbs, ...files.slice(1), files[0]!);
    expect(forward.code).toBe(0);
    const dbsOf = (stdout: string) =>
      stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { dbSystem: { id: string } }).dbSystem.id);
    expect(dbsOf(forward.stdout)).toEqual([...ids].sort());
    expect(backward.stdout).toBe(forward.stdout);
    expect(rotated.stdout).toBe(forward.stdout);
  });

  it('never shows the password of a failed statement, in any format', async () => {
    for (const format of ['jsonl', 'ocsf', 'cef', 'ecs']) {
      const sessions = join(dir, `sessions.${format}`);
      const r = await cli(
        'replay',
        '--config',
        config,
        '--format',
        format,
        '--sessions',
        sessions,
        '--sessions-format',
        format,
        audit,
        iam,
      );
      expect(r.code).toBe(0);
      expect(r.stdout + r.stderr + readFileSync(sessions, 'utf8')).not.toContain('Sup3rS3cret');
    }
  });

  it('with --state, a second run over the same input emits no alert', async () => {
    const state = join(dir, 'state.sqlite');
    const first = await cli('replay', '--config', config, '--state', state, audit, iam);
    const second = await cli('replay', '--config', config, '--state', state, audit, iam);
    expect(first.stdout.trim().split('\n')).toHaveLength(4);
    expect(second.code).toBe(0);
    expect(second.stdout).toBe('');
    expect(second.stderr).toMatch(/duplicates 5/);
  });

  it('--out /dev/stdout and --sessions /dev/stdout write to the standard output it was given, here a socket', async () => {
    // A child process's standard output is a socket here, which no path opens (ENXIO).
    const r = await cli('replay', '--config', config, '--out', '/dev/stdout', audit, iam);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(4);
    const ledger = await cli(
      'replay',
      '--config',
      config,
      '--out',
      '/dev/null',
      '--sessions',
      '/dev/stdout',
      audit,
      iam,
    );
    expect(ledger.code).toBe(0);
    expect(
      ledger.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).mysqlAccount),
    ).toEqual(['dba_proxy@%', 'app@%']);
  });

  it('--routes: each route writes what it matches, a maintenance window mutes; a rerun adds nothing', async () => {
    const routed = join(dir, 'routed.json');
    const files = { critical: join(dir, 'critical.ocsf'), all: join(dir, 'all.jsonl') };
    writeFileSync(
      routed,
      JSON.stringify({
        ...baseConfig(),
        routes: [
          {
            name: 'critical',
            match: { minSeverity: 'critical' },
            output: { file: files.critical, format: 'ocsf' },
          },
          // Relative: beside the configuration file, wherever the command runs.
          { name: 'all', output: { file: 'all.jsonl' } },
        ],
        maintenance: [
          {
            from: '2026-11-02T09:30:00Z',
            to: '2026-11-02T10:00:00Z',
            reason: 'app deploy',
            rules: ['access.local-account'],
            routes: ['all'],
          },
        ],
      }),
    );
    const state = join(dir, 'routed.sqlite');
    const r = await cli('replay', '--config', routed, '--routes', '--state', state, audit, iam);
    expect(r.code).toBe(0);
    expect(rulesOf(r.stdout)).toHaveLength(4);
    const critical = readFileSync(files.critical, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(critical.map((c) => [c.class_uid, c.finding_info.analytic.uid])).toEqual([
      [2004, 'access.after-revocation'],
    ]);
    expect(rulesOf(readFileSync(files.all, 'utf8'))).toEqual([
      'access.after-revocation',
      'iam.privileged-group-change',
      'privilege.change',
    ]);
    const muted = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .find((a) => a.rule === 'access.local-account');
    expect(muted.muted).toEqual([{ route: 'all', cause: 'maintenance', reason: 'app deploy' }]);
    expect(r.stderr).toContain(`route critical (file ${files.critical} (ocsf)): 1 delivered, 0 muted`);
    expect(r.stderr).toContain(`route all (file ${files.all} (jsonl)): 3 delivered, 1 muted`);

    const again = await cli('replay', '--config', routed, '--routes', '--state', state, audit, iam);
    expect(again.code).toBe(0);
    expect(readFileSync(files.all, 'utf8').trim().split('\n')).toHaveLength(3);
    expect((await cli('replay', '--config', config, '--routes', audit)).stderr).toMatch(
      /--routes: the configuration has no routes/,
    );
  });

  it('an output that fails from its first send keeps no stored alert from the one that works', async () => {
    // 45,000 records, 10,000 a batch and four batches a commit: a grant every 1,000 records puts
    // alerts in every batch, and the first delivery fails while the same commit stored the next three.
    const base = Date.parse('2026-11-02T09:00:00Z');
    const statement = (i: number) => ({
      ...mysql[2]!,
      timestamp: new Date(base + i * 1000).toISOString().replace('T', ' ').slice(0, 19),
      general_data: {
        command: 'Query',
        sql_command: i % 1000 === 0 ? 'grant' : 'select',
        query: i % 1000 === 0 ? `GRANT SELECT ON shop.* TO 'u${i}'@'%'` : 'SELECT 1',
        status: 0,
      },
    });
    const big = join(dir, 'failing-output', 'prod-orders.audit.log');
    mkdirSync(join(dir, 'failing-output'));
    const records: object[] = [{ ...mysql[0]!, timestamp: '2026-11-02 09:00:00' }];
    for (let i = 1; i < 45_000; i++) records.push(statement(i));
    writeFileSync(big, `[\n${records.map((e) => `${JSON.stringify(e)},`).join('\n')}\n`);
    const failing = join(dir, 'failing-output', 'config.json');
    // A device that takes no byte: every write to it fails (ENOSPC), from the first.
    writeFileSync(
      failing,
      JSON.stringify({ ...baseConfig(), routes: [{ name: 'full', output: { file: '/dev/full' } }] }),
    );
    const state = join(dir, 'failing-output', 'state.sqlite');
    const out = join(dir, 'failing-output', 'alerts.jsonl');
    const r = await cli('replay', '--config', failing, '--routes', '--state', state, '--out', out, big);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/heatwave-iam-audit: cannot write alerts to \/dev\/full \(ENOSPC\)\n$/);
    const stored = fieldOf((await cli('export', 'alerts', '--state', state)).stdout, 'id');
    // More than the first batch holds: the commit stored the alerts of four batches.
    expect(stored.length).toBeGreaterThan(10);
    expect(fieldOf(readFileSync(out, 'utf8'), 'id')).toEqual(stored);
    // Its summary counts them, and says the route got none of them.
    expect(r.stderr).toContain(`\n  alerts ${stored.length}\n`);
    expect(r.stderr).toContain('\n  route full (file /dev/full (jsonl)): 0 delivered, 0 muted\n');
  });

  it('a run an output fails still prints its summary, then the error: exit 1', async () => {
    // Every write to /dev/full fails (ENOSPC): the alerts are raised and stored, and the output fails.
    const r = await cli('replay', '--config', config, '--out', '/dev/full', audit, iam);
    expect(r.code).toBe(1);
    // What it did until the output failed: the records of the batch whose delivery failed, and their
    // alerts by rule (the end of the input, which applies the last event, did not come).
    expect(r.stderr).toMatch(
      new RegExp(
        [
          /^replay: 2 input\(s\), 5 records in [\d.]+ s on one thread/,
          / {2}processed 4, duplicates 0, late 0, dead letters 0/,
          / {2}alerts 3/,
          / {4}access\.after-revocation: 1/,
          / {4}iam\.privileged-group-change: 1/,
          / {4}privilege\.change: 1/,
          / {2}watermark 2026-11-02T09:20:00\.000Z/,
          /replay: failed after the work above; the error follows/,
          /heatwave-iam-audit: cannot write alerts to \/dev\/full \(ENOSPC\)\n$/,
        ]
          .map((line) => line.source)
          .join('\n'),
      ),
    );
  });

  it('writes the session ledger with attribution', async () => {
    const sessions = join(dir, 'sessions.jsonl');
    await cli('replay', '--config', config, '--sessions', sessions, audit, iam);
    const ledger = readFileSync(sessions, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(ledger).toHaveLength(2);
    expect(ledger[0]).toMatchObject({
      identity: { id: USERS.alice },
      mysqlAccount: 'dba_proxy@%',
      attribution: { method: 'login-name', problem: 'left-group' },
    });
  });

  it('a change_user is a record of its own in every SIEM format; the connect keeps who connected', async () => {
    const frances = 'ocid1.user.oc1..frances';
    const base = baseConfig();
    const { directory } = base;
    const changedConfig = join(dir, 'change-user.config.json');
    writeFileSync(
      changedConfig,
      JSON.stringify({
        ...base,
        directory: {
          ...directory,
          users: [...directory!.users!, { id: frances, name: 'frances.pearl' }],
          memberships: [...directory!.memberships!, { user: frances, group: GROUPS.dba }],
        },
        dbSystems: base.dbSystems!.map((d) => ({
          ...d,
          accounts: [...d.accounts!, { user: 'app_orders', host: '%', plugin: 'caching_sha2_password' }],
        })),
      }),
    );
    const connection = (timestamp: string, event: string, user: string, login: Record<string, string>) => ({
      timestamp,
      id: 0,
      class: 'connection',
      event,
      connection_id: 31,
      account: { user, host: '%' },
      login: { ip: '10.0.0.8', ...login },
      connection_data: { connection_type: 'ssl', status: 0, db: 'shop' },
    });
    const changed = join(dir, 'change-user.audit.log');
    const records = [
      connection('2026-11-02 09:00:00', 'connect', 'app_orders', { user: 'app_orders', os: '', proxy: '' }),
      connection('2026-11-02 09:30:00', 'change_user', 'dba_proxy', {
        user: 'frances.pearl',
        os: frances,
        proxy: "''@'%'",
      }),
      connection('2026-11-02 10:00:00', 'disconnect', 'dba_proxy', {
        user: 'frances.pearl',
        os: frances,
        proxy: '',
      }),
    ];
    writeFileSync(changed, JSON.stringify(records));
    const written = (format: string) => ledgerOf('change-user', format, ['--config', changedConfig, changed]);

    const [logon, change, logoff] = (await written('ocsf')).map((l) => JSON.parse(l));
    expect(logon).toMatchObject({
      activity_name: 'Logon',
      time: Date.parse('2026-11-02T09:00:00Z'),
      user: { account: { name: 'app_orders@%' } },
      message: 'Account app_orders@% logged in to prod-orders as app_orders@%',
    });
    expect(logon.user.name).toBeUndefined();
    expect(change).toMatchObject({
      activity_id: 7,
      activity_name: 'Account Switch',
      time: Date.parse('2026-11-02T09:30:00Z'),
      user: { uid: frances, name: 'frances.pearl', account: { name: 'dba_proxy@%' } },
      message:
        'frances.pearl changed user on prod-orders from app_orders@% to dba_proxy@% through IAM group DBAdmins',
      metadata: { event_code: 'connection/change_user', correlation_uid: logon.metadata.correlation_uid },
    });
    expect(change.metadata.uid).not.toBe(logon.metadata.uid);
    expect(logoff).toMatchObject({ activity_name: 'Logoff', time: Date.parse('2026-11-02T10:00:00Z') });

    const cef = await written('cef');
    expect(cef).toHaveLength(2);
    expect(cef[0]).toMatch(/\|session\.logon\|Database login\|1\|rt=1793610000000 .*duser=app_orders@%/);
    expect(cef[0]).not.toContain('frances');
    expect(cef[1]).toMatch(
      /\|session\.change-user\|Database change user\|1\|rt=1793611800000 .*suser=frances\.pearl .*duser=dba_proxy@%/,
    );
    expect(cef[1]).toContain('msg=change_user from app_orders@% to dba_proxy@%');

    const [login, switched] = (await written('ecs')).map((l) => JSON.parse(l));
    expect(login).toMatchObject({
      '@timestamp': '2026-11-02T09:00:00.000Z',
      event: { action: 'login' },
      user: { effective: { name: 'app_orders@%' } },
    });
    expect(login.user.name).toBeUndefined();
    expect(switched).toMatchObject({
      '@timestamp': '2026-11-02T09:30:00.000Z',
      event: { action: 'change-user', id: change.metadata.uid },
      user: { name: 'frances.pearl', id: frances, effective: { name: 'dba_proxy@%' } },
    });
    expect(switched.related.user).toContain('app_orders@%');
    // Written again, and exported from the state store, the records are the same.
    const state = join(dir, 'change-user.sqlite');
    const again = await cli('replay', '--config', changedConfig, '--state', state, changed);
    expect(again.code, again.stderr).toBe(0);
    const exported = await cli('export', 'sessions', '--state', state, '--format', 'ocsf');
    expect(exported.stdout.trim().split('\n')).toEqual(await written('ocsf'));
  });

  it('each switch of a connection is a record of its own; a replay again over its state writes the same', async () => {
    const switchTo = (timestamp: string, user: string, os: string) => ({
      timestamp,
      id: 0,
      class: 'connection',
      event: 'change_user',
      connection_id: 32,
      account: { user: os ? (user === 'alice' ? 'dba_proxy' : 'dev_proxy') : user, host: '%' },
      login: { user, os, ip: '10.0.0.8', proxy: os ? "''@'%'" : '' },
      connection_data: { connection_type: 'ssl', status: 0, db: 'shop' },
    });
    const records = [
      { ...switchTo('2026-11-02 09:00:00', 'app', ''), event: 'connect' },
      switchTo('2026-11-02 09:10:00', 'alice', USERS.alice),
      // A pool resetting the connection to the same login: no switch.
      switchTo('2026-11-02 09:11:00', 'alice', USERS.alice),
      switchTo('2026-11-02 09:20:00', 'dave', USERS.dave),
      switchTo('2026-11-02 09:30:00', 'bob', USERS.bob),
      { ...switchTo('2026-11-02 09:40:00', 'bob', USERS.bob), event: 'disconnect' },
    ];
    const input = join(dir, 'switches.audit.log');
    writeFileSync(input, JSON.stringify(records));
    const state = join(dir, 'switches.sqlite');
    const replay = (format: string) =>
      ledgerOf('switches', format, ['--config', config, '--state', state, input]);
    const changes = (lines: string[]) => lines.filter((l) => /change.user/.test(l));
    const ocsf = await replay('ocsf');
    expect(changes(ocsf).map((l) => JSON.parse(l).message)).toEqual([
      'alice@example.com changed user on prod-orders from app@% to dba_proxy@% through IAM group DBAdmins',
      'dave@example.com changed user on prod-orders from dba_proxy@% (alice@example.com) to dev_proxy@% through IAM group Developers',
      'bob@example.com changed user on prod-orders from dev_proxy@% (dave@example.com) to dev_proxy@% through IAM group Developers',
    ]);
    expect(changes(await replay('cef'))).toHaveLength(3);
    expect(changes(await replay('ecs')).map((l) => JSON.parse(l).event.id)).toEqual(
      changes(ocsf).map((l) => JSON.parse(l).metadata.uid),
    );
    // The same input again over the same state: nothing is applied twice, the records are the same.
    expect(await replay('ocsf')).toEqual(ocsf);
    const exported = await cli('export', 'sessions', '--state', state, '--format', 'ocsf');
    expect(exported.stdout.trim().split('\n')).toEqual(ocsf);
  });

  it('refuses a session ledger it could not write before reading any input, and writes it whole', async () => {
    for (const [sessions, problem] of [
      [dir, `--sessions ${dir} is a folder: name a file`],
      [
        join(dir, 'missing', 'sessions.jsonl'),
        `--sessions ${join(dir, 'missing', 'sessions.jsonl')} cannot be written: ${join(dir, 'missing')} (ENOENT)`,
      ],
    ] as const) {
      const r = await cli('replay', '--config', config, '--sessions', sessions, audit, iam);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`heatwave-iam-audit: ${problem}\n`);
      expect(r.stdout).toBe('');
    }
    // Written under a temporary name, then renamed: nothing else is left in its folder.
    const folder = join(dir, 'ledger');
    mkdirSync(folder);
    const r = await cli(
      'replay',
      '--config',
      config,
      '--sessions',
      join(folder, 'sessions.jsonl'),
      audit,
      iam,
    );
    expect(r.code).toBe(0);
    expect(readdirSync(folder)).toEqual(['sessions.jsonl']);
  });

  it('invalid config: exit 2 naming the bad key, one problem a line', async () => {
    /** The lines a replay with this configuration writes to stderr, once it has exited 2. */
    const refused = async (name: string, yaml: string) => {
      const path = join(dir, name);
      writeFileSync(path, yaml);
      const r = await cli('replay', '--config', path, audit);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      return { path, lines: r.stderr.split('\n') };
    };
    const bad = await refused(
      'bad.yaml',
      'lateness: 20 minutes\nrules:\n  auth.failure-burst: { threshold: many }\n  no.such-rule: {}\n',
    );
    expect(bad.lines[1]).toMatch(/^ {2}lateness: expected an ISO 8601 duration/);
    const several = await refused('several.yaml', 'lateness: 20 minutes\nfoo: 1\n');
    expect(several.lines).toEqual([
      `heatwave-iam-audit: invalid configuration (${several.path}):`,
      '  lateness: expected an ISO 8601 duration such as PT20M or P1D',
      '  foo: unknown key',
      '',
    ]);
    // A problem quoting the configuration keeps to its line: its line breaks, escapes and bidirectional
    // controls are shown.
    const forged = await refused(
      'forged.yaml',
      'maintenance:\n  - { from: 2026-11-01T00:00:00Z, to: 2026-11-02T00:00:00Z, reason: x, rules: [audit.gap],\n      routes: ["x\\e[31m\\u202e\\nheatwave-iam-audit: ok"] }\n',
    );
    expect(forged.lines.slice(1)).toEqual([
      '  maintenance[0].routes[0]: no route is named x\u241b[31m\ufffd\u240aheatwave-iam-audit: ok',
      '',
    ]);
    const unknownKey = await refused('unknown.yaml', 'dbSystems:\n  - { id: x, name: y, iamonly: true }\n');
    expect(unknownKey.lines[1]).toMatch(/^ {2}dbSystems\[0\]\.iamonly: unknown key/);
    const rule = await refused(
      'rule.yaml',
      'rules:\n  auth.failure-burst: { threshold: many }\n  no.such-rule: {}\n',
    );
    expect(rule.lines).toContainEqual(expect.stringMatching(/^ {2}rules\["no.such-rule"\]: unknown rule id/));
    expect(rule.lines).toContainEqual(expect.stringMatching(/^ {2}rules\["auth.failure-burst"\].threshold/));
    // An expected credential creation names whom it is about, with credential types the rule knows.
    const credentials = await refused(
      'credentials.yaml',
      [
        'rules:',
        '  iam.credential-change:',
        '    expected:',
        '      - { users: [svc-orders], credentials: [api-keys], reason: terraform }',
        '      - { credentials: [api-key], reason: terraform }',
        '',
      ].join('\n'),
    );
    expect(credentials.lines.slice(1)).toEqual([
      expect.stringMatching(
        /^ {2}rules\["iam.credential-change"\].expected\[0\].credentials\[0\]: .*"api-key"/,
      ),
      '  rules["iam.credential-change"].expected[1]: name the actors or the users it acknowledges (or both)',
      '',
    ]);
    // An entry listed twice: which one would count is said nowhere (a break-glass group or an
    // iamOnly DB system listed again without it would lose it), and a name picks a DB system.
    const twice = await refused(
      'twice.yaml',
      [
        'directory:',
        '  users: [{ id: u1, name: alice }, { id: u1, name: alice2 }]',
        '  groups: [{ id: g1 }, { id: g1, breakGlass: { maxDuration: PT4H } }]',
        'dbSystems:',
        '  - { id: d1, name: prod }',
        '  - { id: d1, name: prod, iamOnly: true }',
        '  - { id: d2, name: prod }',
        '',
      ].join('\n'),
    );
    expect(twice.lines.slice(1)).toEqual([
      '  directory.users[1].id: user u1 is listed twice (also directory.users[0])',
      '  directory.groups[1].id: group g1 is listed twice (also directory.groups[0])',
      '  dbSystems[1].id: DB system d1 is listed twice (also dbSystems[0])',
      '  dbSystems[2].name: prod is also the name of dbSystems[0]',
      '',
    ]);
    // Text that is not YAML names where the parser stopped, and why.
    const duplicate = await refused('duplicate.yaml', 'lateness: PT20M\nlateness: PT30M\n');
    expect(duplicate.lines).toEqual([
      `heatwave-iam-audit: invalid configuration (${duplicate.path}): not valid YAML or JSON at line 2, column 1: Map keys must be unique`,
      '',
    ]);
    const unclosed = await refused('unclosed.yaml', 'tenancy: x\nlateness: "PT1M\n');
    expect(unclosed.lines[0]).toMatch(/not valid YAML or JSON at line 3, column 1: Missing closing "quote$/);
  });

  it('bad usage: exit 2', async () => {
    expect((await cli('replay', audit)).code).toBe(2);
    expect((await cli('replay', '--config', config, '--format', 'xml', audit)).code).toBe(2);
    expect((await cli('replay', '--config', config, join(dir, 'missing.log'))).code).toBe(2);
  });

  it('an input of no known kind is named and dead-lettered; the completed run exits 0', async () => {
    const foreign = join(dir, 'foreign.json');
    writeFileSync(foreign, '{"hello":"world"}\n');
    const out = join(dir, 'foreign-alerts.jsonl');
    const r = await cli('replay', '--config', config, '--out', out, audit, foreign);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/foreign.json: no record of a kind/);
    expect(r.stderr).toMatch(/UNKNOWN_KIND: 1/);
    // An `_Audit` export of other services' events only is of a kind we read: they are ignored.
    const others = join(dir, 'other-services.json');
    writeFileSync(others, readFileSync(new URL('../events/oci-audit/unknown-type.json', import.meta.url)));
    const ignored = await cli('replay', '--config', config, audit, others);
    expect(ignored.stderr).toMatch(/ignored 1 \(/);
    expect(ignored.stderr).not.toMatch(/no record of a kind/);
    expect(r.stderr).not.toMatch(/export dead-letters/);
    const alone = await cli('replay', '--config', config, audit);
    expect(readFileSync(out, 'utf8')).toBe(alone.stdout);
    // With a state kept, the summary says where all the dead letters are.
    const state = join(dir, 'foreign.sqlite');
    const kept = await cli('replay', '--config', config, '--state', state, audit, foreign);
    expect(kept.stderr).toContain(`    all of them: export dead-letters --state ${state}\n`);
    const letters = await cli('export', 'dead-letters', '--state', state);
    expect(
      letters.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([expect.objectContaining({ seq: 1, code: 'UNKNOWN_KIND', source: foreign, line: 1 })]);
    const help = await cli('replay', '--help');
    expect(help.stdout).toMatch(/Exit codes:\n {2}0 {2}the run completed/);
    expect(help.stdout).toContain('UNKNOWN_KIND');
  });

  it('rules lists every rule, shows one whole with its runbook, and writes them as JSON', async () => {
    const r = await cli('rules');
    expect(r.code).toBe(0);
    const ids = RULES.map((rule) => rule.id);
    expect(
      r.stdout
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.split(' ')[0]),
    ).toEqual(ids);

    const burst = RULES.find((rule) => rule.id === 'auth.failure-burst')!;
    const one = await cli('rules', 'auth.failure-burst');
    expect(one.code).toBe(0);
    expect(one.stdout).toContain(`runbook          ${burst.runbook}\n`);
    expect(one.stdout).toContain(`false positives\n  - ${burst.falsePositives[0]}\n`);
    expect(one.stdout).toContain('within 1 hour merge into the first alert');
    expect((await cli('rules', 'audit.tamper')).stdout).toContain('suppression      none');

    const all = JSON.parse((await cli('rules', '--format', 'json')).stdout);
    expect(all.map((c: { id: string }) => c.id)).toEqual(ids);
    expect(all[ids.indexOf('auth.failure-burst')]).toEqual({
      id: burst.id,
      title: burst.title,
      severity: burst.severity,
      attack: burst.attack,
      description: burst.description,
      runbook: burst.runbook,
      falsePositives: burst.falsePositives,
      suppressionWindowMs: 3_600_000,
      parameters: { threshold: 5, window: 'PT10M', longThreshold: 20, longWindow: 'P1D' },
    });
    expect(one.stdout).toContain(
      'tuning           rules["auth.failure-burst"] in the configuration: enabled, severity, and these parameters (default):\n  threshold      5\n  window         PT10M\n  longThreshold  20\n  longWindow     P1D\n',
    );
    // The defaults as shown are a configuration that gives every rule its defaults.
    const shown = Object.fromEntries(
      all.map((c: { id: string; parameters: Record<string, unknown> }) => [
        c.id,
        Object.fromEntries(Object.entries(c.parameters).filter(([, v]) => v !== null)),
      ]),
    );
    const { rules: active } = validateConfig({ rules: shown });
    for (const { rule, params } of active) expect(params).toEqual(rule.params.parse({}));
    for (const ms of [0, 1_500, 30_000, 90_000, 3_600_000, 5_400_000, 86_400_000, 90_061_000])
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    expect([5_400_000, 86_400_000, 90_061_000].map(formatDuration)).toEqual(['PT1H30M', 'P1D', 'PT25H1M1S']);
    expect(JSON.parse((await cli('rules', 'audit.tamper', '--format', 'json')).stdout).id).toBe(
      'audit.tamper',
    );

    for (const [args, problem] of [
      [['nope'], /^heatwave-iam-audit: rules: no rule nope; the rules are break-glass\.stale, /],
      [['--format', 'xml'], /^heatwave-iam-audit: rules: --format expects table or json\n$/],
      [
        ['audit.tamper', 'extra'],
        /^heatwave-iam-audit: rules: unexpected argument 'extra' \(see rules --help\)\n$/,
      ],
    ] as const) {
      const refused = await cli('rules', ...args);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(problem);
    }
  });

  it('every command refuses an argument it does not take', async () => {
    for (const [command, ...args] of [
      ['sync', '--print', 'extra'],
      ['doctor', 'extra'],
      ['collect', 'extra'],
      ['consume', 'extra'],
      ['backfill', 'extra'],
      ['demo', 'extra'],
      ['invoke', 'extra'],
      ['export', 'alerts', 'extra'],
      ['report', 'all', 'extra'],
    ]) {
      const r = await cli(command!, ...args);
      expect(r.code, command).toBe(2);
      expect(r.stderr).toBe(
        `heatwave-iam-audit: ${command}: unexpected argument 'extra' (see ${command} --help)\n`,
      );
    }
  });

  it('names an option it does not know, or one given without its value, and points to the help', async () => {
    for (const [args, problem] of [
      [['normalize', '--config', 'x.yaml'], 'normalize: unknown option --config (see normalize --help)'],
      [['replay', '-x'], 'replay: unknown option -x (see replay --help)'],
      [['export', 'alerts', '--state'], 'export: --state needs a value (see export --help)'],
    ] as const) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toBe(`heatwave-iam-audit: ${problem}\n`);
    }
  });
});

describeMySql('replay with a MySQL state store', (server) => {
  it('--state mysql://… (password from the environment) keeps state between runs', async () => {
    const db = await server.createDatabase();
    const first = await cli('replay', '--config', config, '--state', db.url, audit, iam);
    const second = await cli('replay', '--config', config, '--state', db.url, audit, iam);
    expect(first.code).toBe(0);
    expect(rulesOf(first.stdout)).toHaveLength(4);
    expect(second.code).toBe(0);
    expect(second.stdout).toBe('');
    expect(first.stderr + second.stderr).not.toContain(
      process.env.HWAUDIT_STATE_PASSWORD ?? 'no password set',
    );
  });

  it('names the store where the dead letters are without a password the URL holds', async () => {
    const db = await server.createDatabase();
    const withPassword = db.url.replace(/^mysql:\/\/([^@]+)@/, 'mysql://$1:url-secret@');
    expect(withPassword).toContain(':url-secret@');
    const foreign = join(dir, 'foreign-mysql.json');
    writeFileSync(foreign, '{"hello":"world"}\n');
    const r = await cli('replay', '--config', config, '--state', withPassword, audit, foreign);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`    all of them: export dead-letters --state ${db.url}`);
    expect(r.stderr).not.toContain('url-secret');
  });
});
