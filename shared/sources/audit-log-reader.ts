// Reads one instance's audit log over SQL, as MySQL Enterprise Audit allows on HeatWave
// (docs/collector.md): `audit_log_read()` sequences positioned by our stored bookmark, or by a
// start time on the first run, in calls of at most `batchSize` events, until the array ends with
// `null`. Every call passes an argument (a position, or `{"max_array_length": N}` to continue), so
// no call depends on a session default; `audit_log_read('null')` closes a sequence left early.
//
// What cannot be read is reported, never skipped silently: the log pruned past our bookmark, events
// the server skipped because they did not fit the read buffer (its warnings), a log that went back
// in time, another server behind the instance's address. Each becomes a gap record (schemas/
// envelopes.ts) in the stream of records, so it reaches the pipeline (rule audit.gap) in order.
//
// The log is in write order, and its timestamps are the server's clock, which can step back: what
// was read before is told by the log's order (the bookmarked event and what the server returns
// before it), never by comparing positions. A step back of `lateness` or more is a `clock-step` gap
// record ahead of the first event after it (shared/decode/clock-steps.ts), so that the pipeline
// does not take the events after it for redeliveries.
//
// Unconfirmed on HeatWave (docs/collector.md): whether a bookmark read returns the bookmarked event
// itself (the manual says it does) and how a skipped-for-size warning is worded. A bookmark read
// that does not return the bookmarked event is checked again from the start of its second before
// a gap is reported, and every warning of a read counts as events skipped.
//
// The server keeps at most `max_error_count` messages of a statement (1024 by default) but counts
// them all: when `SHOW WARNINGS` returns that many, `SHOW COUNT(*) WARNINGS` (a diagnostic
// statement too, so the messages stay) gives how many there were. A server that does not report
// `max_error_count` (NULL, or no such variable) is asked for the count after every call that
// warned, and the gap says the count is the server's. A server that refuses to count is read all
// the same: its gaps say how many events were skipped is unknown (they carry no count), and it is
// not asked again. So are those of a call whose count the server answers with NULL or a value
// that is not a number (never read as 0, nor as the number of messages kept). A count smaller
// than the messages kept loses to them (each message is one warning), and the gap says so. A
// server that keeps no message (`max_error_count` 0) and refuses to count gives no gap: nothing
// says it skipped.
import type { GapRecord } from '../../schemas/envelopes.js';
import type { GAP_REASONS } from '../../schemas/events.js';
import { ClockSteps, clockStepRecord } from '../decode/clock-steps.js';
import { parseAuditTimestamp } from '../normalize/mysql-audit.js';
import { toIso } from '../time.js';
import { InstanceError, type InstanceTarget, instanceError, type SqlSession } from './mysql-connection.js';

/** MySQL's error for `@@name` of a variable the server does not have. */
const ER_UNKNOWN_SYSTEM_VARIABLE = 1193;
/**
 * The errors of a server that does not know `SHOW COUNT(*) WARNINGS`: unknown command, syntax
 * error, not supported, unknown variable (`@@warning_count`, which the statement reads). Any other
 * (an interrupted query, a server shutting down) fails the read as any error does.
 */
const COUNT_REFUSALS = new Set([1047, 1064, 1235, ER_UNKNOWN_SYSTEM_VARIABLE]);
/** How a gap says the count of a server that refuses to count its warnings is unknown. */
const COUNT_REFUSED = 'refused to count them all';

export type AuditPosition = { timestamp: string; id: number };

/**
 * Where the collector stands in one instance's log: the last event read, and the server it came
 * from; `latest`, the latest time read before it when that is later (its clock stepped back less
 * than `lateness`), from which the next read tells a step back. `skipped`: the event there was not
 * read but skipped for size, and a gap said so (a read by time that returned no event, `read`).
 */
export type InstancePosition = AuditPosition & {
  serverUuid: string;
  time: string;
  latest?: string;
  skipped?: true;
};

/** How the server provides audit logging: the 8.0/8.4 plugin, the 9.x component, Percona's component. */
export type AuditFlavor = 'plugin' | 'component' | 'percona';

