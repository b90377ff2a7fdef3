// The audit log of one server instance as MySQL Enterprise Audit exposes it over SQL: events in
// write order (their timestamps follow the server's clock, which can step back), `audit_log_read_bookmark()` and `audit_log_read()` with its read sequence per
// session, as the MySQL manual ("Reading Audit Log Files", "Audit Log Functions") documents them:
//
// - a hash argument with `timestamp` and `id` (a bookmark; both or neither) or `start.timestamp`
//   (a date alone means 00:00:00; the two forms exclude each other) opens a sequence at the first
//   event, in write order, at or after that position; `max_array_length` caps the events of one call;
// - no position continues the session's sequence, which is an error when none is open or the last
//   call ended it; `'null'` closes it;
// - a call returns what fits `read_buffer_size` bytes; an event larger than the buffer is skipped
//   with a warning; the array ends with `null` when the sequence has reached the end of the log.
//
// Rotation that prunes old files is `prune`; a server whose log starts over is a new AuditLog.

export type AuditPosition = { timestamp: string; id: number };

type StoredEvent = AuditPosition & { json: string };

export type ReadSequence = { next: number; done: boolean };

export type ReadOutcome =
  | { ok: true; value: string; warnings: { code: number; message: string }[] }
  | { ok: false; code: number; message: string };

/** The error MySQL raises when a loadable function fails. */
const UDF_ERROR = 3200;

function compare(a: AuditPosition, b: AuditPosition): number {
  if (a.timestamp !== b.timestamp) return a.timestamp < b.timestamp ? -1 : 1;
  return a.id - b.id;
}

export class AuditLog {
  private readonly events: StoredEvent[] = [];
  /** Index of the oldest event still on disk. */
  private first = 0;

  constructor(events: readonly Record<string, unknown>[] = []) {
    this.append(events);
  }

  /**
   * Writes events (each with `timestamp` and `id`) at the end of the log, in the order given: after
   * the server's clock steps back, a later event has an older timestamp.
   */
  append(events: readonly Record<string, unknown>[]): void {
    for (const e of events) {
      this.events.push({ timestamp: String(e.timestamp), id: Number(e.id), json: JSON.stringify(e) });
    }
  }

  /** Deletes rotated files: the events written before the first one at or after `before`. */
  prune(before: AuditPosition): void {
    while (this.first < this.events.length && compare(this.events[this.first]!, before) < 0) this.first++;
  }

  get size(): number {
    return this.events.length - this.first;
  }

  get oldest(): AuditPosition | undefined {
    const e = this.events[this.first];
    return e ? { timestamp: e.timestamp, id: e.id } : undefined;
  }

  /** `audit_log_read_bookmark()`: the most recently written event. */
  bookmark(): string | null {
    const e = this.events[this.events.length - 1];
    return e ? `{ "timestamp": "${e.timestamp}", "id": ${e.id} }` : null;
  }

  /** `audit_log_read([arg])` for a session whose sequence is `session.sequence`. */
  read(
    session: { sequence?: ReadSequence | undefined },
    arg: string | undefined,
    readBufferSize: number,
  ): ReadOutcome {
    const fail = (message: string): ReadOutcome => ({
      ok: false,
      code: UDF_ERROR,
      message: `audit_log_read UDF failed; ${message}`,
    });
    let options: Record<string, unknown> = {};
    if (arg !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(arg);
      } catch {
        return fail('Invalid JSON argument.');
      }
      if (parsed === null) {
        session.sequence = undefined;
        return { ok: true, value: 'OK', warnings: [] };
      }
      if (typeof parsed !== 'object' || Array.isArray(parsed)) return fail('Invalid JSON argument.');
      options = parsed as Record<string, unknown>;
    }
    const hasBookmark = 'timestamp' in options || 'id' in options;
    const start = options.start as { timestamp?: unknown } | undefined;
    if (hasBookmark && start !== undefined) return fail('Both start and bookmark specified.');
    let max = Number.POSITIVE_INFINITY;
    if (options.max_array_length !== undefined) {
      const n = options.max_array_length;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) return fail('Invalid max_array_length.');
      max = n;
    }
    if (hasBookmark) {
      if (typeof options.timestamp !== 'string' || typeof options.id !== 'number')
        return fail('Incorrect bookmark: both timestamp and id are needed.');
      session.sequence = { next: this.seek({ timestamp: options.timestamp, id: options.id }), done: false };
    } else if (start !== undefined) {
      const t = start.timestamp;
      if (typeof t !== 'string' || !/^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?$/.test(t))
        return fail('Incorrect start timestamp.');
      const timestamp = t.length === 10 ? `${t} 00:00:00` : t;
      session.sequence = { next: this.seek({ timestamp, id: -1 }), done: false };
    } else if (!session.sequence || session.sequence.done) {
      return fail('Reading not initialized or finished; specify a position.');
    }
    const sequence = session.sequence!;
    if (sequence.next < this.first) sequence.next = this.first;

    const out: string[] = [];
    const warnings: { code: number; message: string }[] = [];
    let bytes = 0;
    while (out.length < max && sequence.next < this.events.length) {
      const e = this.events[sequence.next]!;
      const size = Buffer.byteLength(e.json);
      if (size > readBufferSize) {
        warnings.push({
          code: 3200,
          message: `Audit log event at ${e.timestamp} id ${e.id} is larger than the read buffer (${readBufferSize} bytes) and was skipped.`,
        });
        sequence.next++;
        continue;
      }
      if (bytes + size > readBufferSize && out.length > 0) break;
      out.push(e.json);
      bytes += size;
      sequence.next++;
    }
    if (sequence.next >= this.events.length) {
      out.push('null');
      sequence.done = true;
    }
    return { ok: true, value: `[ ${out.join(',\n  ')} ]`, warnings };
  }

  /** Index of the first retained event, in write order, at or after `position` (a scan, as files are read). */
  private seek(position: AuditPosition): number {
    const i = this.events.findIndex((e, index) => index >= this.first && compare(e, position) >= 0);
    return i < 0 ? this.events.length : i;
  }
}
