// A report as CSV files (RFC 4180, UTF-8, CRLF): one per section table, named
// `<report>.<section>.csv`, and `<report>.summary.csv` with the period, the key figures and each
// table's row count (a table keeps its first TABLE_ROW_LIMIT rows: the summary says it was cut).
// Spreadsheets run a cell that starts with = + - @ (or a tab or carriage return) as a formula, and
// user names and SQL are attacker-controlled: such text cells get a leading apostrophe.
import type { Cell, ReportDocument } from '../../schemas/report.js';

const FORMULA_START = /^[=+\-@\t\r]/;

/** One CSV field: numbers as they are, text quoted, formula starts neutralised, lists joined by "; ". */
export function csvField(value: Cell): string {
  if (value === null) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  const text = Array.isArray(value) ? value.join('; ') : value;
  const safe = FORMULA_START.test(text) ? `'${text}` : text;
  return `"${safe.replaceAll('"', '""')}"`;
}

function csv(header: string[], rows: Cell[][]): string {
  return [header.map(csvField), ...rows.map((r) => r.map(csvField))]
    .map((r) => `${r.join(',')}\r\n`)
    .join('');
}

export function renderCsv(doc: ReportDocument): { name: string; text: string }[] {
  const summary: Cell[][] = [
    ['report', doc.report],
    ['title', doc.title],
    ['period_from', doc.period.from],
    ['period_to', doc.period.to],
    ['db_system', doc.dbSystem?.id ?? null],
    ['generated_at', doc.generatedAt],
    ...doc.figures.map((f): Cell[] => [f.label, f.value]),
    ...doc.sections.flatMap(({ id, table: t }): Cell[][] => [
      [`rows:${id}`, t.totalRows],
      ...(t.totalRows > t.rows.length
        ? [
            [
              `cut:${id}`,
              `${doc.report}.${id}.csv has the first ${t.rows.length} of ${t.totalRows} rows; export and the SQL views have them all`,
            ],
          ]
        : []),
    ]),
  ];
  return [
    { name: `${doc.report}.summary.csv`, text: csv(['field', 'value'], summary) },
    ...doc.sections.map((s) => ({
      name: `${doc.report}.${s.id}.csv`,
      text: csv(
        s.table.columns.map((c) => c.id),
        s.table.rows,
      ),
    })),
  ];
}