const FLAVORS: readonly { flavor: AuditFlavor; prefix: string }[] = [
  { flavor: 'percona', prefix: 'audit_log_filter.' },
  { flavor: 'component', prefix: 'audit_log.' },
  { flavor: 'plugin', prefix: 'audit_log_' },
];

/** The audit log flavor a server's variable names reveal, and their prefix. */
export function auditFlavorOf(
  variableNames: readonly string[],
): { flavor: AuditFlavor; prefix: string } | undefined {
  return FLAVORS.find((f) => variableNames.some((n) => n.startsWith(f.prefix)));
}

export type AuditLogServer = {
  version: string;
  serverUuid: string;
  flavor: AuditFlavor | undefined;
  /** Audit log variables by name (`audit_log_format`, `audit_log.read_buffer_size`, ...). */
  variables: Map<string, string>;
  /** The read buffer of this session after we tried to raise it. */
  readBufferSize: number | undefined;
  /** Why the buffer could not be raised, when it could not. */
  bufferNote?: string;
  /** How many messages of a statement the server keeps (`max_error_count`), when it said. */
  maxErrorCount: number | undefined;
};

/** A record read (a collector record or a gap record) and, for an event, the position it ends at. */
export type ReadRecord = { record: Record<string, unknown>; position?: InstancePosition };

/** Records read in one call, in log order. */
export type ReadBatch = {
  records: ReadRecord[];
  /** Events read before: the bookmarked event and those the server returned ahead of it. */
  repeated: number;
};

type CallResult = {
  events: unknown[];
  ended: boolean;
  /** The messages the server kept (at most `max_error_count`). */
  warnings: { code: number; message: string }[];
  /**
   * How many warnings the call raised: more than `warnings` when the server kept only some;
   * undefined when it may have kept only some and did not count them (`uncounted` says how).
   */
  warningCount: number | undefined;
  /** Why `warningCount` is unknown: how the server answered when asked to count its warnings. */
  uncounted?: string;
  /**
   * The server's count of its warnings when it was smaller than the messages it kept: each message
   * is a warning, so `warningCount` is the messages', the larger.
   */
  countedBelow?: number;
};

const EPOCH_START = '1970-01-01 00:00:00';

export function compareAuditPositions(a: AuditPosition, b: AuditPosition): number {
  if (a.timestamp !== b.timestamp) return a.timestamp < b.timestamp ? -1 : 1;
  return a.id - b.id;
}

/**
 * A number the server sent, or the digits of one; else NaN (Number(null) and Number('') are 0,
 * which would read as a count or an id).
 */
function integerOf(value: unknown): number {
  return typeof value === 'number' ||
    typeof value === 'bigint' ||
    (typeof value === 'string' && /^\d+$/.test(value))
    ? Number(value)
    : Number.NaN;
}

/** The position of a raw audit event, when it has a valid timestamp and id. */
function positionOf(event: unknown): (AuditPosition & { ts: number }) | undefined {
  if (typeof event !== 'object' || event === null) return undefined;
  const { timestamp, id } = event as { timestamp?: unknown; id?: unknown };
  const n = integerOf(id);
  if (typeof timestamp !== 'string' || !Number.isInteger(n)) return undefined;
  const ts = parseAuditTimestamp(timestamp);
  return ts === undefined ? undefined : { timestamp, id: n, ts };
}

/** `YYYY-MM-DD hh:mm:ss` (UTC), as audit timestamps and `start` positions are written. */
export function auditTimestamp(ms: number): string {
  return toIso(ms).slice(0, 19).replace('T', ' ');
}

/** Where the event at `position` is among `events`, or -1. */
function indexOf(events: readonly unknown[], position: AuditPosition): number {
  return events.findIndex((e) => {
    const p = positionOf(e);
    return p !== undefined && compareAuditPositions(p, position) === 0;
  });
}

function parseBookmark(value: unknown): AuditPosition | undefined {
  if (value === null || value === undefined) return undefined;
  try {
    const parsed = JSON.parse(Buffer.isBuffer(value) ? value.toString('utf8') : String(value)) as unknown;
    const p = positionOf(parsed);
    return p ? { timestamp: p.timestamp, id: p.id } : undefined;
  } catch {
    return undefined;
  }
}

