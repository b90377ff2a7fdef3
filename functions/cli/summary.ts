// Run accounting for the CLI: every record read is an event written, a duplicate or a dead letter;
// what the pipeline made of them (replay, collect); the session ledger file.
import type { DeadLetter } from '../../schemas/dead-letter.js';
import type { CanonicalEvent } from '../../schemas/events.js';
import type { Session } from '../../schemas/session.js';
import {
  addToCoverage,
  type Coverage,
  countInCoverage,
  coverageLine,
  emptyCoverage,
} from '../../shared/correlate/coverage.js';
import type { InputCounts } from '../../shared/decode/read-input.js';
import {
  formatSession,
  formatSessionEnd,
  formatSessionSwitches,
  type OutputFormat,
} from '../../shared/emit/formats/format.js';
import type { Pipeline, RecordCounts } from '../../shared/pipeline.js';
import { type RouteSink, TopicRoute } from '../../shared/route/route-sink.js';
import { displayStoreSpec } from '../../shared/state/open-store.js';
import type { StateStore } from '../../shared/state/state-store.js';
import { grouped } from '../../shared/text.js';
import { toIso } from '../../shared/time.js';
import { type CliIo, printable } from './io.js';
import { writeOutput } from './output-file.js';

const FIRST_DEAD_SHOWN = 5;

/**
 * Runs a command's work (`replay`, `collect`, `backfill`, `consume`), then writes its summary to
 * stderr, also when the work failed (an output, the state store): a run that fails still says what
 * it read, processed and raised, and which outputs got it, before its error (exit 1, as before).
 * `summary` is told whether the work failed; it returns no line when there is nothing to count
 * (the work failed before it opened the pipeline).
 */
export async function withSummary<T>(
  io: CliIo,
  command: string,
  work: () => Promise<T>,
  summary: (failed: boolean) => Promise<readonly string[]>,
): Promise<T> {
  const write = (lines: readonly string[]) => {
    if (lines.length > 0) io.stderr.write(`${lines.map(printable).join('\n')}\n`);
  };
  let result: T;
  try {
    result = await work();
  } catch (error) {
    // The summary of a failed run is what it can say: the run ends with the work's error all the same.
    const lines = await summary(true).catch(() => []);
    write(lines.length > 0 ? [...lines, `${command}: failed after the work above; the error follows`] : []);
    throw error;
  }
  write(await summary(false));
  return result;
}

export class RunSummary {
  inputs = 0;
  records = 0;
  events = 0;
  duplicates = 0;
  readonly eventsByKind = new Map<string, number>();
  readonly deadByCode = new Map<string, number>();
  readonly firstDead: DeadLetter[] = [];
  private deadCount = 0;
  private readonly seen = new Set<string>();

  /** Counts an event; false when its dedupe key was already seen in this run. */
  accept(event: CanonicalEvent): boolean {
    const key = `${event.source}:${event.key}`;
    if (this.seen.has(key)) {
      this.duplicates++;
      return false;
    }
    this.seen.add(key);
    this.events++;
    increment(this.eventsByKind, event.kind);
    return true;
  }

  dead(dead: DeadLetter): void {
    this.deadCount++;
    increment(this.deadByCode, dead.code);
    if (this.firstDead.length < FIRST_DEAD_SHOWN) this.firstDead.push(dead);
  }

  addInput(counts: InputCounts): void {
    this.inputs++;
    this.records += counts.records;
  }

