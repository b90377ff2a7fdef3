// The export and report commands end to end, as users run them: the built CLI on a state file.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { utc } from '@date-fns/utc';
import { subMonths } from 'date-fns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPORT_IDS, ReportDocumentSchema } from '../../schemas/report.js';
import { DEAD_LETTER_FIELDS, SESSION_FIELDS } from '../../shared/state/ledger.js';
import { SqliteStore } from '../../shared/state/sqlite-store.js';
import { runCli } from '../helpers/cli-process.js';
import { collect } from '../helpers/collect.js';
import { namedPipe } from '../helpers/named-pipe.js';
import { FORMULA, hostileTimeline } from '../report/report-fixtures.js';
import { batch, runPipeline } from '../state/store-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'hwaudit-export-'));
const state = join(dir, 'state.sqlite');
const DAY = ['--from', '2026-11-02T00:00:00Z', '--to', '2026-11-03T00:00:00Z'];
let alertIds: string[];
let sessionCount: number;

beforeAll(async () => {
  const store = SqliteStore.open(state);
  await runPipeline(store, [hostileTimeline()]);
  alertIds = (await collect(store.alerts())).map((a) => a.id);
  sessionCount = (await collect(store.sessions())).length;
  await store.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lines = (text: string) => text.split('\n').filter((l) => l !== '');

describe('export', () => {
  it('writes every stored alert again, in time order, to stdout', async () => {
    const r = await runCli(['export', 'alerts', '--state', state]);
    expect(r.code).toBe(0);
    expect(lines(r.stdout).map((l) => JSON.parse(l).id)).toEqual(alertIds);
    expect(r.stderr).toContain(`export: ${alertIds.length} alerts`);
  });

  it('selects alerts by rule and DB system, in another format', async () => {
    const cef = await runCli([
      'export',
      'alerts',
      '--state',
      state,
      '--rule',
      'break-glass.used',
      '--rule',
      'audit.tamper',
      '--format',
      'cef',
    ]);
    expect(cef.code).toBe(0);
    expect(lines(cef.stdout)).toHaveLength(3);
    for (const l of lines(cef.stdout))
      expect(l).toMatch(
        /^CEF:0\|heatwave-iam-audit\|heatwave-iam-audit\|[^|]*\|(break-glass\.used|audit\.tamper)\|/,
      );
    const onDb = await runCli(['export', 'alerts', '--state', state, '--db-system', 'prod-orders']);
    expect(lines(onDb.stdout).every((l) => JSON.parse(l).dbSystem?.name === 'prod-orders')).toBe(true);
    expect(lines(onDb.stdout).length).toBeLessThan(alertIds.length);
    // A mistyped rule or a period that ends before it starts is refused, not an empty export.
    for (const [args, problem] of [
      [['--rule', 'break-glass.usd'], 'export: --rule break-glass.usd: no such rule (see the rules command)'],
      [
        ['--from', '2026-11-03T00:00:00Z', '--to', '2026-11-02T00:00:00Z'],
        'export: --to must be after --from',
      ],
      [['--out', dir, '--overwrite'], `--out ${dir} is a folder: name a file`],
    ]) {
      const refused = await runCli(['export', 'alerts', '--state', state, ...args!]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toBe(`heatwave-iam-audit: ${problem}\n`);
    }
  });

  it('reads a time with no offset as UTC, whatever the time zone of the machine', async () => {
    const exported = async (from: string, to: string, env = process.env) =>
      (await runCli(['export', 'sessions', '--state', state, '--from', from, '--to', to], env)).stdout;
    // The scenario's sessions start from 09:00 UTC; from 09:30 to 12:00 UTC holds some of them.
    const day = await exported(DAY[1]!, DAY[3]!);
    const morning = await exported('2026-11-02T09:30:00Z', '2026-11-02T12:00:00Z');
    expect(lines(morning).length).toBeGreaterThan(0);
    expect(lines(morning).length).toBeLessThan(lines(day).length);
    for (const TZ of ['America/New_York', 'Asia/Kolkata']) {
      const env = { ...process.env, TZ };
      expect(await exported('2026-11-02', '2026-11-03', env), TZ).toBe(day);
      for (const [from, to] of [
        ['2026-11-02T09:30', '2026-11-02T12:00'],
        ['2026-11-02 09:30', '2026-11-02 12:00:00'],
        ['2026-11-02T04:30:00-05:00', '2026-11-02T17:30+05:30'],
      ])
        expect(await exported(from!, to!, env), `${TZ}: ${from} to ${to}`).toBe(morning);
      // Not ISO 8601: refused, not read in the machine's time zone.
      const loose = await runCli(['export', 'sessions', '--state', state, '--from', 'Nov 2 2026'], env);
      expect(loose.code).toBe(2);
      expect(loose.stderr).toContain('--from expects an ISO 8601 time such as 2026-11-02T12:00:00Z (UTC');
    }
  });

  it('writes the sessions of a time range as OCSF logons and logoffs', async () => {
    const r = await runCli([
      'export',
      'sessions',
      '--state',
      state,
      '--from',
      '2026-11-02T09:40:00Z',
      '--to',
      '2026-11-02T10:00:00Z',
      '--format',
      'ocsf',
    ]);
    expect(r.code).toBe(0);
    const records = lines(r.stdout).map((l) => JSON.parse(l));
    // alice at 09:40, five failed admin logins, app at 09:50 (10:00 is excluded).
    expect(records.filter((x) => x.activity_id === 1 || x.activity_id === 7)).toHaveLength(7);
    for (const x of records) expect(x.class_uid).toBe(3002);
  });

  it('writes CSV with the view columns, neutralising formulas, and keeps an existing file unless --overwrite', async () => {
    const out = join(dir, 'sessions.csv');
    const first = await runCli(['export', 'sessions', '--state', state, '--format', 'csv', '--out', out]);
    expect(first.code).toBe(0);
    const text = readFileSync(out, 'utf8');
    const rows = lines(text);
    expect(rows[0]).toBe(SESSION_FIELDS.map((f) => f.name).join(','));
    expect(rows).toHaveLength(sessionCount + 1);
    expect(text).toContain(`"'${FORMULA.replaceAll('"', '""')}"`);
    expect(readdirSync(dir).filter((f) => f.includes('partial'))).toEqual([]);

    writeFileSync(out, 'keep me\n');
    const refused = await runCli(['export', 'sessions', '--state', state, '--format', 'csv', '--out', out]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/exists; choose another --out, or add --overwrite/);
    expect(readFileSync(out, 'utf8')).toBe('keep me\n');
    const replaced = await runCli([
      'export',
      'sessions',
      '--state',
      state,
      '--format',
      'csv',
      '--out',
      out,
      '--overwrite',
    ]);
    expect(replaced.code).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(text);
  });

  it('exits 1, never 0, when a command stops before it finishes', async () => {
    // Every rename waits for ever: the export's last step never ends, and nothing else is left to
    // do, which Node ends with exit 0 unless the CLI says otherwise.
    const hook = join(dir, 'stuck-rename.cjs');
    writeFileSync(hook, "require('node:fs/promises').rename = () => new Promise(() => {});\n");
    const out = join(dir, 'stuck.jsonl');
    const r = await runCli(['export', 'alerts', '--state', state, '--out', out], {
      ...process.env,
      NODE_OPTIONS: `--require ${hook}`,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('heatwave-iam-audit: internal error: the command stopped before it finished\n');
    expect(existsSync(out)).toBe(false);
  });

  it('writes into a device or a named pipe as it is, and never replaces it', async () => {
    // Neither is a file that exists: no --overwrite is asked for.
    const discarded = await runCli(['export', 'alerts', '--state', state, '--out', '/dev/null']);
    expect(discarded.code).toBe(0);
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
    for (const overwrite of [[], ['--overwrite']]) {
      const path = join(dir, `alerts${overwrite.length}.pipe`);
      const pipe = namedPipe(path);
      try {
        const r = await runCli(['export', 'alerts', '--state', state, '--out', path, ...overwrite]);
        expect(r.code).toBe(0);
        expect(lines(await pipe.text).map((l) => JSON.parse(l).id)).toEqual(alertIds);
      } finally {
        pipe.release();
      }
      expect(statSync(path).isFIFO()).toBe(true);
    }
    const report = join(dir, 'report.pipe');
    const pipe = namedPipe(report);
    try {
      const r = await runCli(['report', 'access-review', '--state', state, ...DAY, '--out', report]);
      expect(r.code).toBe(0);
      expect(await pipe.text).toContain('<h1>Access review</h1>');
    } finally {
      pipe.release();
    }
    expect(statSync(report).isFIFO()).toBe(true);
  });

  it('--out /dev/stdout writes to the standard output it was given: a socket, or a file it was redirected to', async () => {
    // A child process's standard output is a socket here, which no path opens (ENXIO).
    const exported = await runCli(['export', 'alerts', '--state', state, '--out', '/dev/stdout']);
    expect(exported.code).toBe(0);
    expect(lines(exported.stdout).map((l) => JSON.parse(l).id)).toEqual(alertIds);
    const report = [
      'report',
      'access-review',
      '--state',
      state,
      ...DAY,
      '--format',
      'json',
      '--out',
      '/dev/stdout',
    ];
    const reported = await runCli(report);
    expect(reported.code).toBe(0);
    expect(JSON.parse(reported.stdout).report).toBe('access-review');
    // Redirected by the shell to a file that exists: written into, not refused as an existing file.
    const file = join(dir, 'redirected.json');
    writeFileSync(file, '');
    const redirected = await runCli(report, process.env, `exec >'${file}'`);
    expect(redirected).toMatchObject({ code: 0, stdout: '' });
    expect(JSON.parse(readFileSync(file, 'utf8')).report).toBe('access-review');
  });

  it('writes the stored dead letters, in the order stored, as JSON lines or CSV, and by the time they were stored', async () => {
    const deadState = join(dir, 'dead.sqlite');
    const store = SqliteStore.open(deadState);
    const letters = [
      { code: 'JSON_INVALID' as const, source: 'mysql/prod.audit.log', line: 7, message: 'record truncated' },
      {
        code: 'SCHEMA_INVALID' as const,
        source: FORMULA,
        index: 2,
        path: ['data', 'identity'],
        message: 'OCI audit event: data.identity: expected object',
      },
    ];
    await store.commit(batch({ deadLetters: [letters[0]!] }));
    await new Promise((resolve) => setTimeout(resolve, 5));
    const between = new Date().toISOString();
    await new Promise((resolve) => setTimeout(resolve, 5));
    await store.commit(batch({ deadLetters: [letters[1]!] }));
    await store.close();

    const jsonl = await runCli(['export', 'dead-letters', '--state', deadState]);
    expect(jsonl.code).toBe(0);
    expect(jsonl.stderr).toBe('export: 2 dead letters\n');
    const records = lines(jsonl.stdout).map((l) => JSON.parse(l));
    expect(records).toEqual(letters.map((d, i) => ({ seq: i + 1, storedTime: expect.any(String), ...d })));
    const later = await runCli(['export', 'dead-letters', '--state', deadState, '--from', between]);
    expect(lines(later.stdout).map((l) => JSON.parse(l).seq)).toEqual([2]);

    const csv = await runCli(['export', 'dead-letters', '--state', deadState, '--format', 'csv']);
    expect(csv.code).toBe(0);
    const rows = lines(csv.stdout);
    expect(rows[0]).toBe(DEAD_LETTER_FIELDS.map((f) => f.name).join(','));
    expect(rows[1]).toBe(
      `1,"${records[0].storedTime}",${Date.parse(records[0].storedTime)},"JSON_INVALID","mysql/prod.audit.log",7,,,"record truncated"`,
    );
    expect(rows[2]).toContain(`"'${FORMULA.replaceAll('"', '""')}",,2,"[""data"",""identity""]"`);
  });

  it.each([
    [['export', 'alerts'], /needs --state/],
    [['export', 'alerts', '--state', join(dir, 'missing.sqlite')], /no state file/],
    [['export', 'things', '--state', state], /alerts, sessions or dead-letters/],
    [['export', 'sessions', '--state', state, '--rule', 'x'], /--rule selects alerts only/],
    [['export', 'dead-letters', '--state', state, '--rule', 'x'], /--rule selects alerts only/],
    [['export', 'dead-letters', '--state', state, '--db-system', 'prod-orders'], /names its input/],
    [['export', 'dead-letters', '--state', state, '--format', 'ocsf'], /--format jsonl or csv/],
    [['export', 'alerts', '--state', state, '--format', 'xml'], /not a format/],
    [['export', 'alerts', '--state', state, '--from', 'yesterday'], /--from expects an ISO 8601 time/],
    [['export', 'alerts', '--state', state, '--db-system', 'nope'], /knows no DB system/],
  ])('refuses %j with exit code 2', async (args, message) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(existsSync(join(dir, 'missing.sqlite'))).toBe(false);
  });
});

describe('report', () => {
  it('writes one HTML report to stdout', async () => {
    const r = await runCli(['report', 'access-review', '--state', state, ...DAY]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^<!doctype html>/);
    expect(r.stdout).toContain('<h1>Access review</h1>');
  });

  it('says when the state holds nothing in the period, which a mistyped period gives', async () => {
    const hint = 'report: the state holds no session and no alert in this period';
    const empty = await runCli([
      'report',
      'alert-summary',
      '--state',
      state,
      '--from',
      '2016-11-02T00:00:00Z',
      '--to',
      '2016-11-03T00:00:00Z',
      '--format',
      'json',
    ]);
    expect(empty.code).toBe(0);
    expect(empty.stderr).toContain(hint);
    const full = await runCli(['report', 'alert-summary', '--state', state, ...DAY, '--format', 'json']);
    expect(full.code).toBe(0);
    expect(full.stderr).not.toContain(hint);
  });

  it('takes the period as a length, ending at --to or at the start of the current UTC day', async () => {
    const json = async (...args: string[]) => {
      const r = await runCli(['report', 'alert-summary', '--state', state, '--format', 'json', ...args]);
      expect(r.code, r.stderr).toBe(0);
      const { generatedAt, ...doc } = JSON.parse(r.stdout);
      return doc;
    };
    expect(await json('--period', 'P1D', '--to', DAY[3]!)).toEqual(await json(...DAY));
    // As the function's scheduled reports: P7D is the last seven whole days, PT6H the last six hours.
    const day = 86_400_000;
    const hour = 3_600_000;
    for (const [length, unit, text] of [
      [7 * day, day, 'P7D'],
      [6 * hour, hour, 'PT6H'],
    ] as const) {
      const before = Math.floor(Date.now() / unit) * unit;
      const { period } = await json('--period', text);
      const after = Math.floor(Date.now() / unit) * unit;
      expect([before, after]).toContain(Date.parse(period.to));
      expect(Date.parse(period.to) - Date.parse(period.from)).toBe(length);
    }
  });

  it('takes months and years as calendar months, from the same day of the month at the same time', async () => {
    const periods = async (...args: string[]) => {
      const r = await runCli(['report', 'alert-summary', '--state', state, '--format', 'json', ...args]);
      expect(r.code, r.stderr).toBe(0);
      const { period, previousPeriod } = JSON.parse(r.stdout);
      return [period.from, period.to, previousPeriod.from];
    };
    expect(await periods('--period', 'P1M', '--to', '2026-12-01T00:00:00Z')).toEqual([
      '2026-11-01T00:00:00.000Z',
      '2026-12-01T00:00:00.000Z',
      '2026-10-01T00:00:00.000Z',
    ]);
    expect(await periods('--period', 'P1Y', '--to', '2026-03-01')).toEqual([
      '2025-03-01T00:00:00.000Z',
      '2026-03-01T00:00:00.000Z',
      '2024-03-01T00:00:00.000Z',
    ]);
    expect(await periods('--period', 'P1M1D', '--to', '2026-03-31T00:00:00Z')).toEqual([
      '2026-02-27T00:00:00.000Z',
      '2026-03-31T00:00:00.000Z',
      '2026-01-26T00:00:00.000Z',
    ]);
    const [from, to] = await periods('--period', 'P2M');
    expect(to).toMatch(/T00:00:00.000Z$/);
    expect(from).toBe(subMonths(to!, 2, { in: utc }).toISOString());
  });

  it('writes every report as JSON into a folder, and keeps existing files unless --overwrite', async () => {
    const out = join(dir, 'json');
    const first = await runCli(['report', 'all', '--state', state, ...DAY, '--format', 'json', '--out', out]);
    expect(first.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(REPORT_IDS.map((id) => `${id}.json`).sort());
    for (const id of REPORT_IDS)
      ReportDocumentSchema.parse(JSON.parse(readFileSync(join(out, `${id}.json`), 'utf8')));
    const again = await runCli(['report', 'all', '--state', state, ...DAY, '--format', 'json', '--out', out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/exists/);
    expect(
      (
        await runCli([
          'report',
          'all',
          '--state',
          state,
          ...DAY,
          '--format',
          'json',
          '--out',
          out,
          '--overwrite',
        ])
      ).code,
    ).toBe(0);
  });

  it('writes CSV as one file per table into a folder, for one DB system', async () => {
    const out = join(dir, 'csv');
    const r = await runCli([
      'report',
      'failed-access',
      '--state',
      state,
      ...DAY,
      '--format',
      'csv',
      '--out',
      out,
      '--db-system',
      'ocid1.mysqldbsystem.oc1..prod1',
    ]);
    expect(r.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(
      ['failed-logins', 'failed-statements', 'failure-bursts', 'local-account-use', 'summary'].map(
        (s) => `failed-access.${s}.csv`,
      ),
    );
    expect(readFileSync(join(out, 'failed-access.summary.csv'), 'utf8')).toContain(
      '"db_system","ocid1.mysqldbsystem.oc1..prod1"',
    );
  });

  it.each([
    [['report', '--state', state, ...DAY], /needs TYPE/],
    [['report', 'everything', '--state', state, ...DAY], /needs TYPE/],
    [['report', 'all', '--state', state, '--from', '2026-11-02T00:00:00Z'], /needs the period/],
    [
      ['report', 'all', '--state', state, '--from', '2026-11-03T00:00:00Z', '--to', '2026-11-02T00:00:00Z'],
      /--to must be after --from/,
    ],
    [['report', 'all', '--state', state, ...DAY], /name a folder with --out/],
    [['report', 'alert-summary', '--state', state, ...DAY, '--format', 'pdf'], /not a report format/],
    [['report', 'alert-summary', '--state', state, ...DAY, '--db-system', 'nope'], /knows no DB system/],
    [['report', 'alert-summary', '--state', join(dir, 'missing.sqlite'), ...DAY], /no state file/],
    [
      ['report', 'alert-summary', '--state', state, ...DAY, '--period', 'P1D'],
      /--from or --period, not both/,
    ],
    [
      ['report', 'alert-summary', '--state', state, '--period', '7d'],
      /--period expects an ISO 8601 duration/,
    ],
    [['report', 'alert-summary', '--state', state, '--period', 'PT10M'], /from PT1H to P400D/],
  ])('refuses %j with exit code 2', async (args, message) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});
