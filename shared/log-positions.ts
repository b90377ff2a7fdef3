// Dedupe by position for MySQL audit logs. An instance writes its log in (timestamp, id) order and
// its records arrive in that order give or take `window` (the lateness), so an event of a log more
// than the window behind the highest event accepted from that log can only be a redelivery: it is
// counted as a duplicate without looking its key up, and the key of an applied event is remembered
// (seen keys) only while it is within the window of its log's mark. IAM events, and logs that went
// back in time or changed server (audit gaps `log-reset`, `server-changed`), keep exact keys. After
// the server's clock stepped back (audit gap `clock-step`), the log's new events are stamped
// before its mark: from a window before the step's time on, its events keep exact keys until the
// clock has caught up with the mark (an event raises it again).
//
// A MySQL event after every event checked from its connection cannot be a duplicate of a buffered
// or same-batch event either (its key names the connection), so it needs no key lookup there: each
// connection's last position is kept in memory while it is within the window of the mark, so that
// a connection's statements, taken together as a run, are checked at once whatever other
// connections wrote in between. (Events at or before the released watermark are looked up in the
// seen keys whatever this says: pipeline.ts.)
import type { CanonicalEvent, DbEvent, GapEvent } from '../schemas/events.js';
import type { EntityCache } from './state/entity-cache.js';

/**
 * The highest event accepted from one log, or a log whose positions no longer order it. An event
 * more than the window ahead of the mark is held as `jump` until a second one near it confirms the
 * new time: one record stamped ahead (a clock that jumped and came back, a forged line) must not
 * make the rest of its log look a window behind, and so redelivered. `steppedTo`: the time the
 * log's clock stepped back to, while it has not caught up with the mark.
 */
type Mark = (Position & { jump?: Position; steppedTo?: number }) | { unordered: true };

const KIND = 'log-position';
/** Gaps after which a log's positions may repeat or go back: exact keys from then on. */
const REORDERING_GAPS: ReadonlySet<string> = new Set(['log-reset', 'server-changed']);

/**
 * What this process checked of one log: the mark when it first met the log (everything accepted
 * before, such as events buffered in a store, is at or before it) and, per connection, the last
 * position found ahead. A connection absent here has nothing accepted after `opened` that is not
 * released yet (it is forgotten only once its last position is a window behind the mark).
 */
type Front = { opened: Position | undefined; connections: Map<number | null, Position> };
type Position = { ts: number; recordId: number; key: string };
type MysqlEvent = CanonicalEvent & { source: 'mysql' };

/** Not an instance name (they are printable): stands for a DB system's one log. */
const NO_INSTANCE = '\u0000';

type LogRef = { dbSystemId?: string | undefined; instance?: string | undefined };

export class LogPositions {
  /** Log names by DB system and instance, built once (every event looks its log up). */
  private readonly names = new Map<string, Map<string, string>>();
  private readonly fronts = new Map<string, Front>();

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

  /**
   * Marks the log of a gap that says its positions no longer order it. A gap names its instance by
   * its endpoint, and the primary's events carry none: a gap of the primary marks the DB system's
   * own log too, as does one that does not say which it is (a record from before gaps said so). A
   * replica's (`primary: false`) leaves the DB system's own log ordered by position.
   */
  noteGap(ev: CanonicalEvent): void {
    if (ev.source !== 'gap' || ev.trail !== 'mysql-audit' || !REORDERING_GAPS.has(ev.reason)) return;
    const logs = ev.primary === false ? [this.logOf(ev)] : [this.logOf(ev), ev.dbSystemId ?? ''];
    for (const log of new Set(logs)) this.cache.set<Mark>(KIND, log, { unordered: true });
  }

  /**
   * Takes a clock step back of a log (an accepted audit gap `clock-step`): its events from a window
   * before the step's time on are no longer told from redeliveries by their position.
   */
  private stepped(ev: GapEvent): void {
    const log = this.logOf(ev);
    const mark = this.cache.get<Mark>(KIND, log);
    if (mark === undefined || 'unordered' in mark || ev.ts >= (mark.steppedTo ?? mark.ts)) return;
    mark.steppedTo = ev.ts;
    this.cache.touch(KIND, log);
  }

