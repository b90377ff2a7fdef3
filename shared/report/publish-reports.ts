// Scheduled reports ({"action":"report"} of the function, run by Resource Scheduler): the reports
// of the period that just ended, rendered into Object Storage under a name that depends on the
// period (and DB system) only, and one Notifications message naming the objects. A retried call
// writes the same objects again (overwriting them) and publishes nothing more: the manifest object
// of its list of reports and formats, written after the message, says the message went out.

import { createHash } from 'node:crypto';
import { z } from 'zod';
import { parseInstant } from '../../schemas/config.js';
import {
  REPORT_FORMATS,
  REPORT_IDS,
  type ReportDocument,
  type ReportFormat,
  type ReportId,
} from '../../schemas/report.js';
import type { ObjectStorageWriter } from '../emit/object-storage-writer.js';
import type { StateStore } from '../state/state-store.js';
import { cutAt } from '../text.js';
import { renderReport } from './render.js';
import { PERIOD_LENGTH_TEXT, type Period, periodLength, periodsEnding } from './report.js';
import { holdsActivity, NO_ACTIVITY, runReports } from './run-reports.js';

/** A Notifications message body stays under the 64 KB request limit with this. */
const MAX_MESSAGE_CHARS = 60_000;

export const ReportActionSchema = z.strictObject({
  action: z.literal('report'),
  /** Report ids, or ["all"]. */
  reports: z.array(z.enum([...REPORT_IDS, 'all'])).min(1),
  /** ISO 8601 duration of the period that ends at the last full day (or hour, for periods under a day). */
  period: z.string().refine((p) => periodLength(p) !== undefined, PERIOD_LENGTH_TEXT),
  /** Default html and json. */
  formats: z.array(z.enum(REPORT_FORMATS)).min(1).optional(),
  /** The end of the period (ISO 8601), to report on a past period again; default: now, rounded down. */
  to: z
    .string()
    .refine((t) => !Number.isNaN(parseInstant(t)), 'an ISO 8601 time (UTC where it has no offset)')
    .optional(),
  /** Limit the reports to one DB system (OCID or configured name). */
  dbSystem: z.string().min(1).optional(),
});
export type ReportAction = z.infer<typeof ReportActionSchema>;

/** `2026-11-08T00:00:00.000Z` -> `20261108T000000Z`: object names without characters URLs escape. */
const compact = (ts: number) =>
  new Date(ts)
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/[-:]/g, '');

/** Eight hex digits of the SHA-256 of `text`: a short name part that stays the same for the same text. */
const shortHash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 8);

/**
 * The folder (object name prefix) of a period's reports: of one DB system, its name (characters
 * other than letters, digits, `_`, `.` and `-` replaced by `_`) then `~` and a short hash of its
 * OCID, so that DB systems whose names differ only in a replaced character (or have the same
 * name) never share a folder.
 */
function reportFolder(prefix: string, period: Period, dbSystem: { id: string; name: string } | null): string {
  const db = dbSystem === null ? '' : `${dbSystem.name.replace(/[^\w.-]/g, '_')}~${shortHash(dbSystem.id)}/`;
  return `${prefix}${compact(period.from)}_${compact(period.to)}/${db}`;
}

/**
 * The manifest of one list of reports and formats in a folder: a schedule with another list (of
 * the same period and DB system) has its own, so its message is not taken as already sent.
 */
const manifestName = (folder: string, reports: readonly ReportId[], formats: readonly ReportFormat[]) =>
  `${folder}manifest-${shortHash(JSON.stringify([[...reports].sort(), [...formats].sort()]))}.json`;

export type PublishDeps = {
  store: StateStore;
  writer: Pick<ObjectStorageWriter, 'put' | 'get'>;
  /** Publishes the message; absent when no topic is configured. */
  publish?: (title: string, body: string) => Promise<void>;
  /** Object name prefix, e.g. `reports/`. */
  prefix: string;
  /** Where the objects are, for the message (bucket name). */
  bucket: string;
  now: number;
};

