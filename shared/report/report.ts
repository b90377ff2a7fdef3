// What a report is: metadata and a pure function over the audit store's facts for a period, fed
// the period's sessions one at a time (so that every report reads the ledger in one pass, however
// large). Each report lives in its own module; shared/report/registry.ts lists them.
import { utc } from '@date-fns/utc';
import { subMonths } from 'date-fns';
import type { Alert, Resolution } from '../../schemas/alert.js';
import { parseDuration } from '../../schemas/config.js';
import type { Cell, Chart, Column, Figure, ReportId, Section, Table } from '../../schemas/report.js';
import { activeUntil, type Session } from '../../schemas/session.js';
import type { AuditFacts } from './audit-facts.js';

/** `from` inclusive, `to` exclusive, epoch milliseconds. */
export type Period = { from: number; to: number };

const DAY = 86_400_000;
const HOUR = 3_600_000;

/** What a report period given as a length may be (`report --period`, the function's report action). */
export const PERIOD_LENGTH_TEXT = 'an ISO 8601 duration from PT1H to P400D, such as P7D or P1M';

/** A report period's length: calendar months (`P1M`; `P1Y` is 12) and then a fixed part in ms (`P7D`). */
export type PeriodLength = { months: number; ms: number };

/** A report period's length (`P7D`, `P1M`); undefined when it is not one (see PERIOD_LENGTH_TEXT). */
export function periodLength(text: string): PeriodLength | undefined {
  const average = parseDuration(text);
  if (average === undefined || average < HOUR || average > 400 * DAY) return undefined;
  const [, years, months, rest = ''] = /^P(?:(\d+)Y)?(?:(\d+)M)?(.*)$/.exec(text) ?? [];
  const ms = rest === '' ? 0 : parseDuration(`P${rest}`);
  return ms === undefined ? undefined : { months: 12 * Number(years ?? 0) + Number(months ?? 0), ms };
}

/**
 * The period of `length` that ends at `to`, or else at the current UTC day (the current hour for
 * a period shorter than a day) rounded down: a period of whole days (or calendar months, from the
 * same day and time of the month), the same for every run (or retry) within the day.
 */
function periodEnding(length: PeriodLength, to: number | undefined, now: number): Period {
  const unit = length.months > 0 || length.ms >= DAY ? DAY : HOUR;
  const end = to ?? Math.floor(now / unit) * unit;
  return { from: subMonths(end, length.months, { in: utc }).getTime() - length.ms, to: end };
}

/** A period of `length` ending at `to` (see periodEnding), and the one of the same length before it. */
export function periodsEnding(
  length: PeriodLength,
  to: number | undefined,
  now: number,
): { period: Period; previous: Period } {
  const period = periodEnding(length, to, now);
  return { period, previous: periodEnding(length, period.from, now) };
}

export type ReportContext = {
  period: Period;
  /** The period before, of the same length. */
  previous: Period;
  /** The DB system the report is limited to (its sessions and alerts; alerts of no DB system stay). */
  dbSystem: string | undefined;
  facts: AuditFacts;
  /** Alerts raised in the period, by time. */
  alerts: readonly Alert[];
  /** Alerts raised in the previous period. */
  previousAlerts: readonly Alert[];
  /**
   * Alerts raised before the period whose repeats (merged into them) went on into it: the last
   * one stored is at the period's start or after (lastOccurrence), by time of the first.
   */
  repeatedAlerts: readonly Alert[];
  /** The same for the previous period: raised before it, repeated into it. */
  previousRepeated: readonly Alert[];
  /** How alerts were resolved by the end of the period, by alert id (an alert not here was still open then). */
  resolutions: ReadonlyMap<string, Resolution>;
};

/** The period's alerts with those raised before it and repeated into it (those first), by first occurrence. */
export const alertsActiveIn = (ctx: ReportContext): Alert[] => [...ctx.repeatedAlerts, ...ctx.alerts];

/** What a report makes of its context and sessions: its key figures and sections. */
export type ReportBody = { figures: Figure[]; sections: Section[] };

export type ReportBuilder = {
  /**
   * Each session active at some time in the period (on the DB system; connectedIn tells those
   * that connected in it), in connect-time order.
   */
  session(s: Session): void;
  finish(): ReportBody;
};

export type ReportDefinition = {
  id: ReportId;
  title: string;
  description: string;
  controls: string[];
  start(ctx: ReportContext): ReportBuilder;
};

/** Rows a table keeps (the rest is counted in totalRows; exports and the SQL views have them all). */
export const TABLE_ROW_LIMIT = 5000;

/** Rows of a list that may grow past the table limit: the first ones kept, all of them counted. */
export class CappedRows {
  readonly rows: Cell[][] = [];
  total = 0;
  push(row: Cell[]): void {
    this.total++;
    if (this.rows.length < TABLE_ROW_LIMIT) this.rows.push(row);
  }
}

