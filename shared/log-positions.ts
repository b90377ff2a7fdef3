// Dedupe by position for MySQL audit logs. An instance writes its log in (timestamp, id) order and
// its records arrive in that order give or take `window` (the lateness), so an event of a log more
// than the window behind the highest event accepted from that log can only be a redelivery: it is
// counted as a duplicate without looking its key up, and the key of an applied event is remembered
// (seen keys) only while it is within the window of its log's mark. IAM events, and logs that went
// back in time or changed server (audit gaps `log-reset`, `server-changed`), keep exact keys.
import type { CanonicalEvent } from '../schemas/events.js';
import type { EntityCache } from './state/entity-cache.js';

/** The highest event accepted from one log, or a log whose positions no longer order it. */
type Mark = { ts: number; recordId: number; key: string } | { unordered: true };

const KIND = 'log-position';
/** Gaps after which a log's positions may repeat or go back: exact keys from then on. */
const REORDERING_GAPS: ReadonlySet<string> = new Set(['log-reset', 'server-changed']);

/** Not an instance name (they are printable): stands for a DB system's one log. */
const NO_INSTANCE = '\u0000';

type LogRef = { dbSystemId?: string | undefined; instance?: string | undefined };

export class LogPositions {
  /** Log names by DB system and instance, built once (every event looks its log up). */
  private readonly names = new Map<string, Map<string, string>>();

  constructor(
    private readonly cache: EntityCache,
    private readonly window: number,
  ) {}

  private logOf(ev: LogRef): string {
    const db = ev.dbSystemId ?? '';
    let byInstance = this.names.get(db);
    if (byInstance === undefined) {
      byInstance = new Map();
      this.names.set(db, byInstance);
    }
    const instance = ev.instance ?? NO_INSTANCE;
    let name = byInstance.get(instance);
    if (name === undefined) {
      name = ev.instance === undefined ? db : `${db}/${ev.instance}`;
      byInstance.set(instance, name);
    }
    return name;
  }

  /** Marks the log of a gap that says its positions no longer order it (and its DB system's, for raw files). */
  noteGap(ev: CanonicalEvent): void {
    if (ev.source !== 'gap' || ev.trail !== 'mysql-audit' || !REORDERING_GAPS.has(ev.reason)) return;
    for (const log of new Set([this.logOf(ev), ev.dbSystemId ?? '']))
      this.cache.set<Mark>(KIND, log, { unordered: true });
  }

  /** Raises the mark of an accepted MySQL event's log. */
  accepted(ev: CanonicalEvent): void {
    if (ev.source !== 'mysql') return;
    const log = this.logOf(ev);
    const mark = this.cache.get<Mark>(KIND, log);
    if (mark !== undefined && ('unordered' in mark || !after(ev, mark))) return;
    if (mark === undefined)
      this.cache.set<Mark>(KIND, log, { ts: ev.ts, recordId: ev.recordId, key: ev.key });
    else {
      mark.ts = ev.ts;
      mark.recordId = ev.recordId;
      mark.key = ev.key;
      this.cache.touch(KIND, log);
    }
  }

  /**
   * True for a MySQL event after every event accepted from its log and after every such event of
   * the current batch so far (`front`, kept by the caller per batch): it cannot be a duplicate.
   */
  isAhead(ev: CanonicalEvent, front: Map<string, CanonicalEvent>): boolean {
    if (ev.source !== 'mysql') return false;
    const log = this.logOf(ev);
    const mark = this.cache.get<Mark>(KIND, log);
    if (mark !== undefined && ('unordered' in mark || !after(ev, mark))) return false;
    const last = front.get(log) as (CanonicalEvent & { source: 'mysql' }) | undefined;
    if (last !== undefined && !after(ev, last)) return false;
    front.set(log, ev);
    return true;
  }

  /** True for a MySQL event more than the window behind its log's mark: a redelivery. */
  isRedelivery(ev: CanonicalEvent): boolean {
    if (ev.source !== 'mysql') return false;
    const mark = this.cache.get<Mark>(KIND, this.logOf(ev));
    return mark !== undefined && !('unordered' in mark) && ev.ts + this.window <= mark.ts;
  }

  /** Whether an applied event's key must be remembered: it is not (yet) a redelivery by position. */
  needsKey(ev: CanonicalEvent): boolean {
    return !this.isRedelivery(ev);
  }
}

/** Whether `ev` comes after the mark in its log (compareEvents restricted to one log). */
function after(
  ev: CanonicalEvent & { source: 'mysql' },
  mark: { ts: number; recordId: number; key: string },
) {
  if (ev.ts !== mark.ts) return ev.ts > mark.ts;
  if (ev.recordId !== mark.recordId) return ev.recordId > mark.recordId;
  return ev.key > mark.key;
}