export class AuditLogReader {
  /** The bookmark of the newest event when the reader opened. */
  private latest: AuditPosition | undefined;
  private sequenceOpen = false;
  /** The server refused to count a statement's warnings: their count is unknown when it keeps only some. */
  private countRefused = false;

  private constructor(
    private readonly session: SqlSession,
    private readonly target: InstanceTarget,
    readonly server: AuditLogServer,
  ) {}

  /** Inspects the server (version, audit log flavor and format) and raises the session's read buffer. */
  static async open(session: SqlSession, target: InstanceTarget): Promise<AuditLogReader> {
    const run = (sql: string, during: string) =>
      session.query(sql).catch((error: unknown) => {
        throw instanceError(target, error, during);
      });
    const [info] = await session
      .query(
        'SELECT @@version AS version, @@server_uuid AS server_uuid, @@max_error_count AS max_error_count',
      )
      .catch((error: unknown) => {
        // A server without the variable (1193 Unknown system variable): its warnings are counted.
        if ((error as { errno?: unknown }).errno !== ER_UNKNOWN_SYSTEM_VARIABLE) throw error;
        return session.query('SELECT @@version AS version, @@server_uuid AS server_uuid');
      })
      .catch((error: unknown) => {
        throw instanceError(target, error, 'reading the version');
      });
    const rows = await run("SHOW GLOBAL VARIABLES LIKE 'audit\\_log%'", 'reading the audit log variables');
    const variables = new Map(rows.map((r) => [String(r.Variable_name), String(r.Value)]));
    const found = auditFlavorOf([...variables.keys()]);
    const maxErrorCount = Number(info?.max_error_count ?? Number.NaN);
    const server: AuditLogServer = {
      version: String(info?.version ?? ''),
      serverUuid: String(info?.server_uuid ?? ''),
      flavor: found?.flavor,
      variables,
      readBufferSize: undefined,
      maxErrorCount: Number.isInteger(maxErrorCount) ? maxErrorCount : undefined,
    };
    const reader = new AuditLogReader(session, target, server);
    if (found === undefined)
      throw reader.failure('no audit log plugin or component is installed (see docs/collector.md)');
    const format = variables.get(`${found.prefix}format`);
    if (format !== undefined && !/^JSON/i.test(format)) {
      throw reader.failure(
        `the audit log format is ${format}; audit_log_read() reads JSON logs only (set ${found.prefix}format=JSON)`,
      );
    }
    await reader.raiseBuffer(found.prefix);
    reader.latest = parseBookmark(
      (await run('SELECT audit_log_read_bookmark() AS bookmark', 'calling audit_log_read_bookmark()'))[0]
        ?.bookmark,
    );
    return reader;
  }

  private async raiseBuffer(prefix: string): Promise<void> {
    const name = `${prefix}read_buffer_size`;
    const current = Number(this.server.variables.get(name));
    const wanted = this.target.settings.readBufferSize;
    this.server.readBufferSize = Number.isFinite(current) ? current : undefined;
    if (!this.server.variables.has(name)) {
      this.server.bufferNote = `the server has no ${name}`;
      return;
    }
    if (current >= wanted) return;
    try {
      await this.session.query(`SET SESSION ${name} = ${wanted}`);
      this.server.readBufferSize = wanted;
    } catch {
      this.server.bufferNote = `cannot raise ${name} for this session (it stays ${current} bytes): events larger than that are skipped`;
    }
  }