export function table(columns: Column[], rows: Cell[][] | CappedRows): Table {
  if (rows instanceof CappedRows) return { columns, rows: rows.rows, totalRows: rows.total };
  return { columns, rows: rows.slice(0, TABLE_ROW_LIMIT), totalRows: rows.length };
}

export function column(id: string, title: string, type: Column['type'] = 'text'): Column {
  return { id, title, type };
}

export function section(id: string, title: string, description: string, t: Table, chart?: Chart): Section {
  return chart ? { id, title, description, chart, table: t } : { id, title, description, table: t };
}

export function bars(title: string, categories: string[], series: Chart['series'], stacked = false): Chart {
  return { kind: 'bar', title, categories, series, stacked };
}

export const iso = (ts: number): string => new Date(ts).toISOString();

/** UTC day (YYYY-MM-DD) of an epoch-ms time. */
export const day = (ts: number): string => iso(ts).slice(0, 10);

/** Every UTC day the period touches. */
export function days(period: Period): string[] {
  const out: string[] = [];
  for (let t = Date.parse(`${day(period.from)}T00:00:00Z`); t < period.to; t += 86_400_000) out.push(day(t));
  return out;
}

/**
 * Part of a whole as a percentage with one decimal; 100 when there is no whole. Never 100 or 0 by
 * rounding: one session in ten thousand tied to nobody shows as 99.9, not as all of them.
 */
export function percent(part: number, whole: number): number {
  if (whole === 0) return 100;
  const rounded = Math.round((part / whole) * 1000) / 10;
  return Math.min(Math.max(rounded, part > 0 ? 0.1 : 0), part < whole ? 99.9 : 100);
}

/** A counter keyed by text. */
export class Tally<K extends string = string> {
  readonly counts = new Map<K, number>();
  add(key: K, n = 1): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + n);
  }
  get(key: K): number {
    return this.counts.get(key) ?? 0;
  }
  total(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }
}

/** Groups items by a key into records made on first sight. */
export function keyed<T>(map: Map<string, T>, key: string, make: () => T): T {
  let value = map.get(key);
  if (value === undefined) {
    value = make();
    map.set(key, value);
  }
  return value;
}

export const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Keeps at most `max` distinct values (sorted when read). */
export class BoundedSet {
  readonly values = new Set<string>();
  constructor(private readonly max: number) {}
  add(value: string): void {
    if (this.values.size < this.max) this.values.add(value);
  }
  addAll(values: readonly string[] | undefined): void {
    for (const v of values ?? []) this.add(v);
  }
  sorted(): string[] {
    return [...this.values].sort(byText);
  }
}

/** A named person who was not a member, had left the group, or was no longer an active user. */
const NOT_ENTITLED = new Set(['not-member', 'left-group', 'user-inactive']);

/** Whether a session connected in the period (the others were active in it, connected before). */
export const connectedIn = (s: Session, period: Period): boolean => s.connectTs >= period.from;

/**
 * The last time within the period a session was in use: until when it was active (activeUntil),
 * or the period's last millisecond for one active past its end.
 */
export const lastUseIn = (s: Session, period: Period): string => iso(Math.min(activeUntil(s), period.to - 1));

/** Whether a time (ISO 8601) is in the period. */
export function inPeriod(time: string, period: Period): boolean {
  const t = Date.parse(time);
  return t >= period.from && t < period.to;
}

/** The session names a person the directory says was not entitled to it at connect time. */
export function notEntitled(s: Session): boolean {
  return (
    s.identity !== null && s.attribution?.problem !== undefined && NOT_ENTITLED.has(s.attribution.problem)
  );
}

/**
 * When the alert last occurred as the store knows it now (epoch ms): its last merged repeat, or
 * its first occurrence when it has none. Repeats merged in later move it on.
 */
export function lastOccurrence(a: Alert): number {
  const last = detailText(a, 'lastTime');
  return last === undefined ? Date.parse(a.time) : Date.parse(last);
}

/** What the occurrence counts are, said wherever they are shown. */
export const OCCURRENCES_NOTE =
  "Occurrences: the alert and the repeats merged into it within its rule's suppression window, over the alert's whole life as the store held it when the report was made. Each repeat's time is not stored, so an alert raised before the period, or repeated after it, counts those repeats too, and a report of a past period made again later can show more.";

/** The alert's detail `key` when it is text. */
export function detailText(a: Alert, key: string): string | undefined {
  const v = a.details?.[key];
  return typeof v === 'string' ? v : undefined;
}

/** How surely the person an alert names was named (its attribution's confidence); null when it names none. */
export function personConfidence(a: Alert): string | null {
  return a.identity?.name ? (a.identity.attribution?.confidence ?? null) : null;
}
