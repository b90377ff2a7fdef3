// `export`: writes the alerts or the session ledger kept in the state store again, in any output
// format, for a time range: what a SIEM missed, or evidence for an auditor.
import type { Alert } from '../../schemas/alert.js';
import type { Session } from '../../schemas/session.js';
import { formatAlert, isOutputFormat, OUTPUT_FORMATS } from '../../shared/emit/formats/format.js';
import { AuditError } from '../../shared/errors.js';
import { AuditFacts } from '../../shared/report/audit-facts.js';
import { csvField } from '../../shared/report/render-csv.js';
import { knownDbSystem } from '../../shared/report/run-reports.js';
import {
  ALERT_FIELDS,
  type LedgerField,
  type LedgerQuery,
  SESSION_FIELDS,
} from '../../shared/state/ledger.js';
import type { StateStore } from '../../shared/state/state-store.js';
import { openStateToRead, timeOption, warnOnce } from './host.js';
import { type CliCommand, type CliIo, LineWriter, parseCommandArgs } from './io.js';
import { outputFile, refuseExisting } from './output-file.js';
import { sessionLines } from './summary.js';

const FORMATS = [...OUTPUT_FORMATS, 'csv'] as const;
type ExportFormat = (typeof FORMATS)[number];

export const EXPORT_HELP = `Usage: heatwave-iam-audit export alerts|sessions --state FILE|URL [options]

Writes the alerts or the session ledger kept in the state store, in time order, in any format:
to fill a SIEM that missed some, or as evidence. Nothing in the store changes.

Options:
  --state FILE|URL    state store: a SQLite file or mysql://USER@HOST[:PORT]/DB
                      (password from HWAUDIT_STATE_PASSWORD)                 (required)
  --from TIME         alerts raised, sessions connected at or after (ISO 8601)
  --to TIME           ... and before (ISO 8601)
  --db-system ID      one DB system (OCID or configured name)
  --rule ID           alerts of this rule only; repeatable
  --format FORMAT     jsonl, ocsf, cef, ecs or csv                           (default: jsonl)
                      (csv: the columns of the audit_findings / audit_sessions views, docs/sql.md)
  --out FILE          output file (default: stdout); an existing file is kept unless
  --overwrite         is given; the file appears only once complete
  -h, --help          this help
`;

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
  what: 'alerts' | 'sessions',
  format: ExportFormat,
  query: LedgerQuery,
): Promise<number> {
  let n = 0;
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
  const { values, positionals } = parseCommandArgs('export', argv, {
    state: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    'db-system': { type: 'string' },
    rule: { type: 'string', multiple: true },
    format: { type: 'string', default: 'jsonl' },
    out: { type: 'string' },
    overwrite: { type: 'boolean', default: false },
  });
  const [what, ...extra] = positionals;
  if ((what !== 'alerts' && what !== 'sessions') || extra.length > 0)
    throw new AuditError('USAGE', 'export needs what to export: alerts or sessions (see export --help)');
  if (what === 'sessions' && values.rule !== undefined)
    throw new AuditError('USAGE', 'export sessions: --rule selects alerts only');
  const format = exportFormat(values.format);
  const query: LedgerQuery = {
    ...(values.from === undefined ? {} : { from: timeOption('--from', values.from) }),
    ...(values.to === undefined ? {} : { to: timeOption('--to', values.to) }),
    ...(values.rule === undefined ? {} : { rules: values.rule }),
  };
  if (values.out !== undefined) refuseExisting('export', [values.out], values.overwrite);
  const store = await openStateToRead(values.state, 'export', process.env, warnOnce(io, 'export'));
  try {
    if (values['db-system'] !== undefined)
      query.dbSystem = knownDbSystem(new AuditFacts(await store.loadEntities()), values['db-system']).id;
    if (values.out === undefined) {
      const out = new LineWriter(io.stdout, false);
      const n = await write(out, store, what, format, query);
      await out.close();
      io.stderr.write(`export: ${n} ${what}\n`);
      return 0;
    }
    const file = await outputFile(values.out);
    try {
      const n = await write(file.writer, store, what, format, query);
      await file.commit();
      io.stderr.write(`export: ${n} ${what} written to ${values.out}\n`);
      return 0;
    } catch (error) {
      await file.abort();
      throw error;
    }
  } finally {
    await store.close();
  }
}

export const exportCommand: CliCommand = {
  name: 'export',
  summary: 'write the stored alerts or session ledger again, in any format, for a time range',
  usage: EXPORT_HELP,
  run: runExport,
};