  /**
   * Reads from `start.position` (the last event read before; it is not returned again) or, with
   * none, from `start.from` (epoch ms; default: the oldest event the server keeps), call by call
   * until the end of the log or until `signal` aborts.
   */
  async *read(
    start: { position?: InstancePosition; from?: number },
    signal?: AbortSignal,
  ): AsyncGenerator<ReadBatch> {
    const cp = start.position;
    const { serverUuid } = this.server;
    const gaps: GapRecord[] = [];
    let result: CallResult;
    let repeated = 0;
    // Where a read positioned by time starts (a first read, or one of another server): no bookmark.
    const since =
      cp?.serverUuid === serverUuid
        ? undefined
        : (cp?.timestamp ?? (start.from === undefined ? EPOCH_START : auditTimestamp(start.from)));
    if (cp && cp.serverUuid !== serverUuid) {
      gaps.push(
        this.gap(
          'server-changed',
          cp.time,
          undefined,
          undefined,
          `server ${serverUuid} now answers; events the previous server (${cp.serverUuid}) wrote after this time were not read`,
        ),
      );
    }
    if (since === undefined) ({ result, repeated } = await this.resume(cp!, gaps));
    else result = await this.call({ start: { timestamp: since } });

    const sinceTime = since === undefined || since === EPOCH_START ? undefined : parseAuditTimestamp(since);
    let position = cp && cp.serverUuid === serverUuid ? cp : undefined;
    const { db, eventInstance } = this.target;
    const log = { dbSystemId: db.id, dbSystemName: db.name, instance: eventInstance };
    // A log read again from its start (reset) has no time before it.
    const resumed = gaps.some((g) => g.reason === 'log-reset') ? undefined : position;
    const clock = new ClockSteps(
      this.target.settings.lateness,
      resumed && Date.parse(resumed.latest ?? resumed.time),
    );
    for (;;) {
      // The next call goes out while this one's records are processed (one call in flight).
      const next = result.ended || signal?.aborted ? undefined : this.call({});
      next?.catch(() => undefined);
      const records: ReadRecord[] = gaps.splice(0).map((record) => ({ record }));
      const before = position;
      for (const event of result.events) {
        const p = positionOf(event);
        if (p) {
          const from = clock.step(p.ts);
          if (from !== undefined) records.push({ record: clockStepRecord(log, from, p.ts) });
          position = { timestamp: p.timestamp, id: p.id, serverUuid, time: toIso(p.ts) };
          if (clock.latest > p.ts) position.latest = toIso(clock.latest);
        }
        records.push(
          p ? { record: this.record(event), position: position! } : { record: this.record(event) },
        );
      }
      const { warnings, warningCount, uncounted, countedBelow } = result;
      // Warnings kept but not counted (a count refused, or not a number) are a gap of unknown size.
      if ((warningCount ?? warnings.length) > 0) {
        const codes = [...new Set(warnings.map((w) => w.code))].join(', ') || 'unknown';
        const kept = warnings.length < (warningCount ?? Number.POSITIVE_INFINITY);
        let capped = '';
        if (warningCount === undefined)
          capped = `; how many is unknown: the server kept ${warnings.length} message(s), ${this.server.maxErrorCount === undefined ? 'does not report how many it keeps' : 'as many as it keeps'} (max_error_count), and ${uncounted}`;
        else if (countedBelow !== undefined)
          capped = `; counted from the messages the server kept: its warning count (${countedBelow}) is smaller, and each message is a warning`;
        else if (this.server.maxErrorCount === undefined)
          capped = `; counted from the server's warning count: it does not report how many messages it keeps (max_error_count)${kept ? `, and it kept the messages of the first ${warnings.length} only` : ''}`;
        else if (kept)
          capped = `; the server kept the messages of the first ${warnings.length} only (max_error_count)`;
        // A read by time that returned no event, only warnings, stores no bookmark of an event read:
        // the next pass would read from the same start, be warned of the same events and report
        // them again, as often as it runs. Its gap carries a position instead (`skippedThrough`),
        // so that the next pass reads after them: they are reported once, with their count, and
        // whatever is written after them is read (an event that fits, more events skipped: a gap
        // of their own). Without such a position, the gap is timed at the read's start, not by the
        // clock: a pass warned again of the same events gives the same gap, which the pipeline
        // takes for a duplicate.
        const through =
          result.ended && position === undefined && since !== undefined
            ? this.skippedThrough(since)
            : undefined;
        const gap = this.gap(
          'oversized',
          before?.time ??
            position?.time ??
            (sinceTime === undefined ? (through?.time ?? toIso(Date.now())) : toIso(sinceTime)),
          position?.time ?? through?.time,
          warningCount,
          `the server warned ${warningCount ?? `at least ${warnings.length}`} time(s) while reading (codes ${codes}): events that did not fit the read buffer (${this.server.readBufferSize ?? 'unknown'} bytes) were skipped${capped}`,
        );
        records.push(through ? { record: gap, position: through } : { record: gap });
      }
      yield { records, repeated };
      repeated = 0;
      if (next === undefined) {
        if (!result.ended) await this.close();
        return;
      }
      result = await next;
    }
  }

