// The `normalize` command of the bundled CLI, run as a child process.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { DbEventSchema } from '../../schemas/events.js';
import { bundlePath } from '../helpers/bundle.js';
import { REPO_ROOT } from '../helpers/requirements.js';
import { SECRET_FORMS } from './secret-forms.js';

const CLI = bundlePath('cli');
const dir = mkdtempSync(join(tmpdir(), 'cli-normalize-'));
const sample = (name: string) => join(REPO_ROOT, 'test', 'events', 'mysql-audit', name);

type Run = { code: number; stdout: string; stderr: string };

function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: dir, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const parseLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('heatwave-iam-audit (CLI)', () => {
  it('prints its version and help', async () => {
    const version = await cli('--version');
    expect(version).toMatchObject({
      code: 0,
      stdout: `${JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version}\n`,
    });
    const help = await cli('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('normalize');
    const commandHelp = await cli('normalize', '--help');
    expect(commandHelp.code).toBe(0);
    expect(commandHelp.stdout).toContain('--db-system ID');
  });

  it('exits 2 on bad usage', async () => {
    expect((await cli()).code).toBe(2);
    expect(await cli('frobnicate')).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("unknown command 'frobnicate'"),
    });
    expect((await cli('normalize')).code).toBe(2);
    expect((await cli('normalize', '--bogus', sample('line-per-event.log'))).code).toBe(2);
  });

  it('exits 2 on an unreadable input, before writing anything', async () => {
    const run = await cli('normalize', sample('line-per-event.log'), join(dir, 'missing.log'));
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('cannot read input (ENOENT)');
  });

  it('its help lists the exit codes of what it does (no state, no alerts)', async () => {
    const help = (await cli('normalize', '--help')).stdout;
    expect(help).toContain('1  an internal failure, or an output that failed');
    expect(help).not.toMatch(/alerts or not|state store/);
  });

  it('names an input of no known kind, after normalizing the others, and exits 0', async () => {
    const foreign = join(dir, 'foreign.json');
    writeFileSync(foreign, '{"hello": "world"}\n');
    const run = await cli('normalize', sample('line-per-event.log'), foreign);
    expect(run.code).toBe(0);
    expect(parseLines(run.stdout)).toHaveLength(4);
    expect(run.stderr).toContain(`${foreign}: no record of a kind this tool reads`);
  });
});

describe('heatwave-iam-audit normalize', () => {
  it('writes canonical events as JSONL with the file stem as DB system, and a summary on stderr', async () => {
    const run = await cli('normalize', sample('all-classes.pretty.json'), sample('malformed.log'));
    expect(run.code).toBe(0);
    const events = parseLines(run.stdout);
    expect(events).toHaveLength(15);
    for (const event of events) expect(DbEventSchema.parse(event)).toEqual(event);
    expect(events[0]).toMatchObject({ dbSystemId: 'all-classes', kind: 'server_start' });
    expect(events[14]).toMatchObject({ dbSystemId: 'malformed', kind: 'disconnect' });
    expect(run.stderr).toContain(
      'normalize: 2 inputs, 20 records read, 15 events written, 0 duplicates, 5 dead letters',
    );
    expect(run.stderr).toContain(
      'events by kind: change_user 1, connect 3, disconnect 2, query 3, server_start 1, server_stop 1, table_access 4',
    );
    expect(run.stderr).toContain('dead letters by code: JSON_INVALID 3, SCHEMA_INVALID 2');
    expect(run.stderr).toContain(`${sample('malformed.log')}:3[1] JSON_INVALID record truncated`);
  });

  it('names the DB system with --db-system, writes --out, and counts duplicates once', async () => {
    const out = join(dir, 'events.jsonl');
    const gz = join(dir, 'copy.log');
    writeFileSync(gz, gzipSync(readFileSync(sample('line-per-event.log'))));
    const run = await cli(
      'normalize',
      '--db-system',
      'ocid1.mysqldbsystem.oc1..prod1',
      '--out',
      out,
      sample('line-per-event.log'),
      gz,
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('');
    const events = parseLines(readFileSync(out, 'utf8'));
    expect(events.map((e) => e.kind)).toEqual(['connect', 'query', 'query', 'disconnect']);
    expect(events.every((e) => e.dbSystemId === 'ocid1.mysqldbsystem.oc1..prod1')).toBe(true);
    expect(run.stderr).toContain('8 records read, 4 events written, 4 duplicates, 0 dead letters');
  });

  it('reads collector records, stream batches and Logging Search responses with their own DB system', async () => {
    const run = await cli(
      'normalize',
      sample('collector-records.jsonl'),
      sample('connector-hub-stream-batch.json'),
      sample('search-logs-response.json'),
    );
    expect(run.code).toBe(0);
    const events = parseLines(run.stdout);
    expect(events).toHaveLength(3);
    expect(
      events.every(
        (e) => e.dbSystemId === 'ocid1.mysqldbsystem.oc1..prod1' && e.dbSystemName === 'prod-orders',
      ),
    ).toBe(true);
    expect(run.stderr).toContain('6 duplicates');
  });

  it('never outputs the password of a failed GRANT (status 1064)', async () => {
    const run = await cli('normalize', sample('failed-grant-1064.log'));
    expect(run.code).toBe(0);
    expect(parseLines(run.stdout)).toMatchObject([{ kind: 'query', status: 1064 }]);
    expect(run.stdout).toContain("IDENTIFIED BY '<redacted>'");
    expect(`${run.stdout}${run.stderr}`).not.toContain('pw123');
  });

  it('outputs no secret of any statement form, parsed (status 0) or not (1064)', async () => {
    const input = join(dir, 'secrets.log');
    const records = SECRET_FORMS.flatMap(({ sql }, i) =>
      [0, 1064].map((status) => ({
        timestamp: '2026-11-01 11:00:00',
        id: i * 2 + (status ? 1 : 0),
        class: 'general',
        event: 'status',
        connection_id: 60,
        account: { user: 'admin', host: '%' },
        login: { user: 'admin', os: '', ip: '203.0.113.9', proxy: '' },
        general_data: { command: 'Query', sql_command: status ? 'error' : 'select', query: sql, status },
      })),
    );
    writeFileSync(input, records.map((r) => JSON.stringify(r)).join('\n'));
    const run = await cli('normalize', input);
    expect(run.code, run.stderr).toBe(0);
    expect(parseLines(run.stdout)).toHaveLength(records.length);
    const output = `${run.stdout}${run.stderr}`;
    for (const secret of SECRET_FORMS.flatMap((f) => f.secrets)) expect(output).not.toContain(secret);
  });
});
