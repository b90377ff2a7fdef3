// `report`: compliance reports for a period from the state store (shared/report/), as HTML, CSV or
// JSON files. docs/reports.md describes each report.
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPORT_FORMATS, REPORT_IDS, type ReportFormat, type ReportId } from '../../schemas/report.js';
import { AuditError } from '../../shared/errors.js';
import { renderReport } from '../../shared/report/render.js';
import { PERIOD_LENGTH_TEXT, type Period, periodLength, periodsEnding } from '../../shared/report/report.js';
import { holdsActivity, NO_ACTIVITY, runReports } from '../../shared/report/run-reports.js';
import { openStateToRead, STATE_PERIOD_OPTIONS, timeRange, warnOnce } from './host.js';
import { type CliCommand, type CliIo, parseCommandArgs } from './io.js';
import { refuseExisting, writeOutputFile } from './output-file.js';

export const REPORT_HELP = `Usage: heatwave-iam-audit report TYPE|all --state FILE|URL (--from TIME --to TIME | --period DURATION) [options]

Writes compliance reports for a period from the state store. TYPE is one of:
  access-review          who could reach which database, as which account, through which
                         group, with which privileges, and whether they used it
  break-glass-log        every break-glass grant: start, end, duration against its maximum,
                         the sessions and statements under it, the alerts it raised
  attribution-evidence   sessions on shared accounts tied to a person, by method and confidence
  privileged-changes     privilege, mapping, policy, group and audit configuration changes
  failed-access          failed logins and statements, local-account use on IAM-only systems
  alert-summary          alerts by rule, severity, DB system and day, with the trend
or all of them.

Options:
  --state FILE|URL    state store: a SQLite file or mysql://USER@HOST[:PORT]/DB
                      (password from HWAUDIT_STATE_PASSWORD)                    (required)
  --from TIME         start of the period, included (ISO 8601)
  --to TIME           end of the period, excluded (ISO 8601)
  --period DURATION   instead of --from: the period's length (ISO 8601), ending at --to, else
                      at the start of the current UTC day (hour, for less than a day): P7D is
                      the last seven full days, P1M the last calendar month (from the same day
                      of the month before), as the function's scheduled reports have them
  --db-system ID      limit the reports to one DB system (OCID or name)
  --format FORMAT     html (one self-contained file per report), csv (one file per
                      table) or json (schemas/report.schema.json)               (default: html)
  --out PATH          a file for one html or json report (default: stdout); a folder
                      (created when missing) for all reports or csv (required then)
  --overwrite         replace files that exist (they are kept otherwise)
  -h, --help          this help

Exit codes: 0 written; 2 bad usage, a state file that is missing or not a state, or a file that
exists (without --overwrite); 1 an internal failure, or a state store or output that failed.
`;

function reportTypes(value: string | undefined): ReportId[] {
  if (value === 'all') return [...REPORT_IDS];
  if (value !== undefined && (REPORT_IDS as readonly string[]).includes(value)) return [value as ReportId];
  throw new AuditError('USAGE', `report needs TYPE: ${REPORT_IDS.join(', ')} or all (see report --help)`);
}

function reportFormat(value: string): ReportFormat {
  if ((REPORT_FORMATS as readonly string[]).includes(value)) return value as ReportFormat;
  throw new AuditError(
    'USAGE',
    `--format ${value} is not a report format (use one of: ${REPORT_FORMATS.join(', ')})`,
  );
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** `--from` and `--to`, or `--period`, ending at `--to` or else as the function's scheduled reports end. */
function reportPeriod(
  values: { from?: string; to?: string; period?: string },
  now: number,
): { period: Period; previous?: Period } {
  const { from, to } = timeRange('report', values);
  if (values.period === undefined) {
    if (from === undefined || to === undefined)
      throw new AuditError(
        'USAGE',
        'report needs the period: --from TIME --to TIME, or --period DURATION (see report --help)',
      );
    return { period: { from, to } };
  }
  if (from !== undefined) throw new AuditError('USAGE', 'report: give --from or --period, not both');
  const length = periodLength(values.period);
  if (length === undefined) throw new AuditError('USAGE', `--period expects ${PERIOD_LENGTH_TEXT}`);
  return periodsEnding(length, to, now);
}

async function runReport(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    'report',
    argv,
    { ...STATE_PERIOD_OPTIONS, period: { type: 'string' }, format: { type: 'string', default: 'html' } },
    1,
  );
  const reports = reportTypes(positionals[0]);
  const format = reportFormat(values.format);
  const { period, previous } = reportPeriod(values, Date.now());
  const folder = reports.length > 1 || format === 'csv' || (values.out !== undefined && isFolder(values.out));
  if (folder && values.out === undefined)
    throw new AuditError(
      'USAGE',
      'report: all reports and csv are several files: name a folder with --out PATH',
    );
  if (!folder && values.out !== undefined) refuseExisting('report', [values.out], values.overwrite);

  const store = await openStateToRead(values.state, 'report', process.env, warnOnce(io, 'report'));
  let docs: Awaited<ReturnType<typeof runReports>>;
  try {
    docs = await runReports(store, {
      reports,
      period,
      previous,
      ...(values['db-system'] === undefined ? {} : { dbSystem: values['db-system'] }),
      generatedAt: Date.now(),
    });
    if (!(await holdsActivity(store, period, docs[0]?.dbSystem?.id)))
      io.stderr.write(`report: ${NO_ACTIVITY}: if you expected some, check --from and --to\n`);
  } finally {
    await store.close();
  }
  const files = docs.flatMap((d) => renderReport(d, format));
  if (!folder) {
    const text = files[0]!.text;
    if (values.out === undefined) io.stdout.write(text);
    else await writeOutputFile(values.out, text);
    io.stderr.write(`report: ${reports[0]} written${values.out === undefined ? '' : ` to ${values.out}`}\n`);
    return 0;
  }
  const dir = values.out!;
  const paths = files.map((f) => join(dir, f.name));
  refuseExisting('report', paths, values.overwrite);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (cause) {
    throw new AuditError('USAGE', `report: cannot create the folder ${dir}`, { cause });
  }
  for (const [i, f] of files.entries()) await writeOutputFile(paths[i]!, f.text);
  io.stderr.write(
    `report: ${files.length} file(s) written to ${dir}:\n${paths.map((p) => `  ${p}\n`).join('')}`,
  );
  return 0;
}

export const reportCommand: CliCommand = {
  name: 'report',
  summary: 'write compliance reports (access review, break-glass log, ...) for a period',
  usage: REPORT_HELP,
  run: runReport,
};