  /**
   * Raises the mark of an accepted MySQL event's log (a jump of more than the window once
   * confirmed), or takes an accepted clock step of a log.
   */
  accepted(ev: CanonicalEvent): void {
    if (ev.source !== 'mysql') {
      if (ev.source === 'gap' && ev.reason === 'clock-step') this.stepped(ev);
      return;
    }
    const log = this.logOf(ev);
    const mark = this.cache.get<Mark>(KIND, log);
    if (mark === undefined) {
      this.cache.set<Mark>(KIND, log, { ts: ev.ts, recordId: ev.recordId, key: ev.key });
      return;
    }
    if ('unordered' in mark || !after(ev, mark)) return;
    const position = { ts: ev.ts, recordId: ev.recordId, key: ev.key };
    let top: Position = position;
    if (this.behind(mark.ts, position.ts)) {
      const { jump } = mark;
      const confirmed =
        jump !== undefined && !this.behind(ev.ts, jump.ts) && !this.behind(jump.ts, position.ts);
      if (!confirmed) {
        mark.jump = position;
        this.cache.touch(KIND, log);
        return;
      }
      if (after(jump, position)) top = jump;
    }
    // Near the mark again after a jump: the jump was one record out of line. A clock that stepped
    // back has caught up.
    delete mark.jump;
    delete mark.steppedTo;
    mark.ts = top.ts;
    mark.recordId = top.recordId;
    mark.key = top.key;
    this.cache.touch(KIND, log);
  }

  /**
   * True for a MySQL event after every event checked from its connection (in this batch or any
   * before): it cannot be a duplicate. Marks it checked.
   */
  isAhead(ev: CanonicalEvent): boolean {
    return ev.source === 'mysql' && this.aheadCount([ev]) === 1;
  }

  /**
   * How many of a connection's events (in log order) are ahead, from the first on (see `isAhead`);
   * those are marked checked.
   */
  aheadCount(events: readonly MysqlEvent[]): number {
    const first = events[0];
    if (first === undefined) return 0;
    const log = this.logOf(first);
    const mark = this.cache.get<Mark>(KIND, log);
    if (mark !== undefined && 'unordered' in mark) return 0;
    let front = this.fronts.get(log);
    if (front === undefined) {
      // Everything accepted is at or before the mark, or its unconfirmed jump.
      const top = mark?.jump ?? mark;
      const opened = top && { ts: top.ts, recordId: top.recordId, key: top.key };
      front = { opened, connections: new Map() };
      this.fronts.set(log, front);
    }
    let last = front.connections.get(first.connectionId);
    let n = 0;
    for (; n < events.length; n++) {
      const ev = events[n]!;
      const ahead =
        last !== undefined ? after(ev, last) : front.opened === undefined || after(ev, front.opened);
      if (!ahead) break;
      last = ev;
    }
    if (n > 0) front.connections.set(first.connectionId, last!);
    return n;
  }

  /** Raises the mark of a connection's accepted events (in log order) to the highest of them. */
  acceptedAll(events: readonly MysqlEvent[]): void {
    if (events.length === 0) return;
    let top = events[0]!;
    for (let i = 1; i < events.length; i++) if (after(events[i]!, top)) top = events[i]!;
    this.accepted(top);
  }

  /**
   * Forgets connections whose last position is a window behind their log's mark: the watermark
   * has passed them, so nothing of theirs is buffered (see `aheadCount`).
   */
  forgetBehind(): void {
    for (const [log, front] of this.fronts) {
      const mark = this.cache.get<Mark>(KIND, log);
      if (mark === undefined) continue;
      if ('unordered' in mark) {
        this.fronts.delete(log);
        continue;
      }
      for (const [connection, last] of front.connections)
        if (last.ts + this.window <= mark.ts) front.connections.delete(connection);
    }
  }

  /** True for a MySQL event more than the window behind its log's mark (or clock step): a redelivery. */
  isRedelivery(ev: CanonicalEvent): boolean {
    return ev.source === 'mysql' && this.behind(ev.ts, this.orderedTop(ev));
  }

  /** Whether an applied event's key must be remembered: it is not (yet) a redelivery by position. */
  needsKey(ev: CanonicalEvent): boolean {
    return !this.isRedelivery(ev);
  }

  /** The first `n` of a connection's events (in log order) whose keys must be remembered (`needsKey`). */
  needingKeys(events: readonly DbEvent[], n: number): DbEvent[] {
    if (n === 0) return [];
    const top = this.orderedTop(events[0]!);
    // Along a log, the events a window behind the mark come first; one out of order after the
    // first that is not only has its key remembered when it need not be.
    let i = 0;
    while (i < n && this.behind(events[i]!.ts, top)) i++;
    return events.slice(i, n);
  }

  /**
   * The time of an event's log that its events a window behind are redeliveries of, while its
   * positions order it: its mark's, or the time its clock stepped back to.
   */
  private orderedTop(ev: LogRef): number | undefined {
    const mark = this.cache.get<Mark>(KIND, this.logOf(ev));
    return mark === undefined || 'unordered' in mark ? undefined : (mark.steppedTo ?? mark.ts);
  }

  /** Whether a time is more than the window behind a log's top (none: never). */
  private behind(ts: number, top: number | undefined): boolean {
    return top !== undefined && ts + this.window <= top;
  }
}

/** Whether `ev` comes after the mark in its log (compareEvents restricted to one log). */
function after(ev: Position, mark: Position) {
  if (ev.ts !== mark.ts) return ev.ts > mark.ts;
  if (ev.recordId !== mark.recordId) return ev.recordId > mark.recordId;
  return ev.key > mark.key;
}