  format(command: string): string {
    const lines = [
      `${command}: ${plural(this.inputs, 'input')}, ${plural(this.records, 'record')} read, ` +
        `${plural(this.events, 'event')} written, ${plural(this.duplicates, 'duplicate')}, ` +
        `${plural(this.deadCount, 'dead letter')}`,
    ];
    if (this.eventsByKind.size > 0) lines.push(`  events by kind: ${formatCounts(this.eventsByKind)}`);
    if (this.deadByCode.size > 0) lines.push(`  dead letters by code: ${formatCounts(this.deadByCode)}`);
    if (this.firstDead.length > 0) {
      lines.push(
        this.deadCount > this.firstDead.length
          ? `  first ${this.firstDead.length} dead letters:`
          : '  dead letters:',
      );
      for (const dead of this.firstDead)
        lines.push(`    ${formatLocation(dead)} ${dead.code} ${dead.message}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

/** `file:line[index]` with whatever parts the dead letter has. */
function formatLocation(dead: DeadLetter): string {
  return `${dead.source}${dead.line === undefined ? '' : `:${dead.line}`}${dead.index === undefined ? '' : `[${dead.index}]`}`;
}

function increment(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

function formatCounts(counts: Map<string, number>): string {
  return [...counts]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, n]) => `${key} ${grouped(n)}`)
    .join(', ');
}

function plural(n: number, noun: string): string {
  return `${grouped(n)} ${noun}${n === 1 ? '' : 's'}`;
}

function deadTotal(counts: Pick<RecordCounts, 'deadLetters'>): number {
  return Object.values(counts.deadLetters).reduce((a, b) => a + (b ?? 0), 0);
}

/** What became of a run's records, in the words of every command's summary. */
export function recordOutcomes(counts: RecordCounts): string {
  const ignored =
    counts.ignored > 0
      ? `, ignored ${grouped(counts.ignored)} (OCI audit events that concern nothing read)`
      : '';
  return `processed ${grouped(counts.processed)}, duplicates ${grouped(counts.duplicates)}, late ${grouped(counts.late)}, dead letters ${grouped(deadTotal(counts))}${ignored}`;
}

/** What the pipeline did with a run's records: the lines `replay` and `collect` print after their header. */
export function pipelineReport(
  pipeline: Pipeline,
  coverage: Coverage | undefined,
  firstDead: readonly DeadLetter[],
  state?: string,
): string[] {
  const { stats } = pipeline;
  const dead = deadTotal(stats);
  const lines = [`  ${recordOutcomes(stats)}`];
  for (const [code, n] of Object.entries(stats.deadLetters)) lines.push(`    ${code}: ${grouped(n ?? 0)}`);
  for (const d of firstDead.slice(0, 5)) {
    const where = [
      d.source,
      d.line !== undefined ? `line ${d.line}` : '',
      d.index !== undefined ? `#${d.index}` : '',
    ]
      .filter(Boolean)
      .join(' ');
    lines.push(`    e.g. ${d.code} at ${where}: ${d.message}`);
  }
  if (dead > 0 && state !== undefined)
    lines.push(`    all of them: export dead-letters --state ${displayStoreSpec(state)}`);
  if (coverage) lines.push(`  ${coverageLine(coverage)}`);
  lines.push(`  alerts ${grouped(stats.alerts)}`);
  for (const [rule, n] of Object.entries(stats.alertsByRule).sort()) lines.push(`    ${rule}: ${grouped(n)}`);
  if (stats.resolutions > 0) lines.push(`  resolutions ${grouped(stats.resolutions)}`);
  const wm = pipeline.watermark;
  if (wm !== undefined) lines.push(`  watermark ${toIso(wm)}`);
  for (const [rule, n] of pipeline.ruleErrors) lines.push(`  rule ${rule} failed on ${n} fact(s)`);
  const { unresolvedMemberships, unknownGroups, orphanEvents, drift, audited } = pipeline.correlation;
  if (unresolvedMemberships > 0)
    lines.push(
      `  ${unresolvedMemberships} membership event(s) name no user or group the directory knows: not applied`,
    );
  if (unknownGroups > 0)
    lines.push(
      `  ${unknownGroups} membership event(s) name a group the directory knows by no OCID, identity-domain id or name: applied under that id, no mapping reaches it (run sync)`,
    );
  if (drift + audited > 0)
    lines.push(
      `  changes between snapshots: ${audited} audited, ${drift} observed without an audit event (alerted as such)`,
    );
  if (orphanEvents > 0)
    lines.push(`  ${grouped(orphanEvents)} statement(s) of connections opened before the input`);
  return lines;
}

/** One line per route: where it delivers and what it did in this run. */
export function routeReport(routes: readonly RouteSink[]): string[] {
  return routes.map((r) => {
    const s = r.stats;
    const parts = [`${s.delivered} delivered`, `${s.muted} muted`];
    if (s.resolutions > 0) parts.push(`${s.resolutions} resolutions among them`);
    if (r instanceof TopicRoute) {
      parts.push(plural(s.messages, 'message'));
      if (s.digests > 0) parts.push(plural(s.digests, 'digest'));
      if (s.overflow > 0) parts.push(`${s.overflow} over the rate, batched`);
      if (r.pending > 0) parts.push(`${r.pending} held for their digest`);
    }
    return `  route ${r.route.name} (${r.describe}): ${parts.join(', ')}`;
  });
}

/**
 * The session ledger's attribution coverage for the summary and, when `path` is given, the
 * sessions file in `format` (one record per session, and one per disconnect where the format has
 * it), written in one pass a page at a time: nothing holds the whole ledger. Without a file, the
 * store counts the sessions from its typed columns and no session is read.
 */
export async function readLedger(
  store: Pick<StateStore, 'sessions' | 'sessionCounts'>,
  file: { path: string | undefined; format: OutputFormat },
): Promise<Coverage> {
  const coverage = emptyCoverage();
  if (file.path === undefined) {
    for (const n of await store.sessionCounts()) countInCoverage(coverage, n);
    return coverage;
  }
  await writeOutput(file.path, async (writer) => {
    for await (const s of store.sessions()) {
      addToCoverage(coverage, s);
      for (const line of sessionLines(file.format, s)) await writer.line(line);
    }
  });
  return coverage;
}

/** A session's records in a format: its connect, its switches and its disconnect where the format has them. */
export function sessionLines(format: OutputFormat, s: Session): string[] {
  return [formatSession(format, s), ...formatSessionSwitches(format, s), formatSessionEnd(format, s)].filter(
    (l): l is string => l !== undefined,
  );
}
