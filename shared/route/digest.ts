// Messages for people on a route's Notifications topic: one alert (or resolution) per message, or
// a digest of many, grouped by severity and rule, naming the person behind each proxied session,
// the MySQL account and the DB system, and pointing each alert id at its full record. Every
// message fits Notifications' 64 KB: what does not fit is counted on a "+N more" line with the ids.
import { type Alert, recordKey, recordTime, SEVERITIES, type Severity } from '../../schemas/alert.js';
import { ruleInfo } from '../emit/formats/format.js';
import {
  clean,
  type DigestMessage,
  dbSystem,
  ONS_MAX_TITLE_CHARS,
  person,
  recordCounts,
  requestBytes,
  resolutionLine,
} from '../emit/notifications-sink.js';
import { AuditError } from '../errors.js';

/** Where a record's full text is, for people (`stream ... partition 0 offset 12`), when known. */
export type Locate = (record: Alert) => string | undefined;

const BY_SEVERITY = [...SEVERITIES].reverse();
const rank = (s: Severity) => SEVERITIES.indexOf(s);
/** Detail text of one alert in a single message (rule details are shown up to this many characters). */
const DETAILS_CHARS = 4_000;
/** A rule's runbook in a single message, up to this many characters. */
const RUNBOOK_CHARS = 1_000;

/** JSON-escaped UTF-8 length of a line in the body, with its line break. */
function lineBytes(line: string): number {
  return Buffer.byteLength(JSON.stringify(line), 'utf8');
}

/** `... 3 alerts, 1 resolved, 2 muted` */
function counts(records: readonly { record: Alert; muted: boolean }[]): string {
  const muted = records.filter((r) => r.muted).length;
  return `${recordCounts(records.map((r) => r.record))}${muted ? `, ${muted} muted` : ''}`;
}

function link(record: Alert, locate: Locate): string {
  return `  id ${record.id}${record.status === 'resolved' ? ' (resolution)' : ''}: ${clean(locate(record) ?? 'the alert log or SIEM, by id', 300)}`;
}

/** The lines that describe one record. */
function describe(record: Alert, locate: Locate): string[] {
  const account = record.mysqlAccount ? ` as ${clean(record.mysqlAccount, 80)}` : '';
  const lines = [
    `- ${recordTime(record)} [${record.severity.toUpperCase()}] ${clean(record.rule, 60)}: ${clean(record.title)}`,
    `  ${person(record)}${account} on ${dbSystem(record)}${record.group ? ` via ${clean(record.group.name, 80)}` : ''}`,
  ];
  const resolution = resolutionLine(record);
  if (resolution) lines.push(resolution);
  lines.push(link(record, locate));
  return lines;
}

function order(a: Alert, b: Alert): number {
  return (
    rank(b.severity) - rank(a.severity) ||
    (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0) ||
    (recordTime(a) < recordTime(b) ? -1 : recordTime(a) > recordTime(b) ? 1 : 0) ||
    (a.id < b.id ? -1 : 1)
  );
}

/** One message for one record. */
export function alertMessage(route: string, record: Alert, locate: Locate): DigestMessage {
  const resolved = record.status === 'resolved';
  const title = clean(
    `[${resolved ? 'RESOLVED' : record.severity.toUpperCase()}] ${record.rule}: ${record.title}`,
    ONS_MAX_TITLE_CHARS,
  );
  const details = record.details ? clean(JSON.stringify(record.details), DETAILS_CHARS) : undefined;
  const runbook = resolved ? undefined : ruleInfo(record.rule).runbook;
  const body = [
    `heatwave-iam-audit, route ${route}: ${resolved ? 'resolved' : 'alert'}`,
    ...describe(record, locate),
    ...(record.sourceIp ? [`  source ${clean(record.sourceIp, 80)}`] : []),
    ...(runbook ? [`  what to do: ${clean(runbook, RUNBOOK_CHARS)}`] : []),
    ...(details ? [`  details ${details}`] : []),
  ];
  return { title, body: body.join('\n') };
}