  /**
   * Where a read from `since` (by time) that returned no event and reached the end of the log
   * stands: at the newest event the server had when the reader opened (`latest`), when that is at
   * or after `since`. The read passed it without returning it: it was skipped for size (the
   * server warned), and every event before it that the read reached too. Undefined when the log
   * had no such event: the warnings were of events written during the read.
   */
  private skippedThrough(since: string): InstancePosition | undefined {
    const latest = this.latest && positionOf(this.latest);
    const from = parseAuditTimestamp(since);
    if (latest === undefined || from === undefined || latest.ts < from) return undefined;
    const { timestamp, id } = latest;
    return { timestamp, id, serverUuid: this.server.serverUuid, time: toIso(latest.ts), skipped: true };
  }

  /**
   * Opens a sequence at the bookmark `cp` and drops what was read before: the bookmarked event and
   * what the server returned ahead of it. The bookmarked event comes back first (the manual's
   * semantics); when it does not, the start of its second is read again: if it is there the server
   * simply returns what follows a bookmark. A log that no longer holds it was reset (its newest
   * event is older: a gap, and the whole log is read) or pruned past it (a gap).
   */
  private async resume(
    cp: InstancePosition,
    gaps: GapRecord[],
  ): Promise<{ result: CallResult; repeated: number }> {
    let result: CallResult;
    try {
      result = await this.call({ timestamp: cp.timestamp, id: cp.id });
    } catch (error) {
      if ((error as { retryable?: boolean }).retryable) throw error;
      // A server that refuses the bookmark form: position by time and skip what was read.
      result = await this.call({ start: { timestamp: cp.timestamp } });
    }
    if (cp.skipped) {
      // The bookmarked event was skipped for size, and reported (skippedThrough). It comes back
      // when it fits the buffer now, and is read; else the server skips it again, and its warning
      // (the first: the read starts at it) is no new event skipped.
      const at = indexOf(result.events, cp);
      if (at >= 0) return { result: { ...result, events: result.events.slice(at) }, repeated: at };
      if (result.warnings.length > 0) {
        const { warningCount: n } = result;
        const warnings = result.warnings.slice(1);
        return { result: { ...result, warnings, warningCount: n === undefined ? n : n - 1 }, repeated: 0 };
      }
      // Neither: the event is no longer in the log, as below.
    }
    const latest = this.latest;
    const moved =
      result.events.length > 0 || (latest !== undefined && compareAuditPositions(latest, cp) !== 0);
    let at = indexOf(result.events, cp);
    if (at < 0 && moved) {
      result = await this.call({ start: { timestamp: cp.timestamp } });
      at = indexOf(result.events, cp);
    }
    if (at >= 0 || !moved)
      return { result: { ...result, events: result.events.slice(at + 1) }, repeated: at + 1 };
    if (latest !== undefined && compareAuditPositions(latest, cp) < 0) {
      gaps.push(
        this.gap(
          'log-reset',
          cp.time,
          undefined,
          undefined,
          `the log no longer holds the last event read (${cp.timestamp}) and its newest event (${latest.timestamp}) is older`,
        ),
      );
      return { result: await this.call({ start: { timestamp: EPOCH_START } }), repeated: 0 };
    }
    const next = result.events.map(positionOf).find((p) => p !== undefined);
    gaps.push(
      this.gap(
        'pruned',
        cp.time,
        next ? toIso(next.ts) : undefined,
        undefined,
        'the log no longer holds the last event read: it was rotated and pruned before the events after it were read',
      ),
    );
    return { result, repeated: 0 };
  }