export type PublishResult = {
  period: { from: string; to: string };
  folder: string;
  objects: string[];
  /** Whether this call published the message (false: no topic, or a call before it did). */
  published: boolean;
};

export async function publishReports(action: ReportAction, deps: PublishDeps): Promise<PublishResult> {
  const { period, previous } = periodsEnding(
    periodLength(action.period)!,
    action.to === undefined ? undefined : parseInstant(action.to),
    deps.now,
  );
  const reports: ReportId[] = action.reports.includes('all')
    ? [...REPORT_IDS]
    : [...new Set(action.reports as ReportId[])];
  const formats: ReportFormat[] = [...new Set(action.formats ?? (['html', 'json'] as const))];
  const docs = await runReports(deps.store, {
    reports,
    period,
    previous,
    ...(action.dbSystem === undefined ? {} : { dbSystem: action.dbSystem }),
    generatedAt: deps.now,
  });
  const folder = reportFolder(deps.prefix, period, docs[0]?.dbSystem ?? null);
  const objects: string[] = [];
  for (const doc of docs)
    for (const format of formats)
      for (const f of renderReport(doc, format)) {
        const name = `${folder}${format === 'csv' ? 'csv/' : ''}${f.name}`;
        await deps.writer.put(name, f.text, { contentType: f.contentType });
        objects.push(name);
      }
  const manifest = manifestName(folder, reports, formats);
  const result = {
    period: { from: new Date(period.from).toISOString(), to: new Date(period.to).toISOString() },
    folder,
    objects,
    published: false,
  };
  if (deps.publish === undefined || (await deps.writer.get(manifest)) !== null) return result;
  const quiet = !(await holdsActivity(deps.store, period, docs[0]?.dbSystem?.id));
  const { title, body } = message(docs, objects, deps.bucket, result.period, quiet);
  await deps.publish(title, body);
  await deps.writer.put(
    manifest,
    `${JSON.stringify(
      {
        ...result,
        dbSystem: docs[0]?.dbSystem ?? null,
        reports,
        formats,
        published: true,
        publishedAt: new Date(deps.now).toISOString(),
      },
      null,
      2,
    )}\n`,
    { contentType: 'application/json' },
  );
  return { ...result, published: true };
}

/**
 * One message: the period, each report's key figures, and the objects; `quiet` when the state
 * holds nothing in the period, which may mean that the fleet's audit events stopped arriving.
 */
function message(
  docs: readonly ReportDocument[],
  objects: readonly string[],
  bucket: string,
  period: { from: string; to: string },
  quiet: boolean,
): { title: string; body: string } {
  const scope = docs[0]?.dbSystem ? ` on ${docs[0].dbSystem.name}` : '';
  const title = `heatwave-iam-audit: ${docs.length} compliance report(s)${scope}, ${period.from.slice(0, 10)} to ${period.to.slice(0, 10)}`;
  const lines = [`Compliance reports for ${period.from} to ${period.to} (end excluded)${scope}.`, ''];
  if (quiet)
    lines.push(
      `! Nothing to report: ${NO_ACTIVITY}; check that the fleet's audit events reach the pipeline.`,
      '',
    );
  for (const d of docs) {
    lines.push(`${d.title}:`);
    for (const f of d.figures) lines.push(`  ${f.status === 'attention' ? '! ' : ''}${f.label}: ${f.value}`);
  }
  lines.push('', `Objects in bucket ${bucket}:`);
  let body = lines.join('\n');
  for (const [i, o] of objects.entries()) {
    const line = `\n  ${o}`;
    if (body.length + line.length > MAX_MESSAGE_CHARS) {
      body += `\n  ... and ${objects.length - i} more under the same folder`;
      break;
    }
    body += line;
  }
  return { title: cutAt(title, 255), body: `${body}\n` };
}