export type DigestInput = {
  route: string;
  /** Records to report; muted ones are counted, not listed. */
  records: readonly { record: Alert; muted: boolean }[];
  /** What the message is: a periodic digest, or the alerts over the topic's rate. */
  kind: 'digest' | 'overflow';
  locate: Locate;
  maxBytes: number;
};

/**
 * A digest: counts by severity and rule, what was muted and why, then the records most severe
 * first in half the message; the rest on a last "+N more" line with as many of their ids as fit.
 * `covered`: the record keys it accounts for (listed, named by id on the last line, or muted);
 * records whose id did not fit go in the next message.
 */
export function digestMessage(input: DigestInput): DigestMessage & { covered: string[] } {
  const all = [...input.records].sort((a, b) => order(a.record, b.record));
  const shown = all.filter((r) => !r.muted);
  const top = all[0]?.record.severity ?? 'info';
  const times = all.map((r) => recordTime(r.record)).sort();
  const what = input.kind === 'digest' ? 'digest' : 'over the rate, batched';
  const title = clean(`[${top.toUpperCase()}] ${input.route} ${what}: ${counts(all)}`, ONS_MAX_TITLE_CHARS);
  const head = [
    `heatwave-iam-audit, route ${input.route} (${what}): ${counts(all)}`,
    `Event time ${times[0] ?? ''}${times.length > 1 ? ` .. ${times.at(-1)}` : ''}`,
    '',
    'By severity and rule:',
  ];
  for (const severity of BY_SEVERITY) {
    const group = all.filter((r) => r.record.severity === severity);
    if (group.length === 0) continue;
    head.push(`${severity.toUpperCase()}: ${counts(group)}`);
    for (const rule of [...new Set(group.map((r) => r.record.rule))].sort())
      head.push(`  ${clean(rule, 60)}: ${counts(group.filter((r) => r.record.rule === rule))}`);
  }
  const muted = all.filter((r) => r.muted);
  if (muted.length > 0) {
    head.push('', `Muted on this route (still stored, exported and reported): ${muted.length}`);
    const reasons = new Map<string, number>();
    for (const { record } of muted) {
      const m = record.muted?.find((x) => x.route === input.route);
      const why = m
        ? `${m.cause === 'maintenance' ? 'maintenance' : 'repeat'}: ${clean(m.reason, 120)}`
        : 'muted';
      reasons.set(why, (reasons.get(why) ?? 0) + 1);
    }
    const sorted = [...reasons].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    for (const [why, n] of sorted.slice(0, 10)) head.push(`  ${why} (${n})`);
    if (sorted.length > 10) head.push(`  +${sorted.length - 10} more reasons`);
  }
  if (shown.length > 0) head.push('', 'Alerts, most severe first:');

  let bytes = requestBytes({ title, body: '' }) + head.reduce((n, l) => n + lineBytes(l), 0);
  const body = [...head];
  let listed = 0;
  // Details take at most half the message, so that the ids of the rest fit in the same one
  // (about 900 more): a burst needs few messages, which matters at e-mail's 10 a minute.
  const detailBudget = input.maxBytes / 2;
  for (const { record } of shown) {
    const lines = describe(record, input.locate);
    const size = lines.reduce((n, l) => n + lineBytes(l), 0);
    if (bytes + size > detailBudget && listed > 0) break;
    body.push(...lines);
    bytes += size;
    listed++;
  }
  const covered = [...muted, ...shown.slice(0, listed)].map((r) => recordKey(r.record));
  const rest = shown.slice(listed);
  if (rest.length > 0) {
    let line = `+${rest.length} more:`;
    for (const { record } of rest) {
      const next = `${line} ${record.id}${record.status === 'resolved' ? ' (resolution)' : ''}`;
      if (bytes + lineBytes(`${next} …`) > input.maxBytes) {
        line = `${line} …`;
        break;
      }
      line = next;
      covered.push(recordKey(record));
    }
    body.push(line);
  }
  if (covered.length === 0)
    throw new AuditError('PAYLOAD_TOO_LARGE', `route ${input.route}: a digest cannot hold one record`, {
      details: { route: input.route },
    });
  return { title, body: body.join('\n'), covered };
}