  /**
   * One `audit_log_read()` call and its warnings: their messages, and their count, asked for only
   * when the server may have kept fewer messages than there were (as many as `max_error_count`, or
   * any when that is unknown).
   */
  private async call(arg: Record<string, unknown>): Promise<CallResult> {
    const body = { ...arg, max_array_length: this.target.settings.batchSize };
    let rows: Record<string, unknown>[];
    let warnings: Record<string, unknown>[];
    let warningCount: number | undefined;
    let uncounted: string | undefined;
    let countedBelow: number | undefined;
    try {
      rows = await this.session.query('SELECT audit_log_read(?) AS events', [JSON.stringify(body)]);
      this.sequenceOpen = true;
      warnings = await this.session.query('SHOW WARNINGS');
      warningCount = warnings.length;
      const cap = this.server.maxErrorCount;
      if (cap === undefined ? warningCount > 0 : warningCount >= cap) {
        const counted = await this.countWarnings();
        if (typeof counted !== 'number') [warningCount, uncounted] = [undefined, counted.unknown];
        else if (counted < warningCount) countedBelow = counted;
        else warningCount = counted;
      }
    } catch (error) {
      throw instanceError(this.target, error, 'calling audit_log_read()');
    }
    const raw = rows[0]?.events;
    let value: unknown;
    try {
      value = JSON.parse(Buffer.isBuffer(raw) ? raw.toString('utf8') : String(raw));
    } catch {
      value = undefined;
    }
    if (!Array.isArray(value)) throw this.failure('audit_log_read() did not return a JSON array');
    const ended = value.length > 0 && value[value.length - 1] === null;
    if (ended) this.sequenceOpen = false;
    return {
      events: value.filter((v) => v !== null),
      ended,
      warnings: warnings.map((w) => ({ code: Number(w.Code), message: String(w.Message ?? '') })),
      warningCount,
      ...(uncounted === undefined ? {} : { uncounted }),
      ...(countedBelow === undefined ? {} : { countedBelow }),
    };
  }

  /**
   * The server's count of the warnings of the last statement, or why it is unknown: the server
   * refuses to count them (and is not asked again), or answers with no count (NULL, a value that
   * is not a number, no row).
   */
  private async countWarnings(): Promise<number | { unknown: string }> {
    if (this.countRefused) return { unknown: COUNT_REFUSED };
    let counted: Record<string, unknown> | undefined;
    try {
      [counted] = await this.session.query('SHOW COUNT(*) WARNINGS');
    } catch (error) {
      // A refusal of the statement leaves the count unknown; any other error fails the call.
      if (!COUNT_REFUSALS.has((error as { errno?: unknown }).errno as number))
        throw instanceError(this.target, error, 'counting the warnings of audit_log_read()');
      this.countRefused = true;
      return { unknown: COUNT_REFUSED };
    }
    const value = Object.values(counted ?? {})[0];
    const n = integerOf(value);
    if (!Number.isSafeInteger(n))
      return {
        unknown: `did not count them all (its warning count was ${value === null ? 'NULL' : 'not a number'})`,
      };
    return n;
  }

  /** Closes a sequence left open (`audit_log_read('null')`); best effort. */
  async close(): Promise<void> {
    if (!this.sequenceOpen) return;
    this.sequenceOpen = false;
    await this.session.query("SELECT audit_log_read('null') AS events").catch(() => undefined);
  }

  private failure(problem: string): InstanceError {
    const { db, instance } = this.target;
    return new InstanceError(`${db.name}/${instance}: ${problem}`, false, { dbSystem: db.name, instance });
  }

  private record(event: unknown): Record<string, unknown> {
    const { db, eventInstance } = this.target;
    return eventInstance === undefined
      ? { source: 'mysql-audit', dbSystemId: db.id, dbSystemName: db.name, event }
      : { source: 'mysql-audit', dbSystemId: db.id, dbSystemName: db.name, instance: eventInstance, event };
  }

  private gap(
    reason: (typeof GAP_REASONS)[number],
    from: string,
    to: string | undefined,
    skipped: number | undefined,
    detail: string,
  ): GapRecord {
    const gap: GapRecord = {
      source: 'audit-gap',
      trail: 'mysql-audit',
      dbSystemId: this.target.db.id,
      dbSystemName: this.target.db.name,
      instance: this.target.instance,
      reason,
      from,
      detail,
    };
    gap.primary = this.target.eventInstance === undefined;
    if (to !== undefined && to !== from) gap.to = to;
    if (skipped !== undefined) gap.skipped = skipped;
    return gap;
  }
}
