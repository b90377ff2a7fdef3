// doctor --state: what the state holds of the proxied accounts of each DB system it checks.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { runDoctor } from '../../functions/cli/doctor.js';
import { at, baseConfig, DB, db } from '../../shared/detect/timeline.js';
import type { Check, InstanceDiagnosis } from '../../shared/sources/doctor.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { toIso } from '../../shared/time.js';
import { accountSnapshot, following } from '../helpers/account-snapshots.js';
import { runCli } from '../helpers/cli-process.js';
import { runBatches } from '../helpers/run-timeline.js';

const dir = mkdtempSync(join(tmpdir(), 'hwaudit-doctor-state-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The standard fleet with one endpoint nothing listens on: doctor fails to reach it, quickly. */
function configFile(): string {
  const base = baseConfig();
  const path = join(dir, 'config.json');
  writeFileSync(
    path,
    JSON.stringify({
      ...base,
      dbSystems: [{ ...base.dbSystems![0]!, endpoints: [{ host: '127.0.0.1', port: 1 }] }],
      collector: {
        user: 'c',
        password: { env: 'HWAUDIT_TEST_DB_PASSWORD' },
        tls: 'disabled',
        allowPlaintext: true,
      },
    }),
  );
  return path;
}

/** A SQLite state that followed snapshot s1 (`unlocked` proxied accounts open) and then `statements`. */
async function stateFile(
  name: string,
  unlocked: string[],
  statements: [number, string][],
  scope?: string,
): Promise<string> {
  const path = join(dir, name);
  const store = SqliteStore.open(path, scope === undefined ? {} : { scope });
  await runBatches(
    [
      statements.map(([minute, sql]) =>
        db.query({ at: at(minute), conn: 9, account: 'admin', sqlCommand: 'alter_user', sql }),
      ),
    ],
    { store, opened: following([accountSnapshot('s1', at(-60), { unlocked })]) },
  );
  await store.close();
  return path;
}

async function doctor(
  state: string,
  extra: string[] = [],
): Promise<{ code: number; out: string; checks: Check[] }> {
  const capture = () => {
    const stream = new PassThrough();
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
  };
  const [stdout, stderr, json] = [capture(), capture(), capture()];
  const env = { ...process.env, HWAUDIT_TEST_DB_PASSWORD: 'pw' };
  const args = ['--config', configFile(), '--state', state, ...extra];
  const code = await runDoctor(args, { stdout: stdout.stream, stderr: stderr.stream }, { env });
  await runDoctor([...args, '--json'], { stdout: json.stream, stderr: stderr.stream }, { env });
  const [instance] = JSON.parse(json.text()) as InstanceDiagnosis[];
  return { code, out: stdout.text(), checks: instance!.checks };
}

describe('doctor --state', () => {
  it('warns of the proxied accounts the state holds open to logins without IAM, naming each and since when', async () => {
    const state = await stateFile(
      'open.sqlite',
      ['dba_proxy'],
      [
        [1, "ALTER USER 'dev_proxy'@'%' IDENTIFIED BY <secret> ACCOUNT UNLOCK"],
        // A local account no group maps to is not one of them.
        [2, "ALTER USER 'app'@'%' IDENTIFIED BY <secret> ACCOUNT UNLOCK"],
      ],
    );
    const { code, out, checks } = await doctor(state);
    const check = checks.find((c) => c.name === 'proxied accounts');
    expect(check).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(
        new RegExp(
          `^open to logins without IAM, as the state holds them: dba_proxy@% \\(since snapshot:s1\\); dev_proxy@% \\(since ${toIso(at(1)).replaceAll('.', '\\.')}, ${DB.id}:`,
        ),
      ),
      fix: expect.stringContaining('ACCOUNT LOCK'),
    });
    expect(check?.detail).not.toContain('app@');
    expect(check?.detail).not.toContain('<secret>');
    expect(out).toContain(`${DB.name}/127.0.0.1:1 (127.0.0.1:1)`);
    expect(out).toMatch(/\n {2}WARN {2}proxied accounts\s+open to logins without IAM/);
    // A warning: the exit code is the instance's (not reached here), as without it.
    expect(code).toBe(3);
  });

  it('passes where the state holds every proxied account locked (a lock after an opening included)', async () => {
    const state = await stateFile(
      'locked.sqlite',
      ['dba_proxy'],
      [[1, "ALTER USER 'dba_proxy'@'%' ACCOUNT LOCK"]],
    );
    const { checks } = await doctor(state);
    expect(checks.find((c) => c.name === 'proxied accounts')).toEqual({
      name: 'proxied accounts',
      status: 'pass',
      detail: 'none is open to logins without IAM, as the state holds them',
    });
  });

  it("does not pass a DB system whose accounts the scope it reads does not hold; --scope reads the pipeline's", async () => {
    // The function correlates in scope "function": the default scope holds nothing of the fleet.
    const state = await stateFile('function.sqlite', ['dba_proxy'], [], 'function');
    const unknown = (await doctor(state)).checks.find((c) => c.name === 'proxied accounts');
    expect(unknown).toMatchObject({
      status: 'warn',
      detail: expect.stringContaining('scope default holds no account of this DB system'),
      fix: expect.stringContaining('--scope'),
    });
    const read = (await doctor(state, ['--scope', 'function'])).checks.find(
      (c) => c.name === 'proxied accounts',
    );
    expect(read).toMatchObject({
      status: 'warn',
      detail: expect.stringContaining('dba_proxy@% (since snapshot:s1)'),
    });
  });

  it('refuses --scope without --state as bad usage: there is no state whose scope it would read', async () => {
    const r = await runCli(['doctor', '--config', configFile(), '--scope', 'function'], {
      ...process.env,
      HWAUDIT_TEST_DB_PASSWORD: 'pw',
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--scope needs --state');
    expect(r.stdout).toBe('');
  });
});
