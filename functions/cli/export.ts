// `export`: writes the alerts or the session ledger kept in the state store again, in any output
// format, for a time range: what a SIEM missed, or evidence for an auditor; and the dead letters
// stored, to see what could not be read.
import type { Alert } from '../../schemas/alert.js';
import type { Session } from '../../schemas/session.js';
import { RULES } from '../../shared/detect/registry.js';
import { formatAlert, isOutputFormat, OUTPUT_FORMATS } from '../../shared/emit/formats/format.js';
import { AuditError } from '../../shared/errors.js';
import { AuditFacts } from '../../shared/report/audit-facts.js';
import { csvField } from '../../shared/report/render-csv.js';
import { knownDbSystem } from '../../shared/report/run-reports.js';
import {
  ALERT_FIELDS,
  DEAD_LETTER_FIELDS,
  type LedgerField,
  type LedgerQuery,
  SESSION_FIELDS,
  type StoredDeadLetter,
} from '../../shared/state/ledger.js';
import type { StateStore } from '../../shared/state/state-store.js';
import { openStateToRead, STATE_PERIOD_OPTIONS, timeRange, warnOnce } from './host.js';
import { type CliCommand, type CliIo, LineWriter, parseCommandArgs } from './io.js';
import { checkOutputPath, refuseExisting, writeOutput } from './output-file.js';
import { sessionLines } from './summary.js';

const FORMATS = [...OUTPUT_FORMATS, 'csv'] as const;
type ExportFormat = (typeof FORMATS)[number];

export const EXPORT_HELP = `Usage: heatwave-iam-audit export alerts|sessions|dead-letters --state FILE|URL [options]

Writes the alerts or the session ledger kept in the state store, in time order, in any format:
to fill a SIEM that missed some, or as evidence. dead-letters writes the records that could not
be read (code, input, line or index, field and reason; never the record's text), in the order
they were stored. No record in the store changes; a store of an older version is upgraded, as by
any command that opens it: its schema is migrated (or a migration another process is applying is
waited for) and, on MySQL, a derived column of the sessions stored before schema 12 is filled for
up to a second (docs/deploy-oci.md, "Upgrading").

Options:
  --state FILE|URL    state store: a SQLite file or mysql://USER@HOST[:PORT]/DB
                      (password from HWAUDIT_STATE_PASSWORD)                 (required)
  --from TIME         alerts raised, sessions connected, dead letters stored at or after
                      (ISO 8601)
  --to TIME           ... and before (ISO 8601)
  --db-system ID      one DB system (OCID or configured name); not for dead letters
  --rule ID           alerts of this rule only; repeatable
  --format FORMAT     jsonl, ocsf, cef, ecs or csv; dead letters: jsonl or csv (default: jsonl)
                      (csv: the columns of the audit_findings / audit_sessions /
                      audit_dead_letters views, docs/sql.md)
  --out FILE          output file (default: stdout); an existing file is kept unless
  --overwrite         is given; the file appears only once complete
  -h, --help          this help

Exit codes: 0 written; 2 bad usage, a state file that is missing or not a state, or an --out that
exists (without --overwrite); 1 an internal failure, or a state store or output that failed.
`;

const WHAT = ['alerts', 'sessions', 'dead-letters'] as const;
type What = (typeof WHAT)[number];
const isWhat = (value: string | undefined): value is What => WHAT.some((w) => w === value);

function exportFormat(value: string): ExportFormat {
  if (isOutputFormat(value) || value === 'csv') return value;
  throw new AuditError('USAGE', `--format ${value} is not a format (use one of: ${FORMATS.join(', ')})`);
}

/** A record as a CSV line (the header is written first). */
function csvRow<T>(fields: readonly LedgerField<T>[], record: T): string {
  return fields.map((f) => csvField(f.value(record))).join(',');
}

async function write(
  out: LineWriter,
  store: StateStore,
  what: What,
  format: ExportFormat,
  query: LedgerQuery,
): Promise<number> {
  let n = 0;
  if (what === 'dead-letters') {
    if (format === 'csv') await out.line(DEAD_LETTER_FIELDS.map((f) => f.name).join(','));
    for await (const d of store.deadLetters(query)) {
      await out.line(format === 'csv' ? csvRow<StoredDeadLetter>(DEAD_LETTER_FIELDS, d) : JSON.stringify(d));
      n++;
    }
    return n;
  }
  if (what === 'alerts') {
    if (format === 'csv') await out.line(ALERT_FIELDS.map((f) => f.name).join(','));
    for await (const a of store.alerts(query)) {
      await out.line(format === 'csv' ? csvRow<Alert>(ALERT_FIELDS, a) : formatAlert(format, a));
      n++;
    }
    return n;
  }
  if (format === 'csv') await out.line(SESSION_FIELDS.map((f) => f.name).join(','));
  for await (const s of store.sessions(query)) {
    for (const line of format === 'csv' ? [csvRow<Session>(SESSION_FIELDS, s)] : sessionLines(format, s))
      await out.line(line);
    n++;
  }
  return n;
}

async function runExport(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    'export',
    argv,
    {
      ...STATE_PERIOD_OPTIONS,
      rule: { type: 'string', multiple: true },
      format: { type: 'string', default: 'jsonl' },
    },
    1,
  );
  const [what] = positionals;
  if (!isWhat(what))
    throw new AuditError(
      'USAGE',
      'export needs what to export: alerts, sessions or dead-letters (see export --help)',
    );
  if (what !== 'alerts' && values.rule !== undefined)
    throw new AuditError('USAGE', `export ${what}: --rule selects alerts only`);
  const format = exportFormat(values.format);
  if (what === 'dead-letters') {
    if (values['db-system'] !== undefined)
      throw new AuditError('USAGE', 'export dead-letters: a dead letter names its input, not a DB system');
    if (format !== 'jsonl' && format !== 'csv')
      throw new AuditError('USAGE', 'export dead-letters: --format jsonl or csv');
  }
  const unknown = values.rule?.find((id) => !RULES.some((r) => r.id === id));
  if (unknown !== undefined)
    throw new AuditError('USAGE', `export: --rule ${unknown}: no such rule (see the rules command)`);
  const query: LedgerQuery = {
    ...timeRange('export', values),
    ...(values.rule === undefined ? {} : { rules: values.rule }),
  };
  if (values.out !== undefined) {
    checkOutputPath('--out', values.out);
    refuseExisting('export', [values.out], values.overwrite);
  }
  const store = await openStateToRead(values.state, 'export', process.env, warnOnce(io, 'export'));
  try {
    if (values['db-system'] !== undefined)
      query.dbSystem = knownDbSystem(new AuditFacts(await store.loadEntities()), values['db-system']).id;
    if (values.out === undefined) {
      const out = new LineWriter(io.stdout, false);
      const n = await write(out, store, what, format, query);
      await out.close();
      io.stderr.write(`export: ${n} ${label(what)}\n`);
      return 0;
    }
    const n = await writeOutput(values.out, (writer) => write(writer, store, what, format, query));
    io.stderr.write(`export: ${n} ${label(what)} written to ${values.out}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

/** What was exported, in words. */
function label(what: What): string {
  return what === 'dead-letters' ? 'dead letters' : what;
}

export const exportCommand: CliCommand = {
  name: 'export',
  summary: 'write the stored alerts, session ledger or dead letters again, in any format, for a time range',
  usage: EXPORT_HELP,
  run: runExport,
};
