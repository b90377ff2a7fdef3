// The compliance report contract: every report is one document of key figures and sections, each
// section one table (and perhaps a chart). HTML, CSV (one file per section) and JSON are renderings
// of it. schemas/report.schema.json is the same contract as JSON Schema (`npm run schemas`).
import { z } from 'zod';
import { RefSchema } from './session.js';

export const REPORT_IDS = [
  'access-review',
  'break-glass-log',
  'attribution-evidence',
  'privileged-changes',
  'failed-access',
  'alert-summary',
] as const;
export type ReportId = (typeof REPORT_IDS)[number];

export const REPORT_FORMATS = ['html', 'csv', 'json'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/**
 * How a column's cells read: `count` a quantity, `number` a number that names rather than counts
 * (a MySQL error code), `time` ISO 8601 UTC text, `duration` milliseconds, `percent` 0 to 100,
 * `flag` true/false, `list` an array of text, `code` SQL (literals redacted): a statement or an array of them.
 */
export const COLUMN_TYPES = [
  'text',
  'count',
  'number',
  'percent',
  'time',
  'duration',
  'flag',
  'list',
  'code',
] as const;

export const CellSchema = z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(z.string())]);
export type Cell = z.infer<typeof CellSchema>;

export const ColumnSchema = z.object({
  /** snake_case; the CSV header. */
  id: z.string().regex(/^[a-z][a-z0-9_]*$/),
  title: z.string(),
  type: z.enum(COLUMN_TYPES),
});
export type Column = z.infer<typeof ColumnSchema>;

export const TableSchema = z.object({
  columns: z.array(ColumnSchema),
  rows: z.array(z.array(CellSchema)),
  /** Rows before the table was cut to its limit (equal to rows.length when nothing was cut). */
  totalRows: z.number().int().min(0),
});
export type Table = z.infer<typeof TableSchema>;

export const ChartSchema = z.object({
  kind: z.literal('bar'),
  title: z.string(),
  categories: z.array(z.string()),
  /** One value per category in each series; stacked series add up. */
  series: z.array(z.object({ name: z.string(), values: z.array(z.number()) })),
  stacked: z.boolean(),
});
export type Chart = z.infer<typeof ChartSchema>;

export const SectionSchema = z.object({
  /** kebab-case; names the section's CSV file. */
  id: z.string().regex(/^[a-z][a-z0-9-]*$/),
  title: z.string(),
  description: z.string(),
  chart: ChartSchema.optional(),
  table: TableSchema,
});
export type Section = z.infer<typeof SectionSchema>;

export const FigureSchema = z.object({
  label: z.string(),
  value: z.union([z.number(), z.string()]),
  /** `attention`: the figure asks for a reviewer's look (a finding, an unused entitlement). */
  status: z.enum(['ok', 'attention']).optional(),
});
export type Figure = z.infer<typeof FigureSchema>;

const PeriodSchema = z.object({ from: z.string(), to: z.string() });

export const ReportDocumentSchema = z.object({
  schema: z.literal('heatwave-iam-audit/report/1'),
  report: z.enum(REPORT_IDS),
  title: z.string(),
  description: z.string(),
  /** The requirements the report gives evidence for, e.g. "PCI DSS 4.0 7.2.4". */
  controls: z.array(z.string()),
  /** `from` inclusive, `to` exclusive (ISO 8601 UTC). */
  period: PeriodSchema,
  /** The period before, of the same length (trends). */
  previousPeriod: PeriodSchema,
  /** The DB system the report is limited to, or null for the fleet. */
  dbSystem: RefSchema.nullable(),
  generatedAt: z.string(),
  product: z.object({ name: z.string(), version: z.string() }),
  figures: z.array(FigureSchema),
  sections: z.array(SectionSchema),
});
export type ReportDocument = z.infer<typeof ReportDocumentSchema>;

/** The report contract as JSON Schema (draft 2020-12) text, as committed in schemas/report.schema.json. */
export function reportJsonSchemaText(): string {
  return `${JSON.stringify(z.toJSONSchema(ReportDocumentSchema), null, 2)}\n`;
}
